"""The chat page as people use it, in real Chromium: markdown replies rendered safely (hostile model
output and user text), a phone-sized screen, a tool a person answers in the thread, titles that
appear by themselves, the connection state. Screenshots (desktop and phone, plain and code-heavy)
land in test-output/screenshots."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from tests.browser.test_chat_page import last_reply, new_thread, open_chat, send, user
from tests.support.stack import SECRET, Stack
from threadline import Threadline
from threadline.shared.auth import mint

HOSTILE = """Here is what you asked for.

<script>window.__pwned = "script"</script>
<img src=x onerror="window.__pwned = 'img'">
<svg onload="window.__pwned = 'svg'"></svg>
<iframe src="javascript:window.__pwned = 'iframe'"></iframe>
<a href="javascript:window.__pwned = 'link'">a javascript: link</a> and [another](javascript:alert(1)).
<p style="position:fixed;inset:0" onclick="window.__pwned = 'click'">styled</p>
<form action="https://evil.example"><input name=q><button>go</button></form>
"""

CODE_HEAVY = """## Reading a file in Python

Use `pathlib`: it closes the file for you.

```python
from pathlib import Path

def words(path: str) -> int:
    text = Path(path).read_text(encoding="utf-8")
    return len(text.split())
```

| method | closes the file | reads |
|---|---|---|
| `Path.read_text` | yes | everything |
| `open(...).read()` | only with `with` | everything |

