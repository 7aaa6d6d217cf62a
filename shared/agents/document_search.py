"""Tool-based RAG: a ready tool the model calls to search documents with its own query."""

from __future__ import annotations

from typing import Annotated

import msgspec

from threadline.shared.agents import Tool, ToolContext
from threadline.shared.documents.store import agent_namespaces
from threadline.shared.errors import Unavailable
from threadline.shared.rag.knowledge import Sources
from threadline.shared.rag.options import RagOptions


class DocumentQuery(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=1000,
                                       description="What to look for, in the words the documents would use")]
    limit: Annotated[int, msgspec.Meta(ge=1, le=20, description="How many passages (default 5)")] | None = None


def document_search(namespaces: list[str] | None = None, *, limit: int = 5, name: str = "search_documents",
                    description: str = "Search the user's documents. Returns numbered passages; cite the ones "
                                       "you use by their number, like [1].",
                    metadata: dict[str, str | int | bool] | None = None) -> Tool:
    """Tool-based RAG: a tool the model calls to search documents of ``namespaces`` (default: the user's)."""
    options = RagOptions(namespaces=namespaces or ["user"], limit=limit, metadata=metadata or {})
    agent_namespaces(options.namespaces, "")  # a bad name fails at definition

    async def handler(ctx: ToolContext, args: DocumentQuery) -> list[dict[str, object]]:
        if ctx.knowledge is None:
            raise Unavailable("document search is not available here")
        results = await ctx.knowledge.search(options, args.query, limit=args.limit)
        sources = ctx.sources.add(results) if ctx.sources is not None else Sources().add(results)
        return [{"source": s.source_id, "title": s.title or s.key, "heading": s.heading, "text": r.context}
                for s, r in zip(sources, results, strict=True)]

    return Tool(name, description, DocumentQuery, handler)
