"""Stored records and their parts: msgspec Structs, camelCase as the browser sees them.

New fields always get defaults so that older stored data still decodes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from threadline.shared.errors import BadRequest

Role = Literal["user", "assistant", "tool", "system"]
Status = Literal["pending", "success", "failed"]
ThreadStatus = Literal["active", "archived"]
MemberRole = Literal["writer", "reader"]  # a thread's owner is its userId, not a member


class _Record(msgspec.Struct, rename="camel", kw_only=True):
    pass


class TextPart(_Record, tag="text", tag_field="type"):
    text: str


class ReasoningPart(_Record, tag="reasoning", tag_field="type", omit_defaults=True):
    text: str
    signature: str | None = None  # the provider's seal on its thinking (Anthropic's): sent back on tool turns


class ToolCallPart(_Record, tag="tool-call", tag_field="type"):
    tool_call_id: str
    tool_name: str
    args: Any = None


class ToolResultPart(_Record, tag="tool-result", tag_field="type"):
    tool_call_id: str
    tool_name: str
    result: Any = None
    is_error: bool = False


class ToolApprovalRequestPart(_Record, tag="tool-approval-request", tag_field="type"):
    """On a reply that called a tool needing approval: the call waits for a person's decision
    (``tools.approve``), which runs the tool or tells the model it was denied."""

    approval_id: str
    tool_call_id: str
    tool_name: str
    args: Any = None


class ToolApprovalResponsePart(_Record, tag="tool-approval-response", tag_field="type", omit_defaults=True):
    """The decision on an approval request (one per request: the first decision stands)."""

    approval_id: str
    tool_call_id: str
    approved: bool
    reason: str | None = None


class ToolCallDeltaPart(_Record, tag="tool-call-delta", tag_field="type"):
    """Delta only (never stored): a piece of a tool call's arguments as the model writes them.

    The whole call follows as a ``tool-call`` part once its arguments are complete.
    """

    tool_call_id: str
    tool_name: str
    args_text_delta: str


class ObjectPart(_Record, tag="object", tag_field="type"):
    object: Any = None


class FilePart(_Record, tag="file", tag_field="type"):
    """A file: an uploaded one by ``file_id`` (its type and name then come from the file
    record), or one at ``url``."""

    url: str = ""
    mime_type: str = "application/octet-stream"
    filename: str | None = None
    file_id: str | None = None

    type_name: ClassVar[str] = "file"


class ImagePart(_Record, tag="image", tag_field="type"):
    """An image: an uploaded one by ``file_id``, or one at ``url``."""

    file_id: str | None = None
    url: str = ""
    mime_type: str = ""
    filename: str | None = None

    type_name: ClassVar[str] = "image"


class SourcePart(_Record, tag="source", tag_field="type"):
    """A document passage a reply drew on (document RAG), for the frontend to cite.

    ``source_id`` is the number the model was shown ("1", "2", ...), unique within a reply.
    """

    source_id: str
    namespace: str
    key: str
    title: str = ""
    chunk: int = 0
    heading: str = ""
    excerpt: str = ""
    score: float = 0.0


class RefusalPart(_Record, tag="refusal", tag_field="type"):
    """The model declined to answer (OpenAI's ``refusal``); the reply is failed with it."""

    text: str


Part = (TextPart | ReasoningPart | ToolCallPart | ToolResultPart | ObjectPart | FilePart | ImagePart | RefusalPart
        | SourcePart | ToolCallDeltaPart | ToolApprovalRequestPart | ToolApprovalResponsePart)


class Usage(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the provider's prompt cache
    reasoning_tokens: int = 0  # of completion_tokens, spent thinking
    estimated: bool = False  # the server sent no usage: counted from the text (about four characters a token)


class Takeover(_Record):
    """A person answering in a thread instead of its agents (a staff member): until released, a
    send saves the message and no agent answers."""

    agent_name: str  # the name the person's messages carry (a human agent)
    user_id: str  # who took over
    metadata: dict[str, Any] | None = None  # the app's: a name to show, an avatar...
    at: int = 0


class Member(_Record):
    """Someone the owner let into a thread: a writer sends and is answered; a reader watches."""

    user_id: str
    role: MemberRole
    joined_at: int = 0


class Version(_Record):
    """One child of a fork: a version of an edited message (or a turn sent after a switch)."""

    order: int
    message_id: str
    active: bool


class Fork(_Record):
    """A turn of the active path followed by more than one turn: its versions, oldest first."""

    parent_order: int
    versions: list[Version]

    @property
    def active(self) -> Version:
        return next(v for v in self.versions if v.active)


class Thread(_Record):
    thread_id: str
    user_id: str
    title: str = ""
    summary: str = ""
    status: ThreadStatus = "active"
    metadata: dict[str, Any] = {}
    created_at: int = 0
    updated_at: int = 0
    takeover: Takeover | None = None
    members: list[Member] = []


class Message(_Record):
    # order/stepOrder come right after the ids: the save script fills them in
    # place of ORDER_PLACEHOLDER (see shared.threads.messages).
    message_id: str
    thread_id: str
    order: int = -1
    step_order: int = -1
    user_id: str = ""
    role: Role = "user"
    status: Status = "success"
    text: str = ""
    parts: list[Part] = []
    agent_name: str | None = None
    model: str | None = None
    provider: str | None = None
    usage: Usage | None = None
    error: str | None = None
    client_message_id: str | None = None
    finish_reason: str | None = None
    created_at: int = 0
    # the app's own JSON (at most METADATA_MAX_BYTES encoded): last, so that a stored body ends with it
    # (the write scripts keep it when a body is written again: shared/threads/lua/metadata.lua)
    metadata: dict[str, Any] | None = None

    @property
    def is_tool(self) -> bool:
        """A tool message: role tool, or an assistant step made only of tool calls."""
        if self.role == "tool":
            return True
        return bool(self.parts) and all(
            isinstance(p, (ToolCallPart, ToolResultPart)) for p in self.parts
        )

    @property
    def index_flags(self) -> str:
        """What the write scripts index it under: two characters, '1' for a tool message (kept out
        of the no-tools index), then '1' for one not successful (kept in the open index)."""
        return ("1" if self.is_tool else "0") + ("0" if self.status == "success" else "1")


ORDER_PLACEHOLDER = b'"order":-1,"stepOrder":-1'
METADATA_MAX_BYTES = 8192  # a message's metadata, encoded
NO_METADATA = b'"metadata":null}'  # how a body ends as the write scripts take it

message_encoder = msgspec.json.Encoder()
message_decoder = msgspec.json.Decoder(Message)


def first_decisions(messages: list[Message]) -> dict[str, ToolApprovalResponsePart]:
    """The decision that stands on each approval request (the first one saved), by approval id."""
    out: dict[str, ToolApprovalResponsePart] = {}
    for m in sorted(messages, key=lambda m: (m.order, m.step_order)):
        for p in m.parts:
            if isinstance(p, ToolApprovalResponsePart):
                out.setdefault(p.approval_id, p)
    return out


def stored_body(message: Message) -> bytes:
    """A message's body as the write scripts take it: ending ``NO_METADATA`` (they keep the stored
    metadata there, or put the one given beside: shared/threads/lua/metadata.lua)."""
    bare = message if message.metadata is None else msgspec.structs.replace(message, metadata=None)
    return message_encoder.encode(bare)


def encoded_metadata(metadata: dict[str, Any] | None) -> bytes:
    """Metadata as stored (b"" for none); BadRequest past METADATA_MAX_BYTES."""
    if metadata is None:
        return b""
    raw = message_encoder.encode(metadata)
    if len(raw) > METADATA_MAX_BYTES:
        raise BadRequest(f"a message's metadata is at most {METADATA_MAX_BYTES} bytes of JSON ({len(raw)} given)")
    return raw
thread_metadata_decoder = msgspec.json.Decoder(dict[str, Any])


def text_of(parts: list[Part]) -> str:
    """The concatenated text parts of a message."""
    return "".join(p.text for p in parts if isinstance(p, TextPart))
