"""The playground in real Chromium, with an admin token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from shared.auth import mint
from tests.support.stack import SECRET, Stack


def test_playground_browses_a_users_threads_sends_and_shows_context(site: Stack, browser: Any, shots: Path) -> None:
    who = "playground-user"
    headers = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    tid = httpx.post(f"{site.web}/api/threads", json={"title": "Inspect me"}, headers=headers).json()["threadId"]
    httpx.post(f"{site.web}/api/threads/{tid}/messages", json={"prompt": "first question", "generate": False},
               headers=headers).raise_for_status()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground#token={mint(SECRET, 'ops', admin=True)}")
    page.click(f"[data-testid=users] li:has-text('{who}')")
    page.click("[data-testid=pg-threads] li:has-text('Inspect me')")
    page.wait_for_selector("[data-testid=pg-row]:has-text('first question')")
    page.select_option("[data-testid=pg-agent]", "assistant")
    page.fill("[data-testid=pg-prompt]", "second question")
    page.click("[data-testid=pg-send]")
    page.wait_for_selector("[data-testid=pg-send-result]:has-text('messageId')")
    page.wait_for_selector("[data-testid=pg-row]:has-text('success'):has-text('[mock]')", timeout=20_000)
    rows = [r.locator("td").all_text_contents() for r in page.locator("[data-testid=pg-row]").all()]
    reply = next(cells for cells in rows if cells[2] == "assistant")
    assert reply[:6] == ["2", "1", "assistant", "success", "assistant", "mock"]
    assert next(cells for cells in rows if cells[7] == "second question")[4] == ""
    page.fill("[data-testid=pg-recent]", "1")
    page.click("[data-testid=pg-context]")
    page.wait_for_selector("[data-testid=pg-context-result]:has-text('system')")
    context = str(page.text_content("[data-testid=pg-context-result]"))
    assert "[mock]" in context and "first question" not in context  # recentMessages: 1
    page.select_option("[data-testid=pg-save]", "none")
    page.fill("[data-testid=pg-prompt]", "dry run")
    page.click("[data-testid=pg-send]")
    page.wait_for_selector("[data-testid=pg-send-result]:has-text('\"saved\": false')", timeout=20_000)
    page.screenshot(path=str(shots / "playground.png"))
    page.close()


def test_playground_lists_documents_and_shows_what_rag_puts_in_a_context(site: Stack, browser: Any,
                                                                         shots: Path) -> None:
    who, admin = "reader", mint(SECRET, "ops", admin=True)
    user = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    doc = {"key": "ferry.md", "title": "Ferry timetable", "content": "# Ferry\n## Winter\nThe ferry leaves at seven."}
    assert httpx.post(f"{site.web}/api/rag/global/documents", json=doc,
                      headers={"Authorization": f"Bearer {admin}"}).status_code == 202
    tid = httpx.post(f"{site.web}/api/threads", json={"title": "Ferry questions"}, headers=user).json()["threadId"]
    assert tid
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground#token={admin}")
    page.click("[data-testid=pg-namespaces] li:has-text('global')")
    for _ in range(100):  # the index process makes it ready; pick the namespace again to see it
        if page.locator("[data-testid=pg-document]:has-text('ready')").count():
            break
        page.wait_for_timeout(200)
        page.click("[data-testid=pg-namespaces] li:has-text('global')")
    assert "Ferry timetable — ready" in str(page.text_content("[data-testid=pg-documents]"))
    page.click(f"[data-testid=users] li:has-text('{who}')")
    page.click("[data-testid=pg-threads] li:has-text('Ferry questions')")
    page.select_option("[data-testid=pg-ctx-agent]", "librarian")
    page.fill("[data-testid=pg-ctx-prompt]", "when does the ferry leave?")
    page.click("[data-testid=pg-context]")
    passage = page.wait_for_selector("[data-testid=pg-passage]")
    assert passage is not None and "[1] Ferry timetable · Ferry > Winter" in str(passage.text_content())
    assert "The ferry leaves at seven." in str(page.text_content("[data-testid=pg-context-result]"))
    page.screenshot(path=str(shots / "playground-rag.png"))
    page.close()


def test_playground_shows_file_parts_as_links(site: Stack, browser: Any) -> None:
    who = "file-sender"
    headers = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    f = httpx.post(f"{site.web}/api/files?name=menu.txt", content=b"soup of the day", headers=headers).json()
    tid = httpx.post(f"{site.web}/api/threads", json={"title": "With a file"}, headers=headers).json()["threadId"]
    httpx.post(f"{site.web}/api/threads/{tid}/messages", headers=headers, json={"generate": False, "message": {
        "content": [{"type": "text", "text": "see the menu"}, {"type": "file", "fileId": f["fileId"]}]}}
               ).raise_for_status()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground#token={mint(SECRET, 'ops', admin=True)}")
    page.click(f"[data-testid=users] li:has-text('{who}')")
    page.click("[data-testid=pg-threads] li:has-text('With a file')")
    link = page.wait_for_selector("[data-testid=pg-file][href*='sig=']")
    assert link is not None and "file: menu.txt (text/plain)" in str(link.text_content())
    assert httpx.get(str(link.get_attribute("href"))).content == b"soup of the day"
    page.close()


def test_playground_api_refuses_a_token_without_the_admin_claim(site: Stack) -> None:
    r = httpx.get(f"{site.web}/api/admin/users", headers={"Authorization": f"Bearer {mint(SECRET, 'ops')}"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_playground_lists_workflow_runs_and_shows_their_steps(site: Stack, browser: Any, shots: Path) -> None:
    headers = {"Authorization": f"Bearer {mint(SECRET, 'traveller')}"}
    started = httpx.post(f"{site.web}/api/workflows", json={"name": "weather_report", "args": {"city": "Lisbon"}},
                         headers=headers)
    assert started.status_code == 201, started.text
    run_id = started.json()["runId"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground#token={mint(SECRET, 'ops', admin=True)}")
    page.click(f"[data-testid=pg-run]:has-text('{run_id}')")
    page.wait_for_selector("[data-testid=pg-run-summary]:has-text('status: completed')", timeout=30_000)
    steps = [r.locator("td").all_text_contents() for r in page.locator("[data-testid=pg-step]").all()]
    assert [(s[0], s[2], s[3], s[4]) for s in steps] == [
        ("0", "create_thread", "completed", "1/3"), ("1", "generate_text", "completed", "1/3"),
        ("2", "generate_object", "completed", "1/3"), ("3", "save_message", "completed", "1/3")]
    assert "[mock]" in steps[1][7]  # the answer's text, from the step's result
    assert "Lisbon" in str(page.text_content("[data-testid=pg-run-summary]"))
    page.screenshot(path=str(shots / "playground-workflow.png"))
    page.close()
