"""The chat page's canvas in Chromium, end to end: the user edits the draft, each edit is kept as a
snippet and listed live in every tab; a later prompt refers to an edit ("undo the last change to the
title"), the agent finds that edit in its context (the scripted model picks the snippet id out of the
reference notes it was sent, as a model would) and restores the earlier state with its tool; the
user undoes the agent's restore with a click."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_chat_page import new_thread, open_chat, send, user
from tests.support.stack import Stack, run_stack


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The test app (its `editor` agent has the canvas tools) on the scripted model."""
    with run_stack(tmp_path_factory.mktemp("canvas"), webs=2, workers=1, index=True) as stack:
        yield stack


def element_shows(page: Any, element: str, text: str) -> None:
    try:
        page.wait_for_function("([id, t]) => document.querySelector(`[data-testid=canvas-el-${id}]`)?.value === t",
                               arg=[element, text], timeout=45_000)  # (a bound for a loaded machine)
    except Exception:  # say what the tab showed (2026-12: a live render took the focus from a box being filled)
        shown = page.eval_on_selector_all("[data-testid^=canvas-el-]", "els => els.map((e) => [e.dataset.testid, e.value])")
        info = page.text_content("#canvas-info")
        banner = page.text_content("[data-testid=banner]")
        raise AssertionError(f"{element} never showed {text!r}: the tab shows {shown}, {info!r}, banner {banner!r}, "
                             f"edits {edits(page)}") from None


def save(page: Any, element: str, text: str) -> None:
    page.fill(f"[data-testid=canvas-el-{element}]", text)
    page.click(f"[data-testid=canvas-save-{element}]")


def edits(page: Any) -> list[str]:
    return [str(e) for e in page.eval_on_selector_all("[data-testid=canvas-edit] span",
                                                      "els => els.map((e) => e.textContent)")]


def test_the_agent_puts_back_the_title_an_edit_changed_and_the_user_undoes_it(drafts: Stack, browser: Any,
                                                                             shots: Path) -> None:
    who = user()
    a = open_chat(browser, drafts.web, who)
    tid = new_thread(a)
    b = open_chat(browser, drafts.webs[1], who, tid)  # another tab, on the other web process
    for page in (a, b):
        page.click("[data-testid=canvas] summary")
    save(a, "title", "Trip notes")
    element_shows(b, "title", "Trip notes")
    a.click("[data-testid=canvas-add]")
    a.wait_for_selector("[data-testid=canvas-el-p1]")
    save(a, "p1", "Day one: Alfama")
    save(a, "title", "Lisbon, three days")
    element_shows(b, "title", "Lisbon, three days")
    b.wait_for_function("() => document.querySelectorAll('[data-testid=canvas-edit]').length === 4")
    newest = edits(b)[0]
    assert newest.startswith(f"user:{who}: set title (v3) Trip notes → Lisbon, three days"), newest

    a.select_option("[data-testid=agent]", "editor")
    drafts.script({"kind": "tools", "calls": [{"name": "restore_canvas_edit",
                                               "arguments": json.dumps({"snippet_id": "$snippet(title)"})}]},
                  {"kind": "text", "chunks": ["The title is back to ", "Trip notes."]})
    send(a, "Undo the last change to the title")
    a.wait_for_selector("[data-testid=message][data-role=assistant][data-status=success] "
                        "[data-testid=text]:has-text('The title is back to Trip notes.')", timeout=30_000)
    for page in (a, b):
        element_shows(page, "title", "Trip notes")
        element_shows(page, "p1", "Day one: Alfama")  # the other element as it was
    b.wait_for_function("() => document.querySelectorAll('[data-testid=canvas-edit]').length === 5")
    assert edits(b)[0].startswith("agent:editor: restore title (v4) Lisbon, three days → Trip notes"), edits(b)

    sent = drafts.llm_requests()[-2]  # the call that chose the tool: the edit and its states were there
    notes = [str(m["content"]) for m in sent["messages"] if m["role"] == "system" and "Reference notes" in str(
        m["content"])]
    assert len(notes) == 1 and "set on title of draft v3" in notes[0] and "Trip notes" in notes[0], notes

    a.click("[data-testid=canvas-edit] >> nth=0 >> [data-testid=canvas-undo]")  # undo the agent's restore
    for page in (a, b):
        element_shows(page, "title", "Lisbon, three days")
    b.wait_for_function("() => document.querySelectorAll('[data-testid=canvas-edit]').length === 6")
    assert edits(b)[0].startswith(f"user:{who}: restore title (v5)"), edits(b)
    a.screenshot(path=str(shots / "canvas.png"))


def test_an_element_being_typed_in_keeps_its_focus_and_text_while_another_tab_edits(drafts: Stack, browser: Any) -> None:
    """A live change of the canvas (another tab saving another element) leaves the box the user is
    typing in where it is: focused, with what they typed, and their next keys go on into it."""
    who = user()
    a = open_chat(browser, drafts.web, who)
    tid = new_thread(a)
    b = open_chat(browser, drafts.webs[1], who, tid)
    for page in (a, b):
        page.click("[data-testid=canvas] summary")
    save(a, "title", "Plan")
    b.click("[data-testid=canvas-add]")
    for page in (a, b):
        page.wait_for_selector("[data-testid=canvas-el-p1]")
    a.click("[data-testid=canvas-el-title]")
    a.keyboard.press("End")
    a.keyboard.type(" for the")
    save(b, "p1", "Pack light")  # a live change reaches tab a while it types
    element_shows(a, "p1", "Pack light")
    a.keyboard.type(" weekend")
    assert a.evaluate("document.activeElement?.dataset.testid") == "canvas-el-title"
    assert a.input_value("[data-testid=canvas-el-title]") == "Plan for the weekend"
    a.click("[data-testid=canvas-save-title]")
    element_shows(b, "title", "Plan for the weekend")
