"""The chat page in real Chromium: two tabs in sync, optimistic send, resume, stop, errors."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import SECRET, Stack
from threadline.shared.auth import mint

_users = itertools.count()

# Records every text an assistant message shows, and how many copies of each user
# message the page ever held at once (installed before the page's own scripts).
RECORDER = """
window.__texts = []; window.__maxCopies = {};
new MutationObserver(() => {
  const users = {};
  for (const el of document.querySelectorAll('[data-testid=message][data-role=user] [data-testid=text]')) {
    users[el.textContent] = (users[el.textContent] || 0) + 1;
  }
  for (const [t, n] of Object.entries(users)) window.__maxCopies[t] = Math.max(window.__maxCopies[t] || 0, n);
  for (const el of document.querySelectorAll('[data-testid=message][data-role=assistant] [data-testid=text]')) {
    const last = window.__texts[window.__texts.length - 1];
    if (el.textContent && el.textContent !== last) window.__texts.push(el.textContent);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def seed_notes(redis_url: str, thread_id: str, who: str, count: int) -> None:
    """Many messages at once, straight through the store (the HTTP API would rate-limit them)."""
    import asyncio

    from threadline.shared.records import Message
    from threadline.shared.storage.client import connect
    from threadline.shared.threads import Store

    async def go() -> None:
        client = connect(redis_url)
        notes = [Message(message_id="", thread_id="", role="assistant", text=f"note {i}") for i in range(count)]
        await Store(client).messages.save(thread_id, who, notes)
        await client.aclose()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        pool.submit(asyncio.run, go()).result()


def user() -> str:
    return f"browser-user-{next(_users)}"


def open_chat(browser: Any, base: str, who: str, thread_id: str | None = None) -> Any:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.add_init_script(RECORDER)
    hash_ = f"#token={mint(SECRET, who)}" + (f"&thread={thread_id}" if thread_id else "")
    page.goto(f"{base}/{hash_}")
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    return page


def new_thread(page: Any) -> str:
    page.click("[data-testid=new-thread]")
    page.wait_for_selector("[data-testid=thread].selected")
    return str(page.get_attribute("[data-testid=thread].selected", "data-thread-id"))


def send(page: Any, text: str) -> None:
    page.fill("[data-testid=prompt]", text)
    page.press("[data-testid=prompt]", "Enter")


def last_reply(page: Any, status: str = "success", timeout: float = 30_000) -> str:
    sel = f"[data-testid=message][data-role=assistant][data-status={status}] [data-testid=text]:not([data-revealing=true])"
    page.wait_for_selector(sel, timeout=timeout)
    return str(page.locator(sel).last.text_content())


def streaming_reply(site: Stack, browser: Any, prompt: str, words: int) -> tuple[Any, str, str]:
    """(page, user, thread) with a reply streaming that already shows more than ``words`` words."""
    who = user()
    page = open_chat(browser, site.web, who)
    tid = new_thread(page)
    send(page, prompt)
    page.wait_for_function(f"window.__texts.some(t => t.split(' ').length > {words})", timeout=15_000)
    return page, who, tid


def saved_reply(site: Stack, who: str, thread_id: str) -> dict[str, Any]:
    r = httpx.get(f"{site.web}/api/threads/{thread_id}/messages",
                  headers={"Authorization": f"Bearer {mint(SECRET, who)}"})
    return next(m for m in r.json()["page"] if m["role"] == "assistant")


def test_a_message_sent_in_one_tab_streams_into_both(site: Stack, browser: Any, shots: Path) -> None:
    who = user()
    a = open_chat(browser, site.webs[0], who)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], who)
    b.click(f"[data-testid=thread][data-thread-id='{tid}']")
    send(a, "Hello from tab A")
    for page in (a, b):
        page.wait_for_selector("[data-testid=message][data-status=streaming]", timeout=15_000)
        page.wait_for_selector("[data-testid=message][data-role=user]:has-text('Hello from tab A')")
    a.screenshot(path=str(shots / "chat-streaming.png"))
    texts = [last_reply(page) for page in (a, b)]
    assert texts[0] == texts[1] == saved_reply(site, who, tid)["text"]
    assert texts[0].startswith("[mock]") and len(texts[0].split()) == 60
    a.screenshot(path=str(shots / "chat.png"))
    a.close()
    b.close()


def test_the_optimistic_message_shows_at_once_and_never_twice(site: Stack, browser: Any) -> None:
    page = open_chat(browser, site.web, user())
    new_thread(page)
    shown_at_once = page.evaluate("""() => {
        document.querySelector('[data-testid=prompt]').value = 'optimistic hello';
        document.querySelector('[data-testid=send]').click();
        // still inside the click's task: no frame from the server can have arrived
        const el = document.querySelector('[data-testid=message][data-role=user][data-status=sending]');
        return el ? el.textContent : null;
    }""")
    assert shown_at_once == "optimistic hello"
    page.wait_for_selector("[data-testid=message][data-role=user][data-status=success]:has-text('optimistic hello')")
    last_reply(page)
    assert page.evaluate("window.__maxCopies['optimistic hello']") == 1
    assert page.locator("[data-testid=message][data-role=user]").count() == 1
    page.close()


def test_reload_mid_stream_resumes_the_text_without_a_gap(site: Stack, browser: Any) -> None:
    page, who, tid = streaming_reply(site, browser, "a long answer please", 8)
    page.reload()
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    final = last_reply(page)
    texts = page.evaluate("window.__texts")
    assert final == saved_reply(site, who, tid)["text"]
    assert texts and all(final.startswith(t.rstrip("▍")) for t in texts), texts
    page.close()


def test_a_dropped_connection_resumes_from_the_stream_cursor(site: Stack, browser: Any) -> None:
    page, who, tid = streaming_reply(site, browser, "keep going", 8)
    page.evaluate("window.threadline.client.dropConnection()")
    final = last_reply(page)
    assert final == saved_reply(site, who, tid)["text"]
    assert all(final.startswith(t) for t in page.evaluate("window.__texts"))
    page.close()


def test_stop_aborts_the_reply_and_keeps_the_partial_text(site: Stack, browser: Any) -> None:
    page, who, tid = streaming_reply(site, browser, "stop me", 5)
    page.wait_for_selector("[data-testid=stop]:visible")
    page.click("[data-testid=stop]")
    page.wait_for_selector("[data-testid=message][data-role=assistant][data-status=failed] [data-testid=error]",
                           timeout=10_000)
    saved = saved_reply(site, who, tid)
    assert saved["status"] == "failed" and saved["error"] == "aborted"
    assert 0 < len(saved["text"].split()) < 60
    assert page.locator("[data-testid=stop]").is_hidden()
    page.close()


def test_a_rate_limited_send_says_when_to_retry(site: Stack, browser: Any, shots: Path) -> None:
    page = open_chat(browser, site.web, user())
    new_thread(page)
    for i in range(4):
        send(page, f"burst {i}")
    # refused by the server, or held back by the page once the live status said the bucket is empty
    page.wait_for_selector("[data-testid=banner].shown:has-text('retry in')", timeout=10_000)
    assert "too fast" in str(page.text_content("[data-testid=banner]"))
    page.wait_for_selector("[data-testid=send][disabled]")  # the status is live: Send waits
    page.wait_for_selector("[data-testid=send-wait]:has-text('You can send in')")
    page.screenshot(path=str(shots / "chat-rate-limited.png"))
    page.wait_for_selector("[data-testid=send]:not([disabled])", timeout=10_000)  # RATE_LIMIT_SENDS_PER_MINUTE=30
    assert page.is_hidden("[data-testid=send-wait]")
    send(page, "after the wait")
    page.wait_for_selector("[data-testid=message][data-role=user][data-status=success]:has-text('after the wait')")
    page.close()


def test_send_waits_for_the_rate_limit_a_second_tab_used_up(site: Stack, browser: Any) -> None:
    """The status is live: sends from another tab empty the bucket, and this tab's Send waits."""
    who = user()
    a = open_chat(browser, site.web, who)
    tid = new_thread(a)
    b = open_chat(browser, site.webs[1], who, tid)
    assert b.is_enabled("[data-testid=send]")
    for i in range(3):  # RATE_LIMIT_BURST=3
        send(a, f"from a {i}")
    b.wait_for_selector("[data-testid=send][disabled]")
    wait_text = str(b.text_content("[data-testid=send-wait]"))
    assert wait_text.startswith("You can send in") and 0 < int(wait_text.split()[-1].rstrip("s")) <= 2
    b.wait_for_selector("[data-testid=send]:not([disabled])", timeout=10_000)
    a.close()
    b.close()


def test_threads_sidebar_creates_renames_and_deletes_live(site: Stack, browser: Any) -> None:
    who = user()
    a = open_chat(browser, site.webs[0], who)
    b = open_chat(browser, site.webs[1], who)
    tid = new_thread(a)
    b.wait_for_selector(f"[data-testid=thread][data-thread-id='{tid}']")
    a.once("dialog", lambda d: d.accept("Renamed chat"))
    a.click(f"[data-testid=thread][data-thread-id='{tid}'] [data-testid=rename]")
    b.wait_for_selector(f"[data-testid=thread][data-thread-id='{tid}']:has-text('Renamed chat')")
    a.once("dialog", lambda d: d.accept())
    a.click(f"[data-testid=thread][data-thread-id='{tid}'] [data-testid=delete]")
    b.wait_for_selector(f"[data-testid=thread][data-thread-id='{tid}']", state="detached")
    a.close()
    b.close()


def test_an_optimistic_message_sent_while_offline_arrives_once(site: Stack, browser: Any) -> None:
    page = open_chat(browser, site.web, user())
    new_thread(page)
    page.evaluate("""() => {
        window.threadline.client.dropConnection();
        document.querySelector('[data-testid=prompt]').value = 'sent while offline';
        document.querySelector('[data-testid=send]').click();
    }""")
    page.wait_for_selector("[data-testid=message][data-role=user][data-status=sending]:has-text('sent while offline')")
    page.wait_for_selector("[data-testid=conn][data-status=open]")
    page.wait_for_selector("[data-testid=message][data-role=user][data-status=success]:has-text('sent while offline')")
    last_reply(page)
    assert page.evaluate("window.__maxCopies['sent while offline']") == 1
    page.close()


def long_thread(site: Stack, browser: Any, count: int) -> Any:
    """A page open on a thread of ``count`` notes ("note 0".."note N"), scrolled to the newest."""
    who = user()
    headers = {"Authorization": f"Bearer {mint(SECRET, who)}"}
    tid = httpx.post(f"{site.web}/api/threads", json={"title": "long"}, headers=headers).json()["threadId"]
    seed_notes(site.redis_url, tid, who, count)
    page = open_chat(browser, site.web, who, thread_id=tid)
    page.wait_for_selector(f"[data-testid=message]:has-text('note {count - 1}')")
    return page


def test_scrolling_up_goes_past_the_live_window_to_the_first_message(site: Stack, browser: Any) -> None:
    page = long_thread(site, browser, 160)
    for _ in range(40):
        if page.locator("[data-testid=message]:has-text('note 0')").count():
            break
        page.evaluate("document.querySelector('[data-testid=messages]').scrollTop = 0")
        page.wait_for_timeout(150)
    texts = page.locator("[data-testid=message] [data-testid=text]").all_text_contents()
    assert texts == [f"note {i}" for i in range(160)]  # all of them, in order, once each
    page.close()


def test_scrolling_up_loads_older_messages(site: Stack, browser: Any) -> None:
    page = long_thread(site, browser, 45)
    assert page.locator("[data-testid=message]").count() == 30
    page.evaluate("document.querySelector('[data-testid=messages]').scrollTop = 0")
    page.wait_for_selector("[data-testid=message]:has-text('note 0')")
    assert page.locator("[data-testid=message]").count() == 45
    page.close()
