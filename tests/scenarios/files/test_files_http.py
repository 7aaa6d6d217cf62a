"""Files between real processes (web, worker, the scripted model server), with the files in a
directory and in a bucket on moto's S3 server: upload (multipart and raw), sniffing and limits,
download with ranges and signed links, another user's file refused, files reaching the model as
its options say, and reference counts through deletes."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.files.conftest import stack_on
from tests.support.pdf import pdf_with_pages
from tests.support.stack import SECRET, Stack
from threadline.shared.auth import mint

PUBLIC = "https://chat.example.test/app"  # PUBLIC_URL: where browsers reach the server
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))


@pytest.fixture(scope="module", params=["local", "s3"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"files-{request.param}")
    env = {"DATA_DIR": str(tmp / "data"), "FILES_MAX_BYTES": "100000", "FILES_GRACE_S": "0", "PUBLIC_URL": PUBLIC}
    with stack_on(request.param, tmp, env) as stack:
        yield stack


def http(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {mint(SECRET, user)}"}, timeout=10)


def upload(c: httpx.Client, name: str, data: bytes, *, multipart: bool = True) -> dict[str, Any]:
    if multipart:
        r = c.post("/api/files", files={"file": (name, data, "application/octet-stream")})
    else:
        r = c.post(f"/api/files?name={name}", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def reply(c: httpx.Client, tid: str, count: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = c.get(f"/api/threads/{tid}/messages").json()["page"]
        done = [m for m in page if m["role"] == "assistant" and m["status"] != "pending"]
        if len(done) >= count:
            return done[0]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("no reply")


def ask(stack: Stack, c: httpx.Client, agent: str, *content: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a message with ``content`` parts to ``agent``: (its reply, the model's last user message)."""
    tid = c.post("/api/threads", json={"title": agent}).json()["threadId"]
    stack.reset_llm()
    r = c.post(f"/api/threads/{tid}/messages", json={"message": {"role": "user", "content": list(content)},
                                                     "agentName": agent})
    assert r.status_code == 201, r.text
    answer = reply(c, tid)
    requests = stack.llm_requests()
    return answer, (requests[-1].get("messages", [{}])[-1] if requests else {})  # (Responses API: "input")


def test_upload_sniff_limits_and_ownership(site: Stack) -> None:
    with http(site, "ann") as c, http(site, "bo") as other:
        raw = upload(c, "photo.png", PNG, multipart=False)
        form = upload(c, "holiday.png", PNG)
        assert raw["mediaType"] == form["mediaType"] == "image/png" and raw["hash"] == form["hash"]
        assert (raw["name"], form["name"], raw["size"], raw["refs"]) == ("photo.png", "holiday.png", len(PNG), 0)
        text = upload(c, "notes.png", b"just text, whatever the name says")
        assert text["mediaType"] == "text/plain"
        assert [f["fileId"] for f in c.get("/api/files").json()["page"]] == [text["fileId"], form["fileId"],
                                                                            raw["fileId"]]
        assert other.get(f"/api/files/{raw['fileId']}").status_code == 404
        assert other.get(f"/api/files/{raw['fileId']}/content").status_code == 404
        big = c.post("/api/files?name=big.txt", content=b"a" * 100_001)
        assert big.status_code == 413 and big.json()["code"] == "too_large"
        exe = c.post("/api/files", files={"file": ("tool.png", b"MZ\x90\x00" + bytes(100), "image/png")})
        assert exe.status_code == 415 and exe.json()["code"] == "unsupported_media_type"
        assert c.post("/api/files?name=e.txt", content=b"").status_code == 400
        assert c.post("/api/files", files={"other": ("a.txt", b"x")}).status_code == 400
        assert httpx.post(f"{site.web}/api/files", content=b"x").status_code == 401


def test_download_with_ranges_and_signed_links(site: Stack) -> None:
    with http(site, "cy") as c:
        f = upload(c, "report.pdf", pdf_with_pages("tides", "more tides"))
        url = f"/api/files/{f['fileId']}/content"
        whole = c.get(url)
        assert whole.status_code == 200 and whole.content.startswith(b"%PDF-")
        assert whole.headers["content-type"] == "application/pdf"
        assert whole.headers["content-disposition"].startswith('inline; filename="report.pdf"')
        assert c.get(url + "?download=1").headers["content-disposition"].startswith("attachment;")
        part = c.get(url, headers={"Range": "bytes=1-4"})
        assert part.status_code == 206 and part.content == b"PDF-"
        assert part.headers["content-range"] == f"bytes 1-4/{f['size']}"
        tail = c.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == whole.content[-5:]
        assert c.get(url, headers={"Range": f"bytes={f['size']}-"}).status_code == 416
        # the Host header is the client's to choose: our own links start at PUBLIC_URL whatever it says
        link = c.post(f"/api/files/{f['fileId']}/url", headers={"Host": "evil.example"}).json()
        assert link["expiresAt"] > time.time()
        assert link["url"].startswith(PUBLIC + "/api/files/") == ("FILES_BUCKET" not in site.env)
        fetched = httpx.get(link["url"].replace(PUBLIC, site.web))  # no token: the signature is the key
        assert fetched.status_code == 200 and fetched.content == whole.content
        if "/api/files/" in link["url"]:  # our own signature (a directory store): tampering is refused
            assert httpx.get(link["url"].replace(PUBLIC, site.web).replace("sig=", "sig=0")).status_code == 401


