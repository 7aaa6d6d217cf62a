"""Arguments of every query and mutation: msgspec Structs, validated at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from threadline.shared.agents.request import ReplyOptions
from threadline.shared.records import Part, Role, Status, ThreadStatus
from threadline.shared.schedules import Action, Timing
from threadline.shared.storage.pagination import Order
from threadline.shared.threads import PaginationOpts

Title = Annotated[str, msgspec.Meta(max_length=500)]
Summary = Annotated[str, msgspec.Meta(max_length=20_000)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=500_000)]
StepOrder = Annotated[int, msgspec.Meta(ge=0, lt=1 << 20)]


class _Args(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    pass


class ThreadsCreate(_Args):
    title: Title = ""
    summary: Summary = ""
    metadata: dict[str, Any] = {}


class ThreadsUpdate(_Args):
    thread_id: Id
    title: Title | None = None
    summary: Summary | None = None
    status: ThreadStatus | None = None
    metadata: dict[str, Any] | None = None


class ThreadRef(_Args):
    thread_id: Id


class PresenceSet(_Args):
    thread_id: Id
    typing: bool | None = None  # None: as it was
    leave: bool = False  # this connection leaves the thread (closing the tab does it too)


class ThreadsTakeover(_Args):
    thread_id: Id
    agent_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]  # the person's messages carry it
    metadata: dict[str, Any] | None = None  # (records.METADATA_MAX_BYTES)


class MembersAdd(_Args):
    thread_id: Id
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    role: Literal["writer", "reader"] = "writer"


class MembersRemove(_Args):
    thread_id: Id
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class ThreadsList(_Args):
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)


class AdminThreads(_Args):
    user_id: Id
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)


class InputMessage(_Args):
    role: Role = "user"
    content: Text | list[Part] = ""


class MessagesSend(_Args):
    thread_id: Id
    prompt: Text | None = None
    message: InputMessage | None = None
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    generate: bool = True
    client_message_id: Id | None = None
    order: Order | None = None
    prompt_message_id: Id | None = None
    context: dict[str, Any] | None = None  # for the reply: the agent's context_type checks it
    options: ReplyOptions | None = None  # for the reply: those the agent's client_options allow
    metadata: dict[str, Any] | None = None  # the message's own (records.METADATA_MAX_BYTES)


class MessagesEdit(_Args):
    """A new version of a user message: as messages.send, in the message's thread."""

    message_id: Id
    prompt: Text | None = None
    message: InputMessage | None = None
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    generate: bool = True
    client_message_id: Id | None = None
    context: dict[str, Any] | None = None
    options: ReplyOptions | None = None
    metadata: dict[str, Any] | None = None


class BranchSwitch(_Args):
    thread_id: Id
    order: Order


class MessagesUpdate(_Args):
    message_id: Id
    metadata: dict[str, Any] | None  # replaces the message's; null clears it


class MessagesDelete(_Args):
    message_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)]


class MessagesDeleteRange(_Args):
    thread_id: Id
    start_order: Order
    end_order: Order
    start_step_order: StepOrder = 0
    end_step_order: StepOrder = 0


class MessagesList(_Args):
    thread_id: Id
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)
    exclude_tool_messages: bool = False
    statuses: list[Status] | None = None
    streams: bool = False
    stream_cursors: Annotated[dict[Id, Order], msgspec.Meta(max_length=1000)] = {}


class StreamsAbort(_Args):
    stream_id: Id | None = None
    thread_id: Id | None = None


class MessagesRegenerate(_Args):
    message_id: Id
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    # the same attempt is the same reply (asking twice starts one); none: every request a new one
    attempt: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    context: dict[str, Any] | None = None
    options: ReplyOptions | None = None


DocumentId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
CanvasName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]


class SnippetsAdd(_Args):
    thread_id: Id
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    content: Text = ""
    target: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    summary: Summary | None = None
    message_id: Id | None = None
    # an edit of a document (shared.threads.snippets): all of these need `document` and `operation`
    document: DocumentId | None = None
    operation: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    before: Any = None
    after: Any = None
    patch: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=1000)] | None = None
    doc_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


class SnippetsDelete(_Args):
    snippet_id: Id


class SnippetsList(_Args):
    thread_id: Id
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)
    document: DocumentId | None = None  # that document's edits only


class CanvasGet(_Args):
    thread_id: Id
    canvas_id: CanvasName


