"""Tools over a thread's canvas (shared.threads.canvas): the agent reads it, edits one element at a
time, and puts an element back as an earlier edit found it, by that edit's snippet id (the edits
reach its context as snippets, with their states before and after: "undo the last change to the
title" names one of them). Every edit the agent makes is a snippet too, by ``agent:<name>``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from threadline.shared.agents import Tool, ToolContext
from threadline.shared.errors import BadRequest, Unavailable
from threadline.shared.threads.canvas import Canvas, check_name
from threadline.shared.threads.snippets import thread_of_snippet

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ReadCanvas(msgspec.Struct, forbid_unknown_fields=True):
    pass


class EditCanvas(msgspec.Struct, forbid_unknown_fields=True):
    target: Annotated[Name, msgspec.Meta(description="the element's id, e.g. title or p2")]
    value: Annotated[Any, msgspec.Meta(description="its new content (text, or JSON for a chart)")]
    kind: Annotated[Name, msgspec.Meta(description="title, paragraph, chart... (a new element)")] | None = None
    position: Annotated[int, msgspec.Meta(ge=0, description="where a new element goes (default: the end)")] | None = None
    summary: Annotated[str, msgspec.Meta(max_length=500, description="what the change does")] | None = None


class DeleteElement(msgspec.Struct, forbid_unknown_fields=True):
    target: Annotated[Name, msgspec.Meta(description="the element's id")]


class RestoreEdit(msgspec.Struct, forbid_unknown_fields=True):
    snippet_id: Annotated[Name, msgspec.Meta(description="the snippet of the edit whose earlier state comes back")]


def _shown(canvas: Canvas) -> dict[str, object]:
    return {"version": canvas.version, "elements": [msgspec.to_builtins(e) for e in canvas.elements]}


def canvas_tools(canvas_id: str = "draft") -> list[Tool]:
    """``read_canvas``, ``edit_canvas``, ``delete_canvas_element`` and ``restore_canvas_edit`` on the
    thread's canvas ``canvas_id``."""
    check_name(canvas_id, "canvas id")

    def canvases(ctx: ToolContext) -> Any:
        if ctx.runtime is None:
            raise Unavailable("the canvas is not reachable here")
        return ctx.runtime.store.canvases

    async def read(ctx: ToolContext, args: ReadCanvas) -> dict[str, object]:
        _, canvas = await canvases(ctx).get(ctx.thread_id, canvas_id, ctx.user_id)
        return _shown(canvas)

    async def edit(ctx: ToolContext, args: EditCanvas) -> dict[str, object]:
        _, canvas, snippet = await canvases(ctx).edit(
            ctx.thread_id, canvas_id, "set", args.target, by=f"agent:{ctx.agent.name}", caller=ctx.user_id,
            value=args.value, kind=args.kind, position=args.position, summary=args.summary)
        return {**_shown(canvas), "snippetId": snippet.snippet_id}

    async def delete(ctx: ToolContext, args: DeleteElement) -> dict[str, object]:
        _, canvas, snippet = await canvases(ctx).edit(
            ctx.thread_id, canvas_id, "delete", args.target, by=f"agent:{ctx.agent.name}", caller=ctx.user_id)
        return {**_shown(canvas), "snippetId": snippet.snippet_id}

    async def restore(ctx: ToolContext, args: RestoreEdit) -> dict[str, object]:
        if thread_of_snippet(args.snippet_id) != ctx.thread_id:
            raise BadRequest("that snippet is not of this thread")
        _, canvas, snippet = await canvases(ctx).restore(args.snippet_id, by=f"agent:{ctx.agent.name}",
                                                         caller=ctx.user_id, canvas_id=canvas_id)
        return {**_shown(canvas), "snippetId": snippet.snippet_id}

    return [
        Tool("read_canvas", "Read the canvas: its elements (id, kind, value) and version.", ReadCanvas, read),
        Tool("edit_canvas", "Set one element of the canvas (replace it, or add a new one).", EditCanvas, edit),
        Tool("delete_canvas_element", "Remove one element of the canvas.", DeleteElement, delete),
        Tool("restore_canvas_edit", "Put an element back as it was before an earlier edit, named by that "
                                    "edit's snippet id (from the reference notes).", RestoreEdit, restore),
    ]
