"""A webhook receiver on loopback, as an app's other service runs one: it verifies each delivery's
signature with the Standard Webhooks library (``standardwebhooks``, not our code), answers 500 to the
first attempt of the deliveries it is told to refuse once, and keeps what it accepted."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.refuse_first: set[str] = set()  # event types whose first attempt is answered 500
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, payload)
        self.refused: list[str] = []  # webhook-ids answered 500
        self.forged: int = 0  # requests whose signature did not verify
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver._lock:
                        receiver.forged += 1
                    self._answer(401)
                    return
                wid = self.headers["webhook-id"]
                with receiver._lock:
                    first = wid not in receiver._seen
                    receiver._seen.add(wid)
                    if first and payload["type"] in receiver.refuse_first:
                        receiver.refused.append(wid)
                        status = 500
                    else:
                        receiver.accepted.append((wid, payload))
                        status = 200
                self._answer(status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def of(self, event_type: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(wid, p) for wid, p in self.accepted if p["type"] == event_type]

    def wait(self, event_type: str, count: int = 1, timeout: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(found := self.of(event_type)) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} {event_type} not received in {timeout} s: {json.dumps(self.accepted)[:2000]}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