def test_an_image_reaches_the_model_as_an_image_input(site: Stack) -> None:
    with http(site, "di") as c:
        img = upload(c, "cat.png", PNG)
        answer, last = ask(site, c, "viewer", {"type": "text", "text": "what is this?"},
                           {"type": "image", "fileId": img["fileId"]})
        assert answer["status"] == "success"
        (text, image) = last["content"]
        assert text == {"type": "text", "text": "what is this?"}
        url = image["image_url"]["url"]
        assert url.startswith("data:") == ("FILES_BUCKET" not in site.env)
        if url.startswith("data:"):  # a directory: the bytes as a data URL
            assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
        else:  # a bucket: a signed URL the provider fetches
            assert httpx.get(url).content == PNG
        page = c.get(f"/api/threads/{answer['threadId']}/messages").json()["page"]
        sent = next(m for m in page if m["role"] == "user")
        assert sent["parts"][1] == {"type": "image", "fileId": img["fileId"], "url": "", "mimeType": "image/png",
                                    "filename": "cat.png"}
        assert c.get(f"/api/files/{img['fileId']}").json()["refs"] == 1


@pytest.mark.parametrize("agent", ["claude", "gpt-r"])  # Anthropic's Messages API, OpenAI's Responses API
def test_images_and_pdfs_reach_the_native_apis_as_their_own_blocks(site: Stack, agent: str) -> None:
    with http(site, f"native-{agent}") as c:
        img = upload(c, "cat.png", PNG)
        pdf = upload(c, "tides.pdf", pdf_with_pages("Spring tides were high"))
        answer, _ = ask(site, c, agent, {"type": "text", "text": "what are these?"},
                        {"type": "image", "fileId": img["fileId"]}, {"type": "file", "fileId": pdf["fileId"]})
        assert answer["status"] == "success", answer
        body = site.llm_requests()[-1]
        local = "FILES_BUCKET" not in site.env
        inline_png = base64.b64encode(PNG).decode()
        if agent == "claude":
            text, image, document = body["messages"][-1]["content"]
            assert text == {"type": "text", "text": "what are these?"}
            assert image["source"] == {"type": "base64", "media_type": "image/png", "data": inline_png} if local \
                else httpx.get(image["source"]["url"]).content == PNG
            assert document["type"] == "document" and document["title"] == "tides.pdf"
            source = document["source"]
            pdf_bytes = base64.b64decode(source["data"]) if source["type"] == "base64" else httpx.get(source["url"]).content
        else:
            text, image, document = body["input"][-1]["content"]
            assert text == {"type": "input_text", "text": "what are these?"}
            assert image["type"] == "input_image" and (
                image["image_url"] == f"data:image/png;base64,{inline_png}" if local
                else httpx.get(image["image_url"]).content == PNG)
            assert document["type"] == "input_file" and document["filename"] == "tides.pdf"
            pdf_bytes = base64.b64decode(document["file_data"].split(",", 1)[1])
        assert pdf_bytes.startswith(b"%PDF-")


def test_pdfs_and_text_files_reach_the_model_as_the_agent_says(site: Stack) -> None:
    with http(site, "ed") as c:
        pdf = upload(c, "tides.pdf", pdf_with_pages("Spring tides were high"))
        notes = upload(c, "notes.md", b"# Notes\nbring a lantern")
        _, as_text = ask(site, c, "viewer", {"type": "file", "fileId": pdf["fileId"]},
                         {"type": "file", "fileId": notes["fileId"]}, {"type": "text", "text": "summarize"})
        blocks = as_text["content"]
        assert blocks[0]["type"] == "text" and blocks[0]["text"] == "summarize"
        assert blocks[1]["text"].startswith("[file tides.pdf, its text]") and "Spring tides" in blocks[1]["text"]
        assert blocks[2] == {"type": "text", "text": "[file notes.md]\n# Notes\nbring a lantern"}
        _, as_file = ask(site, c, "pdf-viewer", {"type": "file", "fileId": pdf["fileId"]})
        (block,) = as_file["content"]
        assert block["type"] == "file" and block["file"]["filename"] == "tides.pdf"
        assert base64.b64decode(block["file"]["file_data"].split(",", 1)[1]).startswith(b"%PDF-")
        _, forced = ask(site, c, "pdf-as-text", {"type": "file", "fileId": pdf["fileId"]})
        assert "Spring tides" in forced["content"][0]["text"]


