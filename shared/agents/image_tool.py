"""Images a model asks for: a ready tool that calls the provider's images API, keeps the image
as a file of the prompt's user, and shows it in the reply (an ``image`` part of the final message)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from threadline.shared.agents import Tool, ToolContext
from threadline.shared.errors import Unavailable
from threadline.shared.llm.images import generate_image
from threadline.shared.llm.providers import provider_named
from threadline.shared.records import ImagePart

Size = Literal["256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "1792x1024", "1024x1792"]


class ImageRequest(msgspec.Struct, forbid_unknown_fields=True):
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=4000,
                                        description="What the image shows, in detail")]
    size: Size | None = None


def image_generation(model: str = "gpt-image-1", *, size: Size | None = None, provider: str | None = None,
                     name: str = "generate_image",
                     description: str = "Create an image from a description; it is shown to the user.") -> Tool:
    """A tool that generates an image with ``model`` at ``provider`` (default: the agent's)."""

    async def handler(ctx: ToolContext, args: ImageRequest) -> dict[str, object]:
        if ctx.files is None or ctx.settings is None:
            raise Unavailable("image generation is not available here")
        chosen = provider_named(ctx.settings, provider if provider is not None else ctx.agent.provider)
        if chosen is None:
            raise Unavailable("image generation needs a model provider (LLM_BASE_URL or the app's PROVIDERS)")
        data = await generate_image(chosen, model, args.prompt, size=args.size or size)
        record = await ctx.files.upload(ctx.user_id, f"image-{ctx.tool_call_id[-8:]}.png", data)
        if ctx.shown is not None:
            ctx.shown.append(ImagePart(file_id=record.file_id, mime_type=record.media_type, filename=record.name))
        return {"fileId": record.file_id, "mediaType": record.media_type, "shownToUser": True}

    return Tool(name, description, ImageRequest, handler)
