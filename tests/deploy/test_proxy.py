"""The quickstart's nginx configuration, run as written by Debian's nginx in front of a stack: TLS
(a certificate made here), the WebSocket upgraded through it, and a reply streamed by /api/chat
arriving while the reply is still being written (nothing buffered on the way)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.test_quickstart import NGINX
from tests.support import procs
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint
from threadline.shared.storage.embedded import free_port

NGINX_BIN = "/usr/sbin/nginx"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("chat.example.com"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    pem, pkey = folder / "chat.pem", folder / "chat.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkey.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return pem, pkey


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"LLM_BASE_URL": "", "MOCK_LLM_DELAY_MS": "50", "MOCK_LLM_WORDS": "40", "APP_MODULE": "threadline.example"}
    with run_stack(tmp_path_factory.mktemp("proxied"), env=env) as site:
        yield site


@pytest.fixture(scope="module")
def proxy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    """nginx with the quickstart's configuration: its port, certificate and upstream swapped for the test's."""
    if shutil.which(NGINX_BIN) is None:
        pytest.fail("Debian's nginx is not installed: scripts/test installs it (apt-get install nginx)")
    folder = tmp_path_factory.mktemp("nginx")
    pem, key = self_signed(folder)
    port = free_port()
    site = (NGINX.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
            .replace("/etc/ssl/chat.example.com.pem", str(pem)).replace("/etc/ssl/chat.example.com.key", str(key))
            .replace("http://127.0.0.1:8000", stack.web))
    assert site.count(str(folder)) == 2 and stack.web in site and str(port) in site
    (folder / "nginx.conf").write_text(
        f"error_log {folder}/error.log;\npid {folder}/nginx.pid;\nevents {{}}\n"
        f"http {{\naccess_log {folder}/access.log;\n{site}\n}}\n")
    with open(folder / "stderr.log", "ab") as out:
        proc = subprocess.Popen([NGINX_BIN, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        procs.wait_for_port(port, proc)
        trust = ssl.create_default_context(cafile=str(pem))
        yield f"127.0.0.1:{port}", trust
    finally:
        procs.stop(proc)


def test_a_streamed_reply_passes_the_proxy_as_it_is_written(stack: Stack, proxy: tuple[str, ssl.SSLContext]) -> None:
    address, trust = proxy
    auth = {"Authorization": f"Bearer {mint(SECRET, 'proxied')}", "Host": "chat.example.com"}
    with httpx.Client(base_url=f"https://{address}", verify=trust, headers=auth, timeout=30) as client:
        body = {"id": "proxiedchat01", "trigger": "submit-message",
                "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hello"}]}]}
        pending_at_first_delta = None
        texts = []
        with client.stream("POST", "/api/chat", json=body) as stream:
            assert stream.status_code == 200, stream.read()
            for line in stream.iter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "text-delta":
                    texts.append(event["delta"])
                    if pending_at_first_delta is None:  # is the reply still being written?
                        page = httpx.get(f"{stack.web}/api/threads/proxiedchat01/messages",
                                         headers={"Authorization": auth["Authorization"]}).json()["page"]
                        pending_at_first_delta = [m["status"] for m in page if m["role"] == "assistant"]
        assert pending_at_first_delta == ["pending"]  # it came while the model was still talking
        assert "".join(texts).startswith("[mock]") and len(texts) > 5


def test_the_websocket_is_upgraded_through_the_proxy(proxy: tuple[str, ssl.SSLContext]) -> None:
    address, trust = proxy
    with websockets.sync.client.connect(f"wss://{address}/ws", ssl=trust, open_timeout=20) as ws:
        ws.send(json.dumps({"type": "connect", "protocol": 1, "token": mint(SECRET, "proxied"), "clientId": "p1"}))
        assert json.loads(ws.recv(timeout=20))["type"] == "connected"
        ws.send(json.dumps({"type": "mutate", "id": "r1", "name": "threads.create", "args": {"title": "via TLS"}}))
        frames = [json.loads(ws.recv(timeout=20))]
        assert frames[-1]["type"] == "mutated" and frames[-1]["id"] == "r1", frames
