"""The playground in real Chromium, with an admin token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import SECRET, Stack
from threadline.shared.auth import mint


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


def test_playground_signs_in_with_a_form_and_refuses_a_token_without_the_admin_claim(site: Stack, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground")
    page.wait_for_selector("[data-testid=pg-signin] form", state="visible")  # no prompt(): a form
    page.fill("[data-testid=pg-token]", mint(SECRET, "not-an-admin"))
    page.click("[data-testid=pg-token-save]")
    page.wait_for_selector("[data-testid=pg-signin-why]:has-text('forbidden')")
    page.fill("[data-testid=pg-token]", mint(SECRET, "ops", admin=True))
    page.click("[data-testid=pg-token-save]")
    page.wait_for_selector("[data-testid=pg-conn]:has-text('open')")
    assert not page.locator("[data-testid=pg-signin]").is_visible()
    page.evaluate("() => localStorage.clear()")
    page.close()


def test_playground_follows_a_thread_and_the_runs_live_and_shows_every_part(site: Stack, browser: Any,
                                                                            shots: Path) -> None:
    import asyncio
    import concurrent.futures

    from threadline import Threadline
    from threadline.shared.records import (
        FilePart,
        ObjectPart,
        ReasoningPart,
        SourcePart,
        TextPart,
        ToolCallPart,
        ToolResultPart,
        Usage,
    )

    who = "playground-live"

    async def seed() -> tuple[str, str]:
        settings = site.settings(DATA_DIR=site.env["DATA_DIR"])
        async with Threadline(settings) as tl:
            thread = await tl.create_thread(who, title="Every part")
            menu = await tl.upload_file(who, "menu.txt", b"soup of the day")
            prompt = await thread.save_message("What is on the menu?")
            await thread.save_message(role="assistant", agent_name="assistant", prompt_message_id=prompt.message_id, parts=[
                ReasoningPart(text="The menu file will say."),
                ToolCallPart(tool_call_id="c1", tool_name="read_menu", args={"day": "today"})])
            await thread.save_message(role="tool", prompt_message_id=prompt.message_id, parts=[
                ToolResultPart(tool_call_id="c1", tool_name="read_menu", result={"soup": "tomato"})])
            reply = await thread.save_message(role="assistant", agent_name="assistant",
                                              prompt_message_id=prompt.message_id, parts=[
                TextPart(text="Tomato soup [1]."),
                SourcePart(source_id="1", namespace="global", key="menu.md", title="Menu", chunk=0,
                           excerpt="Soup: tomato"),
                ObjectPart(object={"soup": "tomato"}),
                FilePart(file_id=menu.file_id)])
            await tl.store.messages.replace(thread.thread_id, [msgspec_usage(reply, Usage(
                prompt_tokens=120, completion_tokens=8, total_tokens=128, cached_tokens=100, reasoning_tokens=3))])
            return thread.thread_id, prompt.message_id

    import msgspec

    def msgspec_usage(message: Any, usage: Any) -> Any:
        return msgspec.structs.replace(message, usage=usage)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        thread_id, _ = pool.submit(asyncio.run, seed()).result()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{site.web}/playground#token={mint(SECRET, 'ops', admin=True)}")
    page.click(f"[data-testid=users] li:has-text('{who}')")
    page.click("[data-testid=pg-threads] li:has-text('Every part')")
    page.wait_for_selector("[data-testid=pg-part][data-kind=source]")
    kinds = set(page.evaluate("() => [...document.querySelectorAll('[data-testid=pg-part]')].map((e) => e.dataset.kind)"))
    assert {"reasoning", "tool-call", "tool-result", "source", "object"} <= kinds
    assert page.locator("[data-testid=pg-file]:has-text('menu.txt')").count() == 1
    assert "120+8 (100 cached, 3 reasoning)" in str(page.text_content("[data-testid=pg-messages]"))
    # readable columns: no word of the short columns (order, role, status, agent, model, usage) is split
    split = page.evaluate("""() => {
        const out = [];
        for (const pre of document.querySelectorAll('[data-testid=pg-row] td:not(:last-child) pre')) {
          const node = pre.firstChild;
          if (!node) continue;
          const text = node.textContent;
          for (const m of text.matchAll(/\\S+/g)) {
            const range = document.createRange();
            range.setStart(node, m.index);
            range.setEnd(node, m.index + m[0].length);
            if (range.getClientRects().length > 1) out.push(m[0]);
          }
        }
        return out;
      }""")
    assert split == []
    box = page.locator("[data-testid=pg-messages]").bounding_box()
    section = page.locator("section").nth(1).bounding_box()
    assert box["x"] + box["width"] <= section["x"] + section["width"] + 1  # the table fits its column
    # live: a message sent now shows up, streaming, without reloading or polling
    headers = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    httpx.post(f"{site.web}/api/threads/{thread_id}/messages", json={"prompt": "And dessert?", "agentName": "assistant"},
               headers=headers).raise_for_status()
    page.wait_for_selector("[data-testid=pg-row]:has-text('And dessert?')")
    page.wait_for_selector("[data-testid=pg-row]:has-text('streaming')", timeout=20_000)
    page.wait_for_selector("[data-testid=pg-row]:has-text('success'):has-text('[mock]')", timeout=30_000)
    started = httpx.post(f"{site.web}/api/workflows", json={"name": "weather_report", "args": {"city": "Porto"}},
                         headers=headers).json()["runId"]
    page.wait_for_selector(f"[data-testid=pg-run]:has-text('{started}')")  # the runs list is live too
    page.screenshot(path=str(shots / "playground-parts.png"))
    page.close()