def test_a_model_without_image_inputs_gets_a_note_or_fails_as_the_agent_says(site: Stack) -> None:
    with http(site, "flo") as c:
        img = upload(c, "cat.png", PNG)
        answer, last = ask(site, c, "blind", {"type": "text", "text": "look"}, {"type": "image", "fileId": img["fileId"]})
        assert answer["status"] == "success"
        assert last["content"][1]["text"] == "[cat.png (image/png) is not shown to you: this model takes no images]"
        failed, _ = ask(site, c, "blind-strict", {"type": "text", "text": "look"},
                        {"type": "image", "fileId": img["fileId"]})
        assert failed["status"] == "failed" and "cannot be given to the model" in failed["error"]


def test_an_image_the_model_asks_for_is_kept_and_shown_in_the_reply(site: Stack) -> None:
    with http(site, "jo") as c:
        tid = c.post("/api/threads", json={"title": "paint"}).json()["threadId"]
        site.reset_llm()
        site.script({"kind": "tools", "calls": [{"name": "generate_image",
                                                 "arguments": '{"prompt": "a red boat at dawn", "size": "1024x1024"}'}]},
                    {"kind": "text", "chunks": ["Here is your boat."]})
        c.post(f"/api/threads/{tid}/messages", json={"prompt": "draw me a boat", "agentName": "painter"}
               ).raise_for_status()
        answer = reply(c, tid, 2)
        (asked,) = httpx.get(f"{site.llm}/_images").json()
        assert asked == {"model": "gpt-image-1", "prompt": "a red boat at dawn", "n": 1, "size": "1024x1024"}
        assert answer["text"] == "Here is your boat."
        (image,) = [p for p in answer["parts"] if p["type"] == "image"]
        got = c.get(f"/api/files/{image['fileId']}/content")
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG") and image["mimeType"] == "image/png"
        assert c.get(f"/api/files/{image['fileId']}").json()["refs"] == 1  # the reply references it
        (tool,) = [m for m in c.get(f"/api/threads/{tid}/messages").json()["page"] if m["role"] == "tool"]
        assert tool["parts"][0]["result"] == {"fileId": image["fileId"], "mediaType": "image/png",
                                              "shownToUser": True}


def test_references_hold_files_until_their_messages_go(site: Stack) -> None:
    with http(site, "gil") as c, http(site, "hal") as other:
        f = upload(c, "keep.txt", b"keep me")
        tid = c.post("/api/threads", json={"title": "refs"}).json()["threadId"]
        content = [{"type": "text", "text": "here"}, {"type": "file", "fileId": f["fileId"]}]
        assert c.post(f"/api/threads/{tid}/messages", json={"message": {"content": content}, "generate": False}
                      ).status_code == 201
        assert c.get(f"/api/files/{f['fileId']}").json()["refs"] == 1
        assert c.delete(f"/api/files/{f['fileId']}").status_code == 409
        theirs = other.post("/api/threads", json={"title": "x"}).json()["threadId"]
        stolen = other.post(f"/api/threads/{theirs}/messages",
                            json={"message": {"content": content}, "generate": False})
        assert stolen.status_code == 404 and stolen.json()["code"] == "not_found"
        assert c.delete(f"/api/threads/{tid}").status_code == 200
        assert c.get(f"/api/files/{f['fileId']}").json()["refs"] == 0
        assert c.delete(f"/api/files/{f['fileId']}").json() == {"deleted": True}
        assert c.get(f"/api/files/{f['fileId']}").status_code == 404


def test_rqs_cron_scheduler_runs_the_vacuum_on_a_worker(site: Stack) -> None:
    """``python -m threadline.workers cron`` enqueues the vacuum at once (then every FILES_GRACE_S / 4, at least a
    minute); a generation worker runs it: unreferenced files go, referenced ones stay."""
    import subprocess
    import sys

    from tests.support import procs

    with http(site, "ivy") as c:
        orphan = upload(c, "orphan.txt", b"nobody needs me")
        kept = upload(c, "kept.png", PNG)
        tid = c.post("/api/threads", json={"title": "vacuum"}).json()["threadId"]
        c.post(f"/api/threads/{tid}/messages", json={"message": {"content": [
            {"type": "text", "text": "look"}, {"type": "image", "fileId": kept["fileId"]}]}, "generate": False})
        with open(site.logs / "cron.log", "ab") as out:
            cron = subprocess.Popen([sys.executable, "-m", "threadline.workers", "cron"], cwd=procs.ROOT,
                                    env=procs.child_env(**site.env, REDIS_URL=site.redis_url, AUTH_SECRET=SECRET),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while c.get(f"/api/files/{orphan['fileId']}").status_code != 404:
                assert time.monotonic() < deadline, (site.logs / "cron.log").read_text()[-2000:]
                time.sleep(0.2)
        finally:
            procs.stop(cron)
        assert c.get(f"/api/files/{kept['fileId']}").json()["refs"] == 1
        assert c.get(f"/api/files/{kept['fileId']}/content").content == PNG
