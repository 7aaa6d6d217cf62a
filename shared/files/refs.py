"""Which files a message references, kept exact in the same atomic step as the message.

Every script that saves, replaces or deletes messages (and deletes threads) calls
the Lua functions of ``lua/refs.lua`` with the thread's file index and the global counts: a
message's file ids are listed in ``thread_files`` (messageId -> ids); each file's
reference count is in ``FILE_REFS``; a file with none is in ``FILES_IDLE`` since
when, for the vacuum (shared.files.store). A save that references a file that is
not there (never uploaded, vacuumed, another user's) fails whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from threadline.shared import keys
from threadline.shared.records import FilePart, ImagePart, Message, Part


def file_ids(parts: Iterable[Part]) -> list[str]:
    """The ids of the stored files ``parts`` reference, once each, in order."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, FilePart | ImagePart) and p.file_id and p.file_id not in out:
            out.append(p.file_id)
    return out


def refs_arg(message: Message) -> str:
    """A message's file ids as its script argument."""
    return " ".join(file_ids(message.parts))


def file_keys(thread_id: str) -> list[str]:
    """The keys the Lua functions take (``fk``), in this order."""
    return [keys.thread_files(thread_id), keys.FILES, keys.FILE_REFS, keys.FILES_IDLE]


