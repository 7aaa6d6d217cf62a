"""How an agent reads documents for a reply (prompt-based RAG)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from threadline.shared.documents.store import agent_namespaces

Neighbours = Annotated[int, msgspec.Meta(ge=0, le=5)]
Namespaces = Annotated[list[str], msgspec.Meta(min_length=1, max_length=16)]


class RagOptions(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Prompt-based RAG: the document passages that best match the prompt reach the context,
    numbered so the model can cite them; the reply keeps them as ``source`` parts.

    ``namespaces`` are read on behalf of the prompt's user: ``user`` is theirs, ``global``
    everyone's, ``team:<id>`` a team's (the agent, being the app's code, decides which).
    """

    namespaces: Namespaces = msgspec.field(default_factory=lambda: ["user"])
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    metadata: dict[str, str | int | bool] = {}
    before: Neighbours = 1  # neighbouring chunks given with each passage
    after: Neighbours = 1
    text_search: bool = True
    vector_search: bool = True

    def __post_init__(self) -> None:
        agent_namespaces(self.namespaces, "")  # a malformed or another user's namespace fails at definition