1. Pick the encoding.
2. Read the text.
3. Count the words: see [the docs](https://docs.python.org/3/library/pathlib.html).

> Large files: read them line by line instead.
"""


def in_thread(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        return pool.submit(asyncio.run, coro).result()


async def thread_with(site: Stack, who: str, title: str, exchanges: list[tuple[str, str]]) -> str:
    async with Threadline(site.settings()) as tl:
        thread = await tl.create_thread(who, title=title)
        for question, answer in exchanges:
            prompt = await thread.save_message(question)
            await thread.save_message(answer, role="assistant", agent_name="assistant",
                                      prompt_message_id=prompt.message_id)
        return thread.thread_id


def test_markdown_replies_render_and_nothing_hostile_reaches_the_dom(site: Stack, browser: Any, shots: Path) -> None:
    who = user()
    hostile_user = '<img src=x onerror="window.__pwned = 1"> **not bold** <script>window.__pwned = 2</script>'
    tid = in_thread(thread_with(site, who, "Markdown", [(hostile_user, HOSTILE), ("How do I read a file?", CODE_HEAVY)]))
    page = open_chat(browser, site.web, who, tid)
    page.wait_for_selector("[data-testid=message] .code pre")
    bodies = "[data-testid=message] [data-testid=text]"
    assert page.locator(f"{bodies} script, {bodies} img, {bodies} svg, {bodies} iframe, {bodies} form, "
                        f"{bodies} input, {bodies} [style]").count() == 0
    handlers = page.evaluate("""() => [...document.querySelectorAll('[data-testid=message] *')]
        .flatMap((el) => [...el.attributes].map((a) => a.name)).filter((n) => n.startsWith('on'))""")
    assert handlers == []
    hrefs = page.evaluate("() => [...document.querySelectorAll('[data-testid=message] a')].map((a) => a.href)")
    assert hrefs and not any(h.lower().startswith("javascript:") for h in hrefs)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    user_text = page.locator("[data-testid=message][data-role=user] [data-testid=text]").first.text_content()
    assert user_text == hostile_user  # user text is shown as text, markup and all
    # the code-heavy reply: a code block with a copy button, a table, a list, a link that opens apart
    reply = page.locator("[data-testid=message][data-role=assistant]").last
    assert reply.locator(".code pre code").text_content().startswith("from pathlib import Path")
    assert reply.locator("table th").all_text_contents() == ["method", "closes the file", "reads"]
    assert reply.locator("ol li").count() == 3 and reply.locator("h2").text_content() == "Reading a file in Python"
    link = reply.locator("a").first
    assert link.get_attribute("target") == "_blank" and "noopener" in str(link.get_attribute("rel"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    reply.locator("[data-testid=copy-code]").click()
    page.wait_for_selector("[data-testid=copy-code]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()").startswith("from pathlib import Path")
    page.screenshot(path=str(shots / "chat-markdown-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "chat-markdown-phone.png"))
    page.close()


def test_on_a_phone_the_sidebar_folds_away_and_the_chat_fits(site: Stack, browser: Any, shots: Path) -> None:
    who = user()
    tid = in_thread(thread_with(site, who, "Lisbon weekend", [("Plan a weekend in Lisbon", "Day one: Alfama.")]))
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{site.web}/#token={mint(SECRET, who)}")
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    aside = page.locator("aside")
    assert aside.bounding_box()["x"] + aside.bounding_box()["width"] <= 1  # folded away
    page.click("[data-testid=menu]")
    page.wait_for_function("document.querySelector('aside').getBoundingClientRect().x >= 0")
    page.click(f"[data-testid=thread][data-thread-id='{tid}']")
    page.wait_for_function("document.querySelector('aside').getBoundingClientRect().right <= 1")
    page.wait_for_selector("[data-testid=message]:has-text('Alfama')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    composer = page.locator("#composer").bounding_box()
    assert composer["y"] + composer["height"] <= 844 and composer["width"] <= 390
    send(page, "And where to eat?")
    page.wait_for_selector("[data-testid=message][data-role=assistant][data-status=success]:has-text('[mock]') "
                           "[data-testid=text]:not([data-revealing=true])", timeout=30_000)
    page.screenshot(path=str(shots / "chat-phone.png"))
    page.close()


def test_a_person_answers_a_tool_in_the_thread_and_the_reply_goes_on(site: Stack, browser: Any) -> None:
    who = user()
    page = open_chat(browser, site.web, who)
    new_thread(page)
    page.select_option("[data-testid=agent]", "weather")
    send(page, 'tool:ask_human {"question": "Shall I book the ferry?"}')
    ask = page.wait_for_selector("[data-testid=ask]", timeout=20_000)
    assert "Shall I book the ferry?" in str(ask.text_content())
    page.fill("[data-testid=ask-answer]", "Yes, the morning one")
    page.click("[data-testid=ask-submit]")
    page.wait_for_selector("[data-testid=message][data-role=tool]:has-text('Yes, the morning one')", timeout=20_000)
    page.wait_for_function("document.querySelectorAll('[data-testid=ask]').length === 0")
    page.wait_for_selector("[data-testid=message][data-role=assistant][data-status=success]:has-text('[mock]')",
                           timeout=30_000)  # the reply went on after the answer
    page.close()


def test_a_new_chat_gets_a_title_after_its_first_reply_in_every_tab(site: Stack, browser: Any) -> None:
    who = user()
    a = open_chat(browser, site.webs[0], who)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], who, tid)
    assert a.text_content("[data-testid=title]") == "New chat"
    send(a, "Plan a weekend in Lisbon")
    for page in (a, b):
        page.wait_for_function("!['New chat', 'Untitled'].includes(document.querySelector('[data-testid=title]')"
                               ".textContent)", timeout=30_000)
        title = page.locator(f"[data-testid=thread][data-thread-id='{tid}']").text_content() or ""
        assert title.startswith("[mock]")  # the mock model names it (a real model writes a real title)
    a.close()
    b.close()


def test_the_connection_state_shows_while_the_socket_comes_back(site: Stack, browser: Any) -> None:
    page = open_chat(browser, site.web, user())
    page.evaluate("() => { window.__states = []; window.threadline.client.onStatus((s) => window.__states.push(s)); }")
    page.evaluate("() => window.threadline.client.dropConnection()")
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    page.wait_for_function("window.__states.includes('connecting') && window.__states.at(-1) === 'open'")
    assert page.text_content("[data-testid=conn]") == "Connected"
    page.close()


def test_a_second_question_from_a_human_tool_gets_its_own_form(site: Stack, browser: Any) -> None:
    """Tool call ids repeat across turns (a model numbers them per reply): a later question is asked
    even though an earlier call with the same id was answered."""
    page = open_chat(browser, site.web, user())
    new_thread(page)
    page.select_option("[data-testid=agent]", "weather")
    for question, answer in (("Shall I book the ferry?", "Yes"), ("And the hotel?", "The one by the sea")):
        send(page, f'tool:ask_human {{"question": "{question}"}}')
        ask = page.wait_for_selector(f"[data-testid=ask]:has-text('{question}')", timeout=20_000)
        ask.query_selector("[data-testid=ask-answer]").fill(answer)
        ask.query_selector("[data-testid=ask-submit]").click()
        page.wait_for_selector(f"[data-testid=message][data-role=tool]:has-text('{answer}')", timeout=20_000)
        page.wait_for_function("document.querySelectorAll('[data-testid=ask]').length === 0")
    page.close()


def test_on_a_phone_the_view_follows_a_streaming_reply_to_its_end(site: Stack, browser: Any) -> None:
    who = user()
    filler = [(f"Question {i}", "A long answer that takes a few lines on a phone. " * 4) for i in range(6)]
    tid = in_thread(thread_with(site, who, "Long chat", filler))
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{site.web}/#token={mint(SECRET, who)}&thread={tid}")
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    page.wait_for_selector("[data-testid=message]:has-text('Question 5')")
    send(page, "Tell me more")
    page.wait_for_selector("[data-testid=message][data-role=assistant][data-status=success]:has-text('[mock]') "
                           "[data-testid=text]:not([data-revealing=true])", timeout=30_000)
    page.wait_for_timeout(100)  # the last frame of the reveal
    gap = page.evaluate("""() => {
        const box = document.getElementById('messages');
        const last = [...box.querySelectorAll('[data-testid=message]')].pop();
        return last.getBoundingClientRect().bottom - box.getBoundingClientRect().bottom;
    }""")
    assert gap <= 1, f"the reply's end is {gap:.0f} px below the fold"
    page.close()


def test_a_tool_call_waits_for_allow_or_deny_and_every_tab_sees_the_decision(site: Stack, browser: Any) -> None:
    who = user()
    a = open_chat(browser, site.web, who)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], who, tid)
    a.select_option("[data-testid=agent]", "weather")
    send(a, 'tool:book_hotel {"city": "Lisbon", "nights": 2}')
    for page in (a, b):
        card = page.wait_for_selector("[data-testid=approval]", timeout=20_000)
        assert "book_hotel" in str(card.text_content()) and "Lisbon" in str(card.text_content())
    b.click("[data-testid=approval-allow]")  # decided in the other tab
    for page in (a, b):
        page.wait_for_function("document.querySelectorAll('[data-testid=approval]').length === 0", timeout=20_000)
        page.wait_for_selector("[data-testid=message][data-role=tool]:has-text('Allowed')", timeout=20_000)
        page.wait_for_selector("[data-testid=message][data-role=tool]:has-text('HTL-')", timeout=20_000)  # it ran
    a.wait_for_function("document.querySelectorAll('[data-testid=message][data-role=assistant][data-status=success]')"
                        ".length >= 2", timeout=30_000)  # the reply went on after the decision
    send(a, 'tool:book_hotel {"city": "Porto"}')
    a.wait_for_selector("[data-testid=approval]", timeout=20_000)
    a.click("[data-testid=approval-deny]")
    a.wait_for_selector("[data-testid=message][data-role=tool]:has-text('Denied')", timeout=20_000)
    a.wait_for_selector("[data-testid=message][data-role=tool]:has-text('execution-denied')", timeout=20_000)
    assert a.locator("[data-testid=message][data-role=tool]:has-text('HTL-')").count() == 1  # Porto never booked
    a.close()
    b.close()


def test_tabs_see_who_is_here_who_types_and_a_person_taking_over(site: Stack, browser: Any) -> None:
    """Two tabs on two web processes: each sees the other (viewers, typing as it happens and stopping
    after the send); staff take the thread over and answer as a human agent: both tabs show it."""
    import httpx

    who = user()
    a = open_chat(browser, site.web, who)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], who, tid)
    for page in (a, b):
        page.wait_for_selector("[data-testid=viewers]:has-text('(2 tabs)')", timeout=20_000)
    staff = {"Authorization": f"Bearer {mint(SECRET, 'ana', admin=True)}"}

    def typing_seen_by_staff() -> dict[str, bool]:
        listed = httpx.get(f"{site.web}/api/threads/{tid}/presence", headers=staff).json()
        return {v["userId"]: v["typing"] for v in listed["viewers"]}

    a.type("[data-testid=prompt]", "hello the", delay=30)
    a.wait_for_function("window.threadline.presence.typists({includeMe: true}).length === 1", timeout=20_000)
    assert typing_seen_by_staff() == {who: True}
    assert a.text_content("[data-testid=typing]") == ""  # a tab does not show its own user typing
    a.press("[data-testid=prompt]", "Enter")
    b.wait_for_function("window.threadline.presence.typists({includeMe: true}).length === 0", timeout=20_000)
    assert typing_seen_by_staff() == {who: False}
    httpx.post(f"{site.web}/api/threads/{tid}/presence", json={"typing": True}, headers=staff)
    for page in (a, b):
        page.wait_for_selector("[data-testid=typing]:has-text('ana is typing')", timeout=20_000)
        page.wait_for_selector("[data-testid=viewers]:has-text('ana')", timeout=20_000)
    httpx.post(f"{site.web}/api/threads/{tid}/presence", json={"typing": False}, headers=staff)
    for page in (a, b):
        page.wait_for_function("document.querySelector('[data-testid=typing]').textContent === ''", timeout=20_000)
    r = httpx.post(f"{site.web}/api/threads/{tid}/takeover", json={"agentName": "support", "metadata": {"name": "Ana"}},
                   headers=staff)
    assert r.status_code == 200, r.text
    for page in (a, b):
        page.wait_for_selector("[data-testid=takeover]:has-text('Ana (a person) answers here')", timeout=20_000)
    r = httpx.post(f"{site.web}/api/threads/{tid}/messages", headers=staff, json={
        "message": {"role": "assistant", "content": "Ana from support here."}, "agentName": "support",
        "generate": False, "metadata": {"name": "Ana"}})
    assert r.status_code == 201, r.text
    for page in (a, b):
        shown = page.wait_for_selector("[data-testid=message][data-author=Ana]:has-text('Ana from support here.')",
                                       timeout=20_000)
        assert shown is not None
    b.close()  # the other tab goes away: this one sees it at once
    a.wait_for_function("!document.querySelector('[data-testid=viewers]').textContent.includes('tabs')",
                        timeout=20_000)
    a.close()


def test_two_users_and_a_human_agent_share_a_thread(site: Stack, browser: Any) -> None:
    """The owner shares a chat from the page; the other user (another web process) finds it in their
    list live, both see who is here and who types, each message shows who wrote it, a staff member
    answers as a human agent, and a reader cannot write."""
    import httpx

    owner, guest = user(), user()
    a = open_chat(browser, site.web, owner)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], guest)
    listed = f"[data-testid=thread][data-thread-id='{tid}']"
    assert b.locator(listed).count() == 0
    a.once("dialog", lambda d: d.accept(guest))
    a.click("[data-testid=share]")
    a.wait_for_selector(f"[data-testid=members]:has-text('{guest} (writer)')", timeout=20_000)
    b.wait_for_selector(listed, timeout=20_000)  # their own list, live
    b.click(listed)
    assert b.is_hidden("[data-testid=share]")  # the owner's to share
    for page in (a, b):
        page.wait_for_selector(f"[data-testid=viewers]:has-text('{owner}'):has-text('{guest}')", timeout=20_000)
    b.type("[data-testid=prompt]", "hi from the guest", delay=30)
    a.wait_for_selector(f"[data-testid=typing]:has-text('{guest} is typing')", timeout=20_000)
    b.press("[data-testid=prompt]", "Enter")
    mine = a.wait_for_selector(f"[data-testid=message][data-role=user][data-author='{guest}']", timeout=20_000)
    assert mine is not None and "hi from the guest" in str(mine.text_content())
    assert b.locator("[data-testid=message][data-role=user][data-author='']").count() == 1  # their own: no name
    for page in (a, b):
        assert last_reply(page)
    staff = {"Authorization": f"Bearer {mint(SECRET, 'ana', admin=True)}"}
    r = httpx.post(f"{site.web}/api/threads/{tid}/messages", headers=staff, json={
        "message": {"role": "assistant", "content": "Ana from support joins."}, "agentName": "support",
        "generate": False, "metadata": {"name": "Ana"}})
    assert r.status_code == 201, r.text
    for page in (a, b):
        page.wait_for_selector("[data-testid=message][data-author=Ana]:has-text('Ana from support joins.')",
                               timeout=20_000)
    r = httpx.post(f"{site.web}/api/threads/{tid}/members", json={"userId": guest, "role": "reader"},
                   headers={"Authorization": f"Bearer {mint(SECRET, owner)}"})
    assert r.status_code == 200, r.text
    b.wait_for_selector("[data-testid=prompt]:disabled", timeout=20_000)  # a reader watches
    a.close()
    b.close()


def answers(page: Any, count: int) -> None:
    """Wait until the chat shows ``count`` finished replies and nothing streams."""
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=message][data-role=assistant][data-status=success]').length === n"
        " && !document.querySelector('[data-testid=message][data-status=streaming]')", arg=count, timeout=30_000)


def test_an_edited_message_shows_its_versions_in_every_tab(site: Stack, browser: Any) -> None:
    """Editing a sent message answers the new version in place of the old; both tabs (on two web
    processes) show "2/2" under it, and going back to 1/2 brings the old branch back whole."""
    who = user()
    a = open_chat(browser, site.web, who)
    tid = new_thread(a)
    for n, prompt in enumerate(("first question", "second question"), 1):
        send(a, prompt)
        answers(a, n)
    b = open_chat(browser, site.webs[1], who, tid)
    answers(b, 2)
    a.once("dialog", lambda d: d.accept("first, asked better"))
    a.locator("[data-testid=message][data-role=user]:has-text('first question') [data-testid=edit]").click()
    edited = "[data-testid=message][data-role=user]:has-text('first, asked better')"
    for page in (a, b):
        page.wait_for_selector(f"{edited} [data-testid=version-index]:has-text('2/2')", timeout=20_000)
        answers(page, 1)  # the new version's, and nothing of the branch left
        assert page.locator("[data-testid=message]:has-text('question')").count() == 0
    b.click(f"{edited} [data-testid=version-prev]")
    first = "[data-testid=message][data-role=user]:has-text('first question')"
    for page in (a, b):
        page.wait_for_selector(f"{first} [data-testid=version-index]:has-text('1/2')", timeout=20_000)
        page.wait_for_selector("[data-testid=message][data-role=user]:has-text('second question')", timeout=20_000)
        answers(page, 2)
        assert page.locator("[data-testid=message]:has-text('asked better')").count() == 0
    a.close()
    b.close()


def memory_shows(page: Any, text: str) -> None:
    page.wait_for_function("t => document.querySelector('[data-testid=memory-text]').value === t", arg=text,
                           timeout=20_000)


def test_the_memory_panel_shows_what_is_kept_live_and_saves_the_users_edit(site: Stack, browser: Any) -> None:
    """The working memory agents keep about the user shows in the sidebar of every tab as it changes; the
    user's edit is saved, and an edit made from a version that changed meanwhile is refused, not lost."""
    import httpx

    who = user()
    auth = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    a = open_chat(browser, site.web, who)
    b = open_chat(browser, site.webs[1], who)
    for page in (a, b):
        page.click("[data-testid=memory] summary")
    assert httpx.put(f"{site.web}/api/memory/working", json={"text": "## Preferences\nGreen tea"},
                     headers=auth).status_code == 200  # as an agent's tool would keep it
    for page in (a, b):
        memory_shows(page, "## Preferences\nGreen tea")
    a.fill("[data-testid=memory-text]", "## Preferences\nCoffee")
    a.click("[data-testid=memory-save]")
    memory_shows(b, "## Preferences\nCoffee")
    b.wait_for_selector(f"[data-testid=memory-info]:has-text('by user:{who}')")
    got = httpx.get(f"{site.web}/api/memory/working", headers=auth).json()
    assert (got["text"], got["version"]) == ("## Preferences\nCoffee", 2)
    b.fill("[data-testid=memory-text]", "## Preferences\nWater")  # b edits from version 2...
    httpx.put(f"{site.web}/api/memory/working", json={"text": "## Preferences\nCoffee, black"}, headers=auth)
    b.wait_for_selector("[data-testid=memory-info]:has-text('version 3')")  # ...which changes meanwhile
    b.click("[data-testid=memory-save]")
    b.wait_for_selector("[data-testid=banner]:has-text('changed meanwhile')")
    memory_shows(b, "## Preferences\nCoffee, black")
    assert httpx.get(f"{site.web}/api/memory/working", headers=auth).json()["version"] == 3
