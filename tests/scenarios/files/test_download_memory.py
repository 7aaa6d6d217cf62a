"""Downloads stream from the blob store: slow readers of a big file cost the web process a small
buffer each, not the file (measured as the web process's resident memory), for a directory and a
bucket, whole files and ranges alike."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.scenarios.files.conftest import stack_on
from tests.support.stack import SECRET, Stack
from threadline.shared.auth import mint

SIZE = 4 << 20
READERS = 20
# 20 readers each holding the whole 4 MiB file grew the process by 76-84 MiB; streamed, 0-15 MiB
MAX_GROWTH = 40 << 20


@pytest.fixture(scope="module", params=["local", "s3"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"downloads-{request.param}")
    with stack_on(request.param, tmp, {"DATA_DIR": str(tmp / "data"), "FILES_MAX_BYTES": str(8 << 20)}) as stack:
        yield stack


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def slow_reader(base: str, path: str, token: str, range_header: str | None) -> tuple[socket.socket, bytes]:
    """A client that sends the request, reads a little and then stops reading."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    extra = f"Range: {range_header}\r\n" if range_header else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n{extra}"
                 "Connection: close\r\n\r\n".encode())
    first = sock.recv(1024)
    assert first
    return sock, first


def read_all(sock: socket.socket, first: bytes) -> bytes:
    sock.settimeout(30)
    chunks = [first]
    while data := sock.recv(1 << 16):
        chunks.append(data)
    sock.close()
    return b"".join(chunks)


@pytest.mark.parametrize("range_header", [None, "bytes=1000-"])
def test_slow_readers_of_a_big_file_hold_a_small_buffer_each(site: Stack, range_header: str | None) -> None:
    token = mint(SECRET, "reader")
    content = (b"0123456789abcdef" * (SIZE // 16 + 1))[:SIZE]
    with httpx.Client(base_url=site.web, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        f = c.post("/api/files?name=big.txt", content=content).json()
        path = f"/api/files/{f['fileId']}/content"
        assert c.get(path).content == content  # warm the download path up before measuring
    web = next(p.pid for p in site.procs if "threadline.server" in p.args)  # the (one) web process
    before = rss(web)
    readers = [slow_reader(site.web, path, token, range_header) for _ in range(READERS)]
    peak = before
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        peak = max(peak, rss(web))
        time.sleep(0.05)
    with ThreadPoolExecutor(READERS) as pool:  # all at once: each waits for the server's next window probe
        bodies = list(pool.map(lambda r: read_all(*r), readers))
    expected = content if range_header is None else content[1000:]
    for raw in bodies:
        head, _, body = raw.partition(b"\r\n\r\n")
        assert body == expected, (head, len(body))
        assert (b" 206 " in head.split(b"\r\n")[0]) == (range_header is not None)
    assert peak - before < MAX_GROWTH, f"{READERS} slow readers grew the web process by {(peak - before) >> 20} MiB"
