"""Documents in agents' replies (RAG), both styles of the reference.

Prompt-based: an agent whose context options have ``rag`` gets the passages that best
match the prompt in its context, numbered ``[1]``, ``[2]``... so the model can cite
them (``passages_message``). Tool-based: ``document_search()`` (shared.agents.document_search)
is a ready tool the model calls with its own query. Either way the passages a reply drew on are kept
on it as ``source`` parts, numbered as the model saw them (``Sources``).

Namespaces are read on behalf of the prompt's user: ``user`` is theirs, ``global``
everyone's, ``team:<id>`` a team's. Which teams an agent reads is the app's choice
(agents are its code); another user's namespace is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from threadline.shared.documents.store import agent_namespaces
from threadline.shared.rag.options import RagOptions
from threadline.shared.rag.search import ChunkResult, search_documents
from threadline.shared.records import Message, Part, SourcePart, TextPart
from threadline.shared.threads import Store
from threadline.shared.vectors.search import MemorySearch

EXCERPT_CHARS = 400  # of a passage's own chunk, kept on the reply for the frontend to show


class Knowledge:
    """Document search for one user's prompt."""

    def __init__(self, store: Store, memory: MemorySearch, user_id: str) -> None:
        self._store = store
        self._memory = memory
        self.user_id = user_id

    async def search(self, options: RagOptions, text: str, *, limit: int | None = None) -> list[ChunkResult]:
        return await search_documents(
            self._store, self._memory, agent_namespaces(options.namespaces, self.user_id), text,
            limit=limit or options.limit,
            metadata=dict(options.metadata), before=options.before, after=options.after,
            text_search=options.text_search, vector_search=options.vector_search, bill_to=self.user_id)


WEB = "web"  # the namespace of a web page a reply cites


class Sources:
    """The passages one reply drew on, numbered in the order the model first saw them."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str, int], SourcePart] = {}

    def add(self, results: Iterable[ChunkResult]) -> list[SourcePart]:
        """Number the new ones; a passage shown before keeps its number."""
        out: list[SourcePart] = []
        for r in results:
            ref = (r.namespace, r.key, r.chunk)
            part = self._parts.get(ref)
            if part is None:
                part = SourcePart(source_id=str(len(self._parts) + 1), namespace=r.namespace, key=r.key,
                                  title=r.document.title, chunk=r.chunk, heading=r.heading,
                                  excerpt=r.text[:EXCERPT_CHARS], score=r.score)
                self._parts[ref] = part
            out.append(part)
        return out

    def cite(self, url: str, title: str = "") -> SourcePart:
        """A web page the answer cites (namespace ``web``, the URL as its key); cited again, the same."""
        part = self._parts.get((WEB, url, 0))
        if part is None:
            part = self._parts[(WEB, url, 0)] = SourcePart(source_id=str(len(self._parts) + 1), namespace=WEB,
                                                           key=url, title=title)
        return part

    def adopt(self, parts: Iterable[Part]) -> None:
        """Take the source parts of a context message as numbered there (before any other)."""
        for p in parts:
            if isinstance(p, SourcePart):
                self._parts.setdefault((p.namespace, p.key, p.chunk), p)

    def parts(self) -> list[SourcePart]:
        return list(self._parts.values())


def passages_message(thread_id: str, results: list[ChunkResult]) -> Message | None:
    """The context message of prompt-based RAG: the passages, numbered, with their sources as parts."""
    if not results:
        return None
    sources = Sources().add(results)
    blocks = [f"[{s.source_id}] {_label(s)}\n{r.context}" for s, r in zip(sources, results, strict=True)]
    text = ("Passages from documents that may help with the next message. Cite the ones you use by "
            "their number, like [1]; if none helps, say so rather than guess.\n\n" + "\n\n".join(blocks))
    return Message(message_id="", thread_id=thread_id, role="system", text=text, parts=[TextPart(text=text), *sources])


def is_passages(message: Message) -> bool:
    return message.role == "system" and any(isinstance(p, SourcePart) for p in message.parts)


def _label(source: SourcePart) -> str:
    name = source.title or source.key
    return f"{name} ({source.heading})" if source.heading else name
