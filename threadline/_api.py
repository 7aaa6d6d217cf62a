from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.agents import Agent, agent_named
from threadline.shared.agents.request import ReplyRequest, admit
from threadline.shared.config import Settings, load_settings
from threadline.shared.documents.parsing import check_document
from threadline.shared.documents.store import Document, namespace_owner
from threadline.shared.errors import BadRequest, NotFound
from threadline.shared.files.refs import file_ids
from threadline.shared.files.store import FileRecord
from threadline.shared.generation.alone import generate_alone
from threadline.shared.generation.context import fetch_context_messages
from threadline.shared.generation.lock import thread_turn
from threadline.shared.generation.runner import Generation, GenerationResult
from threadline.shared.generation.sinks import MemorySink, OnDelta, Sink, StoreSink
from threadline.shared.ids import thread_of_message
from threadline.shared.items.store import Item
from threadline.shared.llm.providers import provider_named
from threadline.shared.partial_json import parse_partial
from threadline.shared.rag.items import ItemResult, search_items
from threadline.shared.rag.search import ChunkResult, search_documents
from threadline.shared.records import (
    Fork,
    MemberRole,
    Message,
    Part,
    Role,
    TextPart,
    Thread,
    text_of,
)
from threadline.shared.runtime import Runtime
from threadline.shared.schedules import Schedule, SendPrompt, StartWorkflow, Timing
from threadline.shared.storage import layout
from threadline.shared.storage.client import shard_subscription
from threadline.shared.storage.cluster import check_rq
from threadline.shared.threads import Page
from threadline.shared.threads.canvas import Canvas
from threadline.shared.usage.ledger import UsageEntry, UsageSummary
from threadline.shared.usage.limits import Who
from threadline.shared.userdata.erasure import Erasures, ErasureView
from threadline.shared.userdata.export import export_user
from threadline.shared.webhooks import Endpoint
from threadline.shared.workflows.definition import Workflow, workflow_named
from threadline.shared.workflows.journal import RunView


def _request(agent: Agent, context: Any) -> ReplyRequest:
    """A server-side call's request: its ``context`` (a value of the agent's context type, or JSON
    values) checked by the agent."""
    if context is not None:
        context = msgspec.to_builtins(context)
    admit(agent, context, None, trusted=True)
    return ReplyRequest(context=context)


