"""Files on the chat page in real Chromium: attach by the button and by dropping, a preview and
progress while uploading, then the sent message shows the image inline and the file as a chip,
in every tab, through short-lived signed links."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.browser.test_chat_page import new_thread, open_chat, user
from tests.support.images import png
from tests.support.stack import Stack

DROP = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const main = document.querySelector("main");
  main.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  main.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


def test_the_chat_page_uploads_an_image_and_a_dropped_file(site: Stack, browser: Any, shots: Path,
                                                           tmp_path: Path) -> None:
    who = user()
    page = open_chat(browser, site.web, who)
    tid = new_thread(page)
    picture = tmp_path / "harbour.png"
    picture.write_bytes(png(64, 40, (240, 160, 40)))
    page.set_input_files("[data-testid=file-input]", str(picture))
    page.wait_for_selector("[data-testid=attachment] img")  # the preview, before the upload ends
    page.wait_for_selector("[data-testid=attachment][data-state=uploaded]")
    note = base64.b64encode(b"tide tables: high water at 6").decode()
    page.evaluate(DROP, ["tides.txt", "text/plain", note])
    page.wait_for_selector("[data-testid=attachment][data-state=uploaded]:has-text('tides.txt')")
    page.fill("[data-testid=prompt]", "here are my files")
    page.press("[data-testid=prompt]", "Enter")
    sent = "[data-testid=message][data-role=user][data-status=success]"
    page.wait_for_selector(f"{sent} [data-testid=message-file]:has-text('tides.txt')")
    image = page.wait_for_selector(f"{sent} [data-testid=message-image]")
    assert image is not None
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 64", arg=image)
    assert page.is_hidden("[data-testid=tray]")
    other = open_chat(browser, site.web, who, tid)  # another tab of the same user sees it too
    shown = other.wait_for_selector(f"{sent} [data-testid=message-image]")
    other.wait_for_function("(img) => img.complete && img.naturalWidth === 64", arg=shown)
    href = other.get_attribute(f"{sent} [data-testid=message-file]", "href")
    assert href and "sig=" in href
    page.screenshot(path=str(shots / "chat-files.png"))
    other.close()
    page.close()


def test_a_refused_upload_shows_why_and_sends_nothing(site: Stack, browser: Any, tmp_path: Path) -> None:
    page = open_chat(browser, site.web, user())
    new_thread(page)
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x90\x00" + bytes(200))
    page.set_input_files("[data-testid=file-input]", str(bad))
    failed = page.wait_for_selector("[data-testid=attachment][data-state=failed]")
    assert failed is not None and "not accepted" in str(failed.text_content())
    assert page.is_enabled("[data-testid=send]")
    page.close()