class CanvasEdit(_Args):
    thread_id: Id
    canvas_id: CanvasName
    target: CanvasName  # the element's id
    operation: Literal["set", "delete"] = "set"
    value: Any = None
    kind: CanvasName | None = None
    position: Annotated[int, msgspec.Meta(ge=0)] | None = None
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None
    summary: Summary | None = None


class CanvasRestore(_Args):
    snippet_id: Id
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None
    summary: Summary | None = None


class ContextFetch(_Args):
    thread_id: Id
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    prompt: Text | None = None
    target_message_id: Id | None = None
    context_options: dict[str, Any] | None = None


Namespace = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
DocKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
MetaValue = str | int | bool


class RagAdd(_Args):
    key: DocKey
    namespace: Namespace = "user"
    content: Annotated[str, msgspec.Meta(max_length=10 << 20)] | None = None
    content_base64: Annotated[str, msgspec.Meta(max_length=14 << 20)] | None = None
    title: Title = ""
    media_type: Annotated[str, msgspec.Meta(max_length=100)] = ""
    metadata: Annotated[dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")],
                             MetaValue], msgspec.Meta(max_length=32)] = {}
    chunk_size: Annotated[int, msgspec.Meta(ge=100, le=20_000)] = 1000
    chunk_overlap: Annotated[int, msgspec.Meta(ge=0, le=5_000)] = 200


class RagRef(_Args):
    key: DocKey
    namespace: Namespace = "user"


class RagList(_Args):
    namespace: Namespace = "user"
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)


class ChunkContext(_Args):
    before: Annotated[int, msgspec.Meta(ge=0, le=5)] = 1
    after: Annotated[int, msgspec.Meta(ge=0, le=5)] = 1


class RagSearch(_Args):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    namespaces: Annotated[list[Namespace], msgspec.Meta(min_length=1, max_length=10)] = msgspec.field(
        default_factory=lambda: ["user"])
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10
    metadata: Annotated[dict[str, MetaValue], msgspec.Meta(max_length=32)] = {}
    chunk_context: ChunkContext = msgspec.field(default_factory=ChunkContext)
    text_search: bool = True
    vector_search: bool = True


PeriodName = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(\d{2}|W\d{2}|\d{2}-\d{2})$")]


class UsageGet(_Args):
    period: PeriodName | None = None  # None: the current billing period


class RateLimitStatus(_Args):
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None  # None: the default agent


WorkflowName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RunId = Annotated[str, msgspec.Meta(min_length=1, max_length=400, pattern=r"^w[0-9a-z.\-]+$")]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\n]+$")]


class WorkflowsStart(_Args):
    name: WorkflowName
    args: Any = None
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None  # one run per key


class WorkflowRef(_Args):
    run_id: RunId


class WorkflowsList(_Args):
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)


class WorkflowsEvent(_Args):
    run_id: RunId
    name: EventName
    payload: Any = None


ScheduleId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class SchedulesCreate(_Args):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    timing: Timing
    action: Action


class ScheduleRef(_Args):
    schedule_id: ScheduleId


class SchedulesList(_Args):
    pass


class WorkingMemoryGet(_Args):
    thread_id: Id | None = None  # none: the caller's own (across their threads)
    history: Annotated[int, msgspec.Meta(ge=0, le=50)] = 10


class WorkingMemorySet(_Args):
    text: Annotated[str, msgspec.Meta(max_length=8000)]
    thread_id: Id | None = None
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


# -- the cross-thread store (shared.items) --
ItemKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class StoreRef(_Args):
    key: ItemKey
    namespace: Namespace = "user"


class StorePut(_Args):
    key: ItemKey
    value: Any
    namespace: Namespace = "user"
    text: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    index: bool = True
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None  # 0: only if there is none


class StoreDelete(_Args):
    key: ItemKey
    namespace: Namespace = "user"
    expected_version: Annotated[int, msgspec.Meta(ge=1)] | None = None


class StoreList(_Args):
    namespace: Namespace = "user"
    prefix: Annotated[str, msgspec.Meta(max_length=256)] = ""
    pagination_opts: PaginationOpts = msgspec.field(default_factory=PaginationOpts)


class StoreSearch(_Args):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    namespaces: Annotated[list[Namespace], msgspec.Meta(min_length=1, max_length=10)] = msgspec.field(
        default_factory=lambda: ["user"])
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10
    text_search: bool = True
    vector_search: bool = True