class Threadline:
    """Threads, messages and agents over one Redis connection pool."""

    def __init__(self, settings: Settings, *, runtime: Runtime | None = None) -> None:
        """``runtime``: the process's parts to share (its owner closes them), else made here, once
        the data in Redis is known to be of this version's key layout (ConfigError otherwise)."""
        if runtime is None:
            check_rq(settings.redis_url, settings.rq_url)
            layout.check_url(settings.redis_url, unreachable_ok=True)
        self._owns_runtime = runtime is None
        self.runtime = rt = runtime if runtime is not None else Runtime(settings)
        self.settings, self.redis, self.store, self.memory = rt.settings, rt.redis, rt.store, rt.memory
        self.files, self.ledger, self.limits, self.workflows = rt.files, rt.usage, rt.limits, rt.workflows

    @classmethod
    def from_env(cls) -> Threadline:
        return cls(load_settings())

    async def __aenter__(self) -> Threadline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_runtime:
            await self.runtime.close()

    def agent(self, agent: Agent | str | None, *, model: str | None = None, provider: str | None = None,
              options: dict[str, Any] | None = None) -> Agent:
        """An Agent as given, or by name from APP_MODULE (the first one for None).

        ``model``, ``provider`` and ``options`` (body fields such as ``reasoning_effort``)
        override the agent's for one call.
        """
        chosen = agent if isinstance(agent, Agent) else agent_named(self.settings.app_module, agent)
        if model is None and provider is None and not options:
            return chosen
        if provider is not None:
            provider_named(self.settings, provider)  # an unknown name fails here, clearly
        return dataclasses.replace(
            chosen, model=model if model is not None else chosen.model,
            provider=provider if provider is not None else chosen.provider,
            provider_options={**chosen.provider_options, **(options or {})})

    async def generate_text(self, agent: Agent | str | None, prompt: str, *, user_id: str,
                            messages: list[Message] | None = None, context: Any = None, model: str | None = None,
                            provider: str | None = None, options: dict[str, Any] | None = None,
                            rate_limited: bool = False) -> GenerationResult:
        """One answer outside any thread (classify, extract): nothing is saved, the usage is
        ``user_id``'s (and, with ``rate_limited``, their rate limits count it); ``messages`` come
        before the prompt; ``context``, ``model``, ``provider`` and ``options`` as for a thread."""
        chosen = self.agent(agent, model=model, provider=provider, options=options)
        return await self._alone(chosen, prompt, user_id, messages, context, rate_limited)

    async def generate_object(self, agent: Agent | str | None, prompt: str, output: type | None = None, *,
                              user_id: str, messages: list[Message] | None = None, context: Any = None,
                              model: str | None = None, provider: str | None = None,
                              options: dict[str, Any] | None = None, rate_limited: bool = False) -> Any:
        """The validated object of one answer outside any thread (``output`` overrides the agent's)."""
        chosen = _with_output(self.agent(agent, model=model, provider=provider, options=options), output)
        return _object_of(await self._alone(chosen, prompt, user_id, messages, context, rate_limited))

    async def _alone(self, agent: Agent, prompt: str, user_id: str, messages: list[Message] | None, context: Any,
                     rate_limited: bool) -> GenerationResult:
        return await generate_alone(self.runtime, agent, prompt, user_id=user_id, messages=messages or (),
                                    request=_request(agent, context), rate_limited=rate_limited)

    async def create_thread(self, user_id: str, *, title: str = "", summary: str = "",
                            metadata: dict[str, Any] | None = None) -> ThreadHandle:
        thread = await self.store.threads.create(user_id, title=title, summary=summary, metadata=metadata)
        return ThreadHandle(self, thread)

    async def continue_thread(self, thread_id: str, user_id: str | None = None) -> ThreadHandle:
        """A handle on an existing thread, acting as ``user_id`` (its owner or a member: NotFound
        for anyone else) or, without one, as its owner."""
        return ThreadHandle(self, await self.store.threads.get(thread_id, user_id), user_id)

    # -- workflows (shared.workflows) ---------------------------------------------------------

    def workflow_definition(self, workflow: str | Workflow) -> Workflow:
        """The app module's workflow of that name (a Workflow must be the app module's own too:
        the workers find it there by name)."""
        name = workflow.name if isinstance(workflow, Workflow) else workflow
        return workflow_named(self.settings.app_module, name)

    async def start_workflow(self, workflow: str | Workflow, user_id: str, args: Any = None, *,
                             key: str | None = None) -> str:
        """Start a run for ``user_id``; its id. With ``key``, starting again with the same key returns
        the first run's id instead of starting another (for WORKFLOW_RETENTION_S)."""
        run_id, _ = await self.workflows.start(self.workflow_definition(workflow), user_id, args, key=key)
        return run_id

    async def workflow_run(self, run_id: str, user_id: str | None = None) -> RunView:
        """A run with its steps (NotFound when missing or, with user_id, not theirs)."""
        return await self.workflows.view(run_id, user_id)

    async def workflow_runs(self, user_id: str, *, num_items: int = 20, cursor: str | None = None) -> Page[RunView]:
        """The user's runs, newest first."""
        return (await self.workflows.runs(user_id, num_items=num_items, cursor=cursor))[1]

    async def cancel_workflow(self, run_id: str, user_id: str | None = None) -> bool:
        """Cancel a run that has not ended (and its child runs); False when it had ended."""
        await self.workflows.check_owner(run_id, user_id)
        return await self.workflows.cancel(run_id)

    async def send_workflow_event(self, run_id: str, name: str, payload: Any = None,
                                  user_id: str | None = None) -> str:
        """Send event ``name`` to a run: the step waiting for it gets ``payload`` (or the next one to wait)."""
        await self.workflows.check_owner(run_id, user_id)
        return await self.workflows.send_event(run_id, name, payload)

    async def wait_workflow(self, run_id: str, timeout_s: float | None = None) -> RunView:
        """The run once it has ended (completed, failed or canceled); TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s), shard_subscription(self.redis, keys.workflow_channel(run_id)) as news:
            while True:
                view = await self.workflows.view(run_id)
                if view.status in ("completed", "failed", "canceled"):
                    return view
                await news.get_message(ignore_subscribe_messages=True, timeout=1.0)

    # -- usage ----------------------------------------------------------------------------

    async def usage(self, user_id: str | None, period: str | None = None) -> UsageSummary:
        """A user's usage in a billing period (the current one by default), as a whole and by model,
        agent and kind; ``user_id`` None: the whole app's."""
        return (await self.ledger.summary(user_id, period))[1]

    async def usage_entries(self, user_id: str, period: str | None = None) -> list[UsageEntry]:
        """The user's ledger entries of a period (one per model call), oldest first."""
        return await self.ledger.entries(user_id, period)

    # -- schedules -------------------------------------------------------------------------

    async def create_schedule(self, user_id: str, name: str, timing: Timing, action: SendPrompt | StartWorkflow
                              ) -> Schedule:
        """A schedule of ``user_id``'s (shared.schedules): the scheduler (the cron process) fires each of
        its slots once. Declared in the app module instead (``SCHEDULES``), it is kept as declared."""
        if isinstance(action, SendPrompt):
            await self.store.threads.get(action.thread_id, user_id, need="writer")
        return (await self.runtime.schedules.create(user_id, name, timing, action))[1]

    async def schedules(self, user_id: str) -> list[Schedule]:
        return (await self.runtime.schedules.of_user(user_id))[1]

    async def pause_schedule(self, schedule_id: str) -> None:
        await self.runtime.schedules.change(schedule_id, "pause", None)

    async def resume_schedule(self, schedule_id: str) -> None:
        await self.runtime.schedules.change(schedule_id, "resume", None)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self.runtime.schedules.change(schedule_id, "delete", None)

    # -- webhooks --------------------------------------------------------------------------

    async def add_webhook(self, url: str, events: list[str], *, description: str = "") -> Endpoint:
        """Register an endpoint for events (shared.webhooks.EVENTS); the result holds its ``secret``,
        which signs every delivery (docs/webhooks.md). Every process sees it within a second."""
        return await self.runtime.store.webhooks.add(url, events, description)

    async def webhooks(self) -> list[Endpoint]:
        return await self.runtime.store.webhooks.endpoints()

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.runtime.store.webhooks.delete(webhook_id)

    async def webhook_attempts(self, webhook_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The endpoint's latest delivery attempts, newest first."""
        return await self.runtime.store.webhooks.attempts(webhook_id, limit)

    # -- a user's data on request -------------------------------------------------------------

    async def erase_user(self, user_id: str, *, by: str = "app") -> ErasureView:
        """Erase every record of ``user_id`` (shared.userdata.erasure), here and now; asked again after a
        crash it goes on where the first stopped. While another process runs it, its state as it
        is (``status: "running"``)."""
        erasures = Erasures(self.runtime)
        await erasures.ask(user_id, by)
        return await erasures.run(user_id) or await erasures.view(user_id)

    def export_user(self, user_id: str) -> AsyncIterator[bytes]:
        """Every record of ``user_id`` as a tar archive of JSON lines and files (shared.userdata.export),
        piece by piece: write the pieces to a file or a response as they come."""
        return export_user(self.runtime, user_id)

    async def erasure(self, user_id: str) -> ErasureView:
        """The state of the user's last erasure (NotFound when none is on record)."""
        return await Erasures(self.runtime).view(user_id)

    # -- files ----------------------------------------------------------------------------

    async def upload_file(self, user_id: str, name: str, data: bytes) -> FileRecord:
        """Keep ``data`` as a file of ``user_id`` (its type read from the bytes, FILES_TYPES and
        FILES_MAX_BYTES apply); reference it from a message with ``ImagePart(file_id=...)`` or
        ``FilePart(file_id=...)``."""
        return await self.files.upload(user_id, name, data)

    async def file(self, file_id: str, user_id: str | None = None) -> FileRecord:
        """A file's record (NotFound when missing or, with user_id, not theirs)."""
        return await self.files.get(file_id, user_id)

    async def read_file(self, file_id: str, user_id: str | None = None) -> bytes:
        return await self.files.read(await self.files.get(file_id, user_id))

    # -- documents (RAG): trusted server code, so namespaces are given as they are ----------

    async def add_document(self, namespace: str, key: str, content: bytes | str, *, title: str = "",
                           media_type: str = "", metadata: dict[str, str | int | bool] | None = None,
                           chunk_size: int = 1000, chunk_overlap: int = 200, user_id: str | None = None) -> Document:
        """Add or replace a document in ``namespace`` (``user:<id>``, ``team:<id>``, ``global``);
        it is ``pending`` until the index process has chunked and embedded it. Its embeddings are
        the usage of ``user_id`` (default: the owner of a ``user:<id>`` namespace; else the app's own)."""
        data = content.encode() if isinstance(content, str) else content
        check_document(data, self.settings.rag_max_bytes, media_type, key)
        _, doc, _ = await self.store.documents.add(namespace, key, data, title=title, media_type=media_type,
                                                   metadata=metadata, chunk_size=chunk_size,
                                                   chunk_overlap=chunk_overlap,
                                                   added_by=user_id or namespace_owner(namespace))
        return doc

    async def document(self, namespace: str, key: str) -> Document:
        return await self.store.documents.get(namespace, key)

    async def delete_document(self, namespace: str, key: str) -> bool:
        return (await self.store.documents.delete(namespace, key))[1]

    async def search_documents(self, namespaces: list[str], query: str, *, limit: int = 10,
                               metadata: dict[str, str | int | bool] | None = None, before: int = 1,
                               after: int = 1, user_id: str | None = None) -> list[ChunkResult]:
        """Hybrid search over the namespaces' ready documents: chunks with neighbours and their document.
        Embedding the query is the usage of ``user_id`` (default: the app's own)."""
        return await search_documents(self.store, self.memory, namespaces, query, limit=limit, metadata=metadata,
                                      before=before, after=after, bill_to=user_id or "")

    # -- the cross-thread store (items of small JSON by namespace and key) -------------------

    async def put_item(self, namespace: str, key: str, value: Any, *, text: str | None = None, index: bool = True,
                       expected_version: int | None = None) -> Item:
        """Write an item of ``namespace`` (``user:<id>``, ``team:<id>``, ``global``); with
        ``expected_version``, only over that version (0: only a new one), Conflict otherwise. An
        ``index``ed item is found by ``search_items`` once the index process has embedded it."""
        return (await self.store.items.put(namespace, key, value, text=text, index=index,
                                           expected_version=expected_version))[1]

    async def item(self, namespace: str, key: str) -> Item | None:
        return await self.store.items.find(namespace, key)

    async def items(self, namespace: str, *, prefix: str = "", num_items: int = 50,
                    cursor: str | None = None) -> Page[Item]:
        """The namespace's items whose key starts with ``prefix``, in key order."""
        return (await self.store.items.page(namespace, prefix=prefix, num_items=num_items, cursor=cursor))[1]

    async def delete_item(self, namespace: str, key: str) -> bool:
        return (await self.store.items.delete(namespace, key))[1]

    async def search_items(self, namespaces: list[str], query: str, *, limit: int = 10,
                           user_id: str | None = None) -> list[ItemResult]:
        """The indexed items of ``namespaces`` that best match ``query``, best first (each with its score)."""
        return await search_items(self.store, self.memory, namespaces, query, limit=limit, bill_to=user_id or "")


def _with_output(agent: Agent, output: type | None) -> Agent:
    chosen = dataclasses.replace(agent, output=output) if output is not None else agent
    if chosen.output is None:
        raise BadRequest(f"agent {chosen.name!r} has no output type; pass output=")
    return chosen


def _object_of(result: GenerationResult) -> Any:
    if result.outcome != "finished":
        raise BadRequest(f"no object: {result.messages[-1].error if result.messages else result.outcome}")
    return result.object


class ThreadHandle:
    """One thread: save messages, generate or stream text and objects with an agent."""

    def __init__(self, tl: Threadline, thread: Thread, user_id: str | None = None) -> None:
        self._tl = tl
        self.thread = thread
        self._user_id = user_id or thread.user_id

    @property
    def thread_id(self) -> str:
        return self.thread.thread_id

    @property
    def user_id(self) -> str:
        """Who this handle acts as: the thread's owner, or the member it was continued for."""
        return self._user_id

    async def add_member(self, user_id: str, role: MemberRole = "writer") -> Thread:
        """Let ``user_id`` into the thread (the owner's handle only): a writer sends and is answered,
        a reader watches; the thread comes into their own thread list."""
        await self._tl.store.threads.add_member(self.thread_id, self.user_id, user_id, role)
        self.thread = await self._tl.store.threads.get(self.thread_id)
        return self.thread

    async def remove_member(self, user_id: str) -> Thread:
        """Take ``user_id`` out of the thread (the owner's handle, or the member's own: leaving)."""
        await self._tl.store.threads.remove_member(self.thread_id, self.user_id, user_id)
        self.thread = await self._tl.store.threads.get(self.thread_id)
        return self.thread

    async def save_message(self, text: str | None = None, *, role: Role = "user", parts: list[Part] | None = None,
                           agent_name: str | None = None, order: int | None = None,
                           prompt_message_id: str | None = None, metadata: dict[str, Any] | None = None) -> Message:
        """Save one message (a human agent's reply: role assistant with agent_name), with the app's
        ``metadata`` (JSON, at most 8 KB)."""
        parts = parts if parts is not None else [TextPart(text=text or "")]
        if file_ids(parts):  # the files' types and names come from their records
            parts = await self._tl.files.attach(self.user_id, parts)
        message = Message(message_id="", thread_id=self.thread_id, role=role, text=text or text_of(parts),
                          parts=parts, agent_name=agent_name, metadata=metadata)
        _, (saved,) = await self._tl.store.messages.save(self.thread_id, self.user_id, [message], order=order,
                                                         prompt_message_id=prompt_message_id)
        return saved

    async def edit_message(self, message_id: str, text: str, *, metadata: dict[str, Any] | None = None) -> Message:
        """A new version of a user message of the active branch (replies running in the thread are
        aborted); the old one and all after it stay as another branch (``branches``,
        ``switch_branch``). Answer it with ``generate_text(agent, prompt_message_id=...)``."""
        if thread_of_message(message_id) != self.thread_id:
            raise NotFound(f"message {message_id} not found")
        edited = await self._tl.store.messages.get(message_id, self.user_id, "writer")
        if edited.role != "user":
            raise BadRequest("only a user message can be edited")
        await self._tl.store.streams.abort_replies(self.thread_id)
        message = Message(message_id="", thread_id=self.thread_id, text=text, parts=[TextPart(text=text)],
                          metadata=metadata)
        _, (saved,) = await self._tl.store.messages.save(self.thread_id, self.user_id, [message], edits=message_id)
        return saved

    async def branches(self) -> list[Fork]:
        """Where the active branch has versions of an edited message (oldest first)."""
        return (await self._tl.store.messages.branches(self.thread_id, self.user_id))[1]

    async def switch_branch(self, order: int) -> int:
        """Show turn ``order`` (a version, from ``branches``) down to its newest turn; that turn's order."""
        return (await self._tl.store.messages.switch_branch(self.thread_id, self.user_id, order))[1]

    async def save_messages(self, messages: list[Message], *, prompt_message_id: str | None = None) -> list[Message]:
        _, saved = await self._tl.store.messages.save(self.thread_id, self.user_id, messages,
                                                      prompt_message_id=prompt_message_id)
        return saved

    async def take_over(self, agent_name: str, *, by: str, metadata: dict[str, Any] | None = None) -> Thread:
        """The person ``by`` (a staff member) answers here as the human agent ``agent_name`` until
        ``release()``: the thread's replies stop and no agent answers a send meanwhile."""
        return (await self._tl.store.take_over(self.thread_id, by, agent_name, metadata))[1]

    async def release(self) -> Thread:
        """The agents answer sends again (a prompt sent meanwhile: answer it with generate_text)."""
        return (await self._tl.store.release(self.thread_id))[1]

    async def set_metadata(self, message_id: str, metadata: dict[str, Any] | None) -> Message:
        """Replace a message's metadata (None clears it); the message as stored now."""
        if thread_of_message(message_id) != self.thread_id:
            raise NotFound(f"message {message_id} not found")
        _, message = await self._tl.store.messages.set_metadata(message_id, metadata, self.user_id)
        return message

    async def add_snippet(self, kind: str, content: str, *, target: str | None = None,
                          summary: str | None = None, message_id: str | None = None) -> Any:
        """Keep a reference snippet (e.g. a canvas edit) in the thread's memory."""
        _, snippet = await self._tl.store.snippets.add(self.thread_id, self.user_id, kind=kind, content=content,
                                                       target=target, summary=summary, message_id=message_id)
        return snippet

    async def canvas(self, canvas_id: str = "draft") -> Canvas:
        """A canvas of the thread (version 0 and no elements before its first edit)."""
        return (await self._tl.store.canvases.get(self.thread_id, canvas_id, self.user_id))[1]

    async def edit_canvas(self, target: str, value: Any = None, *, canvas_id: str = "draft", delete: bool = False,
                          kind: str | None = None, position: int | None = None, by: str | None = None,
                          expected_version: int | None = None, summary: str | None = None) -> tuple[Canvas, Any]:
        """Set (or ``delete``) one element of a canvas; the edit is kept as a snippet with the state
        before and after. (The canvas after, the snippet.)"""
        _, canvas, snippet = await self._tl.store.canvases.edit(
            self.thread_id, canvas_id, "delete" if delete else "set", target, by=by or f"user:{self.user_id}",
            caller=self.user_id, value=value, kind=kind, position=position, expected_version=expected_version,
            summary=summary)
        return canvas, snippet

    async def restore_canvas(self, snippet_id: str, *, by: str | None = None) -> tuple[Canvas, Any]:
        """Put the element an edit changed back as that edit found it. (The canvas after, the snippet.)"""
        _, canvas, snippet = await self._tl.store.canvases.restore(snippet_id, by=by or f"user:{self.user_id}",
                                                                   caller=self.user_id)
        return canvas, snippet

    async def messages(self, *, num_items: int = 20, cursor: str | None = None) -> Page[Message]:
        _, page = await self._tl.store.messages.list(self.thread_id, self.user_id, num_items=num_items,
                                                     cursor=cursor)
        return page

    async def fetch_context_messages(self, agent: Agent | str | None, prompt_message_id: str) -> list[Message]:
        """What the agent's context options give the model for that prompt (oldest first)."""
        prompt = await self._tl.store.messages.get(prompt_message_id, self.user_id)
        return await fetch_context_messages(self._tl.store, self.thread_id, prompt,
                                            self._tl.agent(agent).context_options, self._tl.memory)

    async def generate_text(self, agent: Agent | str | None, prompt: str | None = None, *,
                            prompt_message_id: str | None = None, messages: list[Message] | None = None,
                            model: str | None = None, provider: str | None = None, options: dict[str, Any] | None = None,
                            rate_limited: bool = False, context: Any = None) -> GenerationResult:
        """Answer ``prompt`` (saved first, per the agent's saveMessages) or an existing message.

        ``model``, ``provider`` and ``options`` override the agent's for this call. With
        ``rate_limited`` the app's rate limits count it as the thread's user (RateLimited when
        over, before anything is saved or any model call). ``context``: the request's, for the
        agent's tools, instructions and context handler (it must fit the agent's context_type).
        """
        chosen = self._tl.agent(agent, model=model, provider=provider, options=options)
        generation = await self._generation(chosen, prompt, prompt_message_id, messages, limited=rate_limited,
                                            context=context)
        return await self._run(generation)

    def stream_text(self, agent: Agent | str | None, prompt: str | None = None, *,
                    prompt_message_id: str | None = None, messages: list[Message] | None = None,
                    model: str | None = None, provider: str | None = None, options: dict[str, Any] | None = None,
                    context: Any = None) -> TextStream:
        """Like generate_text, iterating over text pieces as they are flushed."""
        chosen = self._tl.agent(agent, model=model, provider=provider, options=options)
        return TextStream(self, chosen, prompt, prompt_message_id, messages, context)

    async def generate_object(self, agent: Agent | str | None, prompt: str, output: type | None = None, *,
                              messages: list[Message] | None = None, model: str | None = None, provider: str | None = None, options: dict[str, Any] | None = None,
                              context: Any = None) -> Any:
        """The validated object the agent answers with (``output`` overrides the agent's type)."""
        chosen = _with_output(self._tl.agent(agent, model=model, provider=provider, options=options), output)
        return _object_of(await self._run(await self._generation(chosen, prompt, None, messages, context=context)))

    def stream_object(self, agent: Agent | str | None, prompt: str, output: type | None = None, *,
                      messages: list[Message] | None = None, model: str | None = None, provider: str | None = None, options: dict[str, Any] | None = None,
                      context: Any = None) -> ObjectStream:
        """Iterate over partial objects as they stream; ``.result`` holds the final one."""
        chosen = self._tl.agent(agent, model=model, provider=provider, options=options)
        return ObjectStream(self, _with_output(chosen, output), prompt, None, messages, context)

    async def _generation(self, agent: Agent, prompt: str | None, prompt_message_id: str | None,
                          messages: list[Message] | None, on_delta: OnDelta | None = None,
                          limited: bool = False, context: Any = None) -> Generation:
        if (prompt is None) == (prompt_message_id is None):
            raise BadRequest("give exactly one of prompt or prompt_message_id")
        request = _request(agent, context)
        if limited:
            await self._tl.limits.take("messages", Who(self.user_id, agent.name))
        store, persist = self._tl.store, agent.save_messages != "none"
        extra = [copy.copy(m) for m in messages or []]
        if prompt_message_id is not None:
            prompt_message = await store.messages.get(prompt_message_id, self.user_id)
        elif persist:
            if agent.save_messages == "all" and extra:
                extra = await self.save_messages(extra)
            prompt_message = await self.save_message(prompt)
        else:
            prompt_message = Message(message_id="", thread_id=self.thread_id, user_id=self.user_id,
                                     text=prompt or "", parts=[TextPart(text=prompt or "")])
        unsaved = extra if agent.save_messages != "all" else []  # context for this reply only
        sink: Sink
        if persist:
            sink = StoreSink(store, self.thread_id, memory=self._tl.memory, extra=unsaved, on_delta=on_delta)
        else:
            sink = MemorySink(store, self.thread_id, memory=self._tl.memory, extra=unsaved, on_delta=on_delta)
        return Generation(self._tl.runtime, agent, prompt_message, sink, rate_limited=limited, request=request)

    async def _run(self, generation: Generation) -> GenerationResult:
        if not isinstance(generation.sink, StoreSink):
            return await generation.run()
        async with thread_turn(self._tl.redis, self.thread_id, None, rq=self._tl.runtime.rq):
            return await generation.run()


class _Streaming:
    """Runs a generation in the background while the caller iterates its deltas."""

    def __init__(self, handle: ThreadHandle, agent: Agent, prompt: str | None, prompt_message_id: str | None,
                 messages: list[Message] | None, context: Any = None) -> None:
        self._handle = handle
        self._args = (agent, prompt, prompt_message_id, messages)
        self._context = context
        self._queue: asyncio.Queue[list[Part] | None] = asyncio.Queue()
        self._task: asyncio.Task[GenerationResult] | None = None
        self.result: GenerationResult | None = None

    async def _parts(self) -> AsyncIterator[list[Part]]:
        generation = await self._handle._generation(*self._args, on_delta=self._queue.put_nowait,
                                                    context=self._context)
        self._task = asyncio.create_task(self._handle._run(generation))
        self._task.add_done_callback(lambda _: self._queue.put_nowait(None))
        while (parts := await self._queue.get()) is not None:
            yield parts
        self.result = await self._task


class TextStream(_Streaming):
    """``async for piece in stream``: text as it is flushed; then ``stream.result``."""

    def __aiter__(self) -> AsyncIterator[str]:
        return self._texts()

    async def _texts(self) -> AsyncIterator[str]:
        async for parts in self._parts():
            text = "".join(p.text for p in parts if isinstance(p, TextPart))
            if text:
                yield text


class ObjectStream(_Streaming):
    """``async for partial in stream``: the object as it grows; then ``stream.result.object``."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._objects()

    async def _objects(self) -> AsyncIterator[Any]:
        text, last = "", None
        async for parts in self._parts():
            text += "".join(p.text for p in parts if isinstance(p, TextPart))
            obj = parse_partial(text)
            if obj is not None and obj != last:
                last = obj
                yield obj
