"""Canvas edits through real processes: made over HTTP, listed by document, and found for the model's
context by what a prompt refers to, with their states: the newest ones always, an older one ("put back
the chart as it was before") by search once the index process has embedded it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.memory.test_memory import eventually
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("drafts"), webs=1, workers=1, index=True) as stack:
        yield stack


def notes(c: httpx.Client, tid: str, prompt: str) -> str:
    r = c.post(f"/api/threads/{tid}/context", json={"prompt": prompt, "agentName": "editor"})
    assert r.status_code == 200, r.text
    found = [m["text"] for m in r.json()["messages"] if m["role"] == "system" and "Reference notes" in m["text"]]
    return found[0] if found else ""


def test_the_edit_a_prompt_refers_to_is_in_the_context_with_its_states(drafts: Stack) -> None:
    with httpx.Client(base_url=drafts.web, headers={"Authorization": f"Bearer {mint(SECRET, 'cc-ana')}"},
                      timeout=10) as c:
        tid = c.post("/api/threads", json={"title": "report"}).json()["threadId"]

        def edit(target: str, value: Any, summary: str | None = None, **more: Any) -> dict[str, Any]:
            r = c.post(f"/api/threads/{tid}/canvases/draft/edits",
                       json={"target": target, "value": value, "summary": summary, **more})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        edit("title", "Quarterly report", kind="title")
        edit("chart", {"type": "bar", "values": [3, 5, 8]}, kind="chart")
        chart = edit("chart", {"type": "pie", "values": [3, 5, 8]}, "turned the chart into a pie chart")
        for n in range(1, 4):
            edit(f"p{n}", f"Paragraph {n} text", kind="paragraph")
        last = edit("title", "Q3 report", "a shorter title")
        assert last["version"] == 7

        stale = c.post(f"/api/threads/{tid}/canvases/draft/edits", json={"target": "title", "value": "x",
                                                                         "expectedVersion": 3})
        assert stale.status_code == 409 and stale.json()["code"] == "conflict"
        canvas = c.get(f"/api/threads/{tid}/canvases/draft").json()
        assert canvas["version"] == 7 and [e["id"] for e in canvas["elements"]] == ["title", "chart", "p1", "p2", "p3"]
        listed = c.get(f"/api/threads/{tid}/snippets", params={"document": "draft", "numItems": "3"}).json()
        assert [s["target"] for s in listed["page"]] == ["title", "p3", "p2"] and not listed["isDone"]
        assert listed["page"][0]["before"]["value"] == "Quarterly report" and listed["page"][0]["docVersion"] == 6

        # the newest edits are always there: the title's, with both states
        recent = notes(c, tid, "Undo the last change to the title")
        assert "set on title of draft v6" in recent and "Quarterly report" in recent and "Q3 report" in recent
        assert "chart" not in recent  # (older than the recent three: the search has to find it)
        # an older one by what the prompt names, once embedded
        found = eventually(lambda: (n := notes(c, tid, "Put back the chart as it was before")) and
                           chart["snippetId"] in n and n, timeout=60)
        assert '"bar"' in found and '"pie"' in found  # its state before and after

        r = c.post(f"/api/snippets/{chart['snippetId']}/restore", json={})
        assert r.status_code == 200, r.text
        restored = c.get(f"/api/threads/{tid}/canvases/draft").json()
        assert next(e for e in restored["elements"] if e["id"] == "chart")["value"]["type"] == "bar"
        with httpx.Client(base_url=drafts.web, headers={"Authorization": f"Bearer {mint(SECRET, 'cc-bo')}"},
                          timeout=10) as other:
            assert other.get(f"/api/threads/{tid}/canvases/draft").status_code == 404
            assert other.post(f"/api/snippets/{chart['snippetId']}/restore", json={}).status_code == 404
