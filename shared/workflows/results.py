"""What the ready agent steps return to workflow code."""

from __future__ import annotations

import msgspec

from threadline.shared.records import Usage


class GeneratedText(msgspec.Struct, rename="camel", kw_only=True):
    """An agent's answer: its text, the reply's message and the prompt's, how it ended."""

    text: str
    thread_id: str
    message_id: str
    prompt_message_id: str
    outcome: str
    usage: Usage = msgspec.field(default_factory=Usage)
