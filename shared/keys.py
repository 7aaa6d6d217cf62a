"""Every Redis key and pub/sub channel name. Nobody formats a key elsewhere.

Keys are spread over PARTITIONS partitions, each a hash tag of its own (``{p0417}``), so each
partition is one Redis Cluster slot. A thread, a user, a RAG namespace and a workflow run each live
in the partition their id hashes to (``partition``): ``tl:{p0417}:t:<threadId>:msgs``. A script on
one of them stays within one slot, and app-wide sets kept one per partition (written in the
writer's own slot) are read by walking the partitions. ``LAYOUT`` names the layout's version
(shared.storage.layout migrates data of an earlier one).
"""

from __future__ import annotations

import functools
import hashlib

PREFIX = "tl"
PARTITIONS = 1024  # hash tags, hence Cluster slots, the data is spread over (never changed: keys move)
LAYOUT = f"{PREFIX}:layout"  # string: the version of this key layout (shared.storage.layout)


def partition(entity_id: str) -> int:
    """The partition of a thread, user, namespace or run: the first bits of the SHA-1 of its id.

    The workflow scripts compute the same in Lua (``redis.sha1hex``): tests hold the two equal.
    """
    return int.from_bytes(hashlib.sha1(entity_id.encode()).digest()[:2], "big") % PARTITIONS


def partition_tag(number: int) -> str:
    """The hash tag of one partition: ``{p0417}``."""
    return f"{{p{number:04d}}}"


def in_partition(number: int, name: str) -> str:
    """One partition's part of an app-wide set (``tl:{p0417}:streams:active``)."""
    return f"{PREFIX}:{partition_tag(number)}:{name}"


@functools.cache
def every_partition(name: str) -> tuple[str, ...]:
    """Every partition's part of an app-wide set, in partition order (its readers walk them)."""
    return tuple(in_partition(p, name) for p in range(PARTITIONS))


@functools.lru_cache(maxsize=8192)  # the hot paths name the same few threads' keys over and over
def _entity(kind: str, entity_id: str) -> str:
    """The start of an entity's keys: its partition's tag, its kind and its id, in which ``%`` and
    ``:`` are escaped (user ids and namespaces are the app's: ``a`` and ``a:usage`` stay apart)."""
    return f"{PREFIX}:{partition_tag(partition(entity_id))}:{kind}:{_escaped(entity_id)}"


def _escaped(name: str) -> str:
    """A name of the app's (a user id, a namespace, a rule) as one segment of a key: ``%`` and ``:`` escaped."""
    if "%" in name or ":" in name:
        return name.replace("%", "%25").replace(":", "%3A")
    return name


def _t(thread_id: str) -> str:
    return _entity("t", thread_id)


def _u(user_id: str) -> str:
    return _entity("u", user_id)


def _glob(name: str) -> str:
    """``name`` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in name)


def user_keys_glob(user_id: str) -> str:
    """A SCAN pattern matching every key of the user's own (``tl:{p}:u:<userId>:...``)."""
    return f"{_glob(_u(user_id))}:*"


def rate_limits_glob(scope: str) -> str:
    """A SCAN pattern matching every rate-limit rule's state for one scope (a user): rate_limit_rule."""
    return f"{_glob(in_partition(partition(scope), 'rl:'))}*:{_glob(_escaped(scope))}"


def usage_period_of(user_id: str, key: str) -> str | None:
    """The billing period ``key`` holds the user's totals of (usage_totals), else None."""
    start = f"{_u(user_id)}:usage:"
    period = key[len(start):] if key.startswith(start) else ""
    return period if period and period not in ("log", "state") else None


ERASURES = "erasures"  # zset (per partition): users whose erasure is not finished -> when a runner may take it


def erasure(user_id: str) -> str:
    """Hash: the erasure of a user's data (shared.userdata.erasure): its status, next step, counts. Not one of
    the user's own keys (those are erased); in their partition, named by a digest of their id (it
    stays as proof of the erasure, and holds nothing of theirs)."""
    return part_of(f"erasure:{hashlib.sha256(user_id.encode()).hexdigest()[:32]}", user_id)


def namespace_keys_glob(namespace: str) -> str:
    """A SCAN pattern matching every key of a RAG namespace."""
    return f"{_glob(_ns(namespace))}:*"


def thread(thread_id: str) -> str:
    """Hash: the thread record plus its counters (maxOrder, version)."""
    return f"{_t(thread_id)}:thread"


def messages(thread_id: str) -> str:
    """Hash: messageId -> encoded Message record."""
    return f"{_t(thread_id)}:msgs"


def message_index(thread_id: str) -> str:
    """Sorted set of messageIds scored by (order, stepOrder): shared.score."""
    return f"{_t(thread_id)}:idx"


def message_index_no_tools(thread_id: str) -> str:
    """The same index without tool messages (for excludeToolMessages)."""
    return f"{_t(thread_id)}:idx:notool"


def message_metadata(thread_id: str) -> str:
    """Hash: messageId -> its metadata's JSON, as at the end of its body (shared/threads/lua/metadata.lua)."""
    return f"{_t(thread_id)}:msgmeta"


def message_index_open(thread_id: str) -> str:
    """The same index of the messages not (yet) successful: pending and failed (status filters read it)."""
    return f"{_t(thread_id)}:idx:open"


def message_index_hidden(thread_id: str) -> str:
    """The same index of the messages off the thread's active branch (shared/threads/lua/branches.lua)."""
    return f"{_t(thread_id)}:idx:hidden"


def hidden_flags(thread_id: str) -> str:
    """Hash: messageId -> the index flags of a message off the active branch (restored with it)."""
    return f"{_t(thread_id)}:idx:hidden:flags"


def turns(thread_id: str) -> str:
    """Hash: the tree of an edited thread's turns (p:<order> parent, c:<order> children, leaf)."""
    return f"{_t(thread_id)}:turns"


def branch_keys(thread_id: str) -> list[str]:
    """The keys of a thread's branches, in the order its message scripts take them."""
    return [message_index_hidden(thread_id), hidden_flags(thread_id), turns(thread_id)]


def thread_streams(thread_id: str) -> str:
    """Sorted set of the thread's streams (in flight and recently ended), scored like messages."""
    return f"{_t(thread_id)}:streams"


def stream(thread_id: str, stream_id: str) -> str:
    """Hash: one generation's stream record (status, seq, order, heartbeat...)."""
    return f"{_t(thread_id)}:stream:{stream_id}"


def stream_text(thread_id: str, stream_id: str) -> str:
    """String: the stream's text so far (appended with every delta)."""
    return f"{_t(thread_id)}:stream:{stream_id}:text"


def stream_log(thread_id: str, stream_id: str) -> str:
    """Redis Stream: the deltas, entry id ``0-<seq>``: the replay log."""
    return f"{_t(thread_id)}:stream:{stream_id}:log"


def stream_keys(thread_id: str, stream_id: str) -> list[str]:
    return [stream(thread_id, stream_id), stream_text(thread_id, stream_id), stream_log(thread_id, stream_id)]


def stream_key_parts(thread_id: str) -> tuple[str, str]:
    """(prefix, text suffix): ``stream()`` is prefix + id and ``stream_text()`` adds the suffix.

    For the one script that walks a thread's streams by id (streams_read.lua).
    """
    prefix = stream(thread_id, "")
    return prefix, stream_text(thread_id, "")[len(prefix):]


def generation_lock(thread_id: str) -> str:
    """String: held by the worker generating in this thread (one at a time per thread)."""
    return f"{_t(thread_id)}:genlock"


def snippets(thread_id: str) -> str:
    """Hash: snippetId -> encoded Snippet."""
    return f"{_t(thread_id)}:snippets"


def snippet_index(thread_id: str) -> str:
    """Sorted set of snippetIds by a per-thread sequence (newest last)."""
    return f"{_t(thread_id)}:snippets:idx"


def snippet_documents(thread_id: str) -> str:
    """Sorted set (every score 0): ``<document>\x1f<seq, 12 digits>\x1f<snippetId>`` of each snippet
    about a document (a canvas): a document's snippets in order, by lexical range."""
    return f"{_t(thread_id)}:snippets:docs"


def canvases(thread_id: str) -> str:
    """Hash: canvasId -> encoded Canvas (shared.threads.canvas)."""
    return f"{_t(thread_id)}:canvases"


def generation_queue(thread_id: str) -> str:
    """List: ids of the thread's generation jobs, first asked first (the FIFO of ``enqueue``)."""
    return f"{_t(thread_id)}:genqueue"


def generation_aborts(thread_id: str) -> str:
    """Set: ids of the thread's queued generation jobs asked to stop before their stream opened."""
    return f"{_t(thread_id)}:genaborts"


def generation_retries(thread_id: str) -> str:
    """Hash: promptMessageId -> how often the reaper retried its reply (agents with on_worker_death=retry)."""
    return f"{_t(thread_id)}:retries"


def generation_began(thread_id: str, job_id: str) -> str:
    """String (expiring): the job took its thread's turn and began answering; it never runs twice."""
    return f"{_t(thread_id)}:genbegan:{job_id}"


def generation_alive(job_id: str) -> str:
    """String with a short TTL: the job still waits for or holds its thread's turn."""
    return f"{PREFIX}:genalive:{job_id}"


def thread_files(thread_id: str) -> str:
    """Hash: messageId -> the ids of the files the message references (space-separated)."""
    return f"{_t(thread_id)}:files"


def thread_keys(thread_id: str) -> list[str]:
    """Every fixed key of one thread (streams' own keys are listed by the store; its file
    index goes with the file keys, shared.files.refs)."""
    return [
        thread(thread_id),
        working_memory(thread_id=thread_id),
        working_memory_history(working_memory(thread_id=thread_id)),
        messages(thread_id),
        message_index(thread_id),
        message_index_no_tools(thread_id),
        message_index_open(thread_id),
        message_metadata(thread_id),
        message_index_hidden(thread_id),
        hidden_flags(thread_id),
        turns(thread_id),
        thread_streams(thread_id),
        generation_lock(thread_id),
        generation_queue(thread_id),
        generation_aborts(thread_id),
        generation_retries(thread_id),
        snippets(thread_id),
        snippet_index(thread_id),
        snippet_documents(thread_id),
        canvases(thread_id),
        presence(thread_id),
        typing(thread_id),
        presence_version(thread_id),
    ]


def delta_channel(thread_id: str) -> str:
    """Pub/sub channel of live deltas of every stream of one thread (in the thread's slot)."""
    return f"{_t(thread_id)}:dlt"


# app-wide sets kept one per partition (every_partition): streams in flight and ended ones
ACTIVE_STREAMS = "streams:active"  # zset "threadId/streamId" -> last heartbeat ms
ENDED_STREAMS = "streams:ended"  # zset "threadId/streamId" -> ended at ms


OUTBOX = "outbox"  # zset: follow-ups of writes spanning two slots (shared.storage.outbox) -> written at ms
USERS = "users"  # zset userId -> last thread creation ms (the playground's user list)


def outbox(entity_id: str) -> str:
    """The outbox of the partition of a thread, user, namespace or run."""
    return part_of(OUTBOX, entity_id)


def users(user_id: str) -> str:
    """The user's partition of USERS."""
    return part_of(USERS, user_id)


def active_streams(thread_id: str) -> str:
    """The thread's partition of ACTIVE_STREAMS (in the thread's slot)."""
    return part_of(ACTIVE_STREAMS, thread_id)


def ended_streams(thread_id: str) -> str:
    """The thread's partition of ENDED_STREAMS."""
    return part_of(ENDED_STREAMS, thread_id)


REAPER_LOCK = f"{PREFIX}:streams:reaper"
VECTOR_OPS = "vec:ops"  # list (per partition) of embedding ops (shared.indexing.ops), queued by the write scripts
VECTOR_RPC = f"{PREFIX}:vec:rpc"  # list of search requests to the index process
VECTOR_ALIVE = f"{PREFIX}:vec:alive"  # kept fresh by a running index process


def vector_rpc_reply(token: str) -> str:
    """List: the index process's answer to one search request."""
    return f"{VECTOR_RPC}:reply:{token}"

GENERATION_WORKERS = f"{PREFIX}:workers:generation"  # zset worker name -> last heartbeat ms


def presence(thread_id: str) -> str:
    """Sorted set: who is viewing the thread (``userId|connection``), scored by when that ends (ms)."""
    return f"{_t(thread_id)}:presence"


def typing(thread_id: str) -> str:
    """Sorted set: who is typing in the thread (``userId|connection``), scored by when that ends (ms)."""
    return f"{_t(thread_id)}:typing"


def presence_version(thread_id: str) -> str:
    """Counter: changes of the thread's presence (the presence.list query's version)."""
    return f"{_t(thread_id)}:presence:v"


def presence_channel(thread_id: str) -> str:
    """Pub/sub channel of the thread's presence changes (viewers and typing; in the thread's slot)."""
    return f"{_t(thread_id)}:presence:chg"


def thread_channel(thread_id: str) -> str:
    """Pub/sub channel of change notices for one thread's messages."""
    return f"{_t(thread_id)}:chg"


def user_files(user_id: str) -> str:
    """Sorted set of a user's fileIds by upload time (ms)."""
    return f"{_u(user_id)}:files"


# Files (shared.files). A file's keys are in the partition of its id, a content's (its bytes are
# shared by every file record of the same sha256) in the partition of its hash; a message's
# reference to a file is carried from the thread's slot to the file's by the outbox.
FILES_IDLE = "files:idle"  # zset (per partition): unreferenced fileIds -> since when (ms)
BLOBS_DOOMED = "blobs:doomed"  # zset (per partition): contents no file record holds -> since when (ms)


def file(file_id: str) -> str:
    """Hash: rec (the encoded FileRecord), refs (how many messages reference it), and pin:<threadId
    messageId> (no drop before this ms: that message, referencing it, is being saved)."""
    return f"{_entity('f', file_id)}:file"


def file_refs(file_id: str) -> str:
    """Hash: "threadId messageId" -> the version of that message's last change of its reference
    (positive: it references the file; negative: it stopped)."""
    return f"{_entity('f', file_id)}:refs"


def files_idle(file_id: str) -> str:
    """The file's partition of FILES_IDLE."""
    return part_of(FILES_IDLE, file_id)


def blob(digest: str) -> str:
    """Hash: deleting (when the deletion of the content's bytes began, ms)."""
    return f"{_entity('b', digest)}:blob"


def blob_files(digest: str) -> str:
    """Set: the ids of the file records that hold the content."""
    return f"{_entity('b', digest)}:files"


def blob_gone(digest: str) -> str:
    """Sorted set: ids of file records that let the content go -> when (ms), kept a day (a late
    follow-up of their upload must not take the content again)."""
    return f"{_entity('b', digest)}:gone"


def blobs_doomed(digest: str) -> str:
    """The content's partition of BLOBS_DOOMED."""
    return part_of(BLOBS_DOOMED, digest)


def user_threads(user_id: str) -> str:
    """Sorted set of a user's threadIds scored by a per-user creation sequence."""
    return f"{_u(user_id)}:threads"


def user_state(user_id: str) -> str:
    """Hash: the user's thread-list version and creation sequence."""
    return f"{_u(user_id)}:state"


def user_threads_listed(user_id: str) -> str:
    """Hash: threadId -> the creation time (ms) of the thread listed in the user's list (a thread id
    chosen by a client may be deleted and created again: its follow-ups tell the two apart)."""
    return f"{_u(user_id)}:threads:listed"


def user_thread_gone(user_id: str, thread_id: str, created_at: str) -> str:
    """String (expiring): the user's thread created at ``created_at`` was deleted; a late follow-up
    adding it to the list is dropped."""
    return f"{_u(user_id)}:threads:gone:{thread_id}:{created_at}"


def usage_log(user_id: str) -> str:
    """Redis Stream: the user's usage ledger, one entry per model call (ids are times: trimmed by age)."""
    return f"{_u(user_id)}:usage:log"


def usage_totals(user_id: str, period: str) -> str:
    """Hash: the user's usage totals of one billing period (also by model, agent and kind)."""
    return f"{_u(user_id)}:usage:{period}"


def usage_state(user_id: str) -> str:
    """Hash: the version of the user's usage (live queries)."""
    return f"{_u(user_id)}:usage:state"


def usage_channel(user_id: str) -> str:
    """Pub/sub channel of change notices for one user's usage."""
    return f"{_u(user_id)}:chg:usage"


# The whole app's usage, kept one part per partition, each written in its users' slot (merged on read).
def app_usage(period: str) -> str:
    """Hash (per partition): the app's usage totals of one billing period (by model, agent and kind too)."""
    return f"usage:{period}"


USAGE_USERS = "usage:users"  # set (per partition): every user with a ledger (the retention job walks them)


def app_usage_users(period: str) -> str:
    """Sorted set (per partition): users with usage in one billing period, by their cost (micro-dollars)."""
    return f"usage:{period}:users"


def part_of(name: str, entity_id: str) -> str:
    """The part of the app-wide set ``name`` (app_usage, USAGE_USERS...) in the partition of a
    thread, user, namespace or run."""
    return in_partition(partition(entity_id), name)


def user_channel(user_id: str) -> str:
    """Pub/sub channel of change notices for one user's thread list."""
    return f"{_u(user_id)}:chg"


def rate_limit_channel(user_id: str) -> str:
    """Pub/sub channel: something was taken from a rate limit counting this user's requests."""
    return f"{_u(user_id)}:chg:rl"


def rate_limit_rule(rule: str, scope: str) -> str:
    """Hash: one rate-limit rule's state (bucket level or window count) for one user, agent, team or '*',
    in the partition of that scope (a request counting in several is reserved rule by rule)."""
    return part_of(f"rl:{_escaped(rule)}:{_escaped(scope)}", scope)


def request_digest(*parts: str) -> str:
    """An unambiguous name for one request: its parts (transport, user, client, id), length-prefixed.

    No choice of user id, client id or request id can make two requests share it.
    """
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode()
        h.update(len(raw).to_bytes(4, "big"))
        h.update(raw)
    return h.hexdigest()[:40]


def outcome(user_id: str, digest: str) -> str:
    """Hash: the outcome sent for one request (field ``o``) of this user, kept for the TTL."""
    return f"{_u(user_id)}:idem:{digest}"


def write_record(digest: str, *, thread_id: str, step: str = "") -> str:
    """Hash: the result of one guarded write (field ``r``), in the slot of the thread it writes.

    Written by the write's own script, so either the change and its record exist or neither.
    """
    return f"{_t(thread_id)}:idem:{digest}" + (f":{step}" if step else "")


def _ns(namespace: str) -> str:
    return _entity("ns", namespace)


def rag_documents(namespace: str) -> str:
    """Hash: document key -> encoded Document record (shared.rag.documents)."""
    return f"{_ns(namespace)}:docs"


def rag_index(namespace: str) -> str:
    """Sorted set of document keys by a per-namespace change sequence (newest last)."""
    return f"{_ns(namespace)}:docs:idx"


def rag_state(namespace: str) -> str:
    """Hash: the namespace's version and change sequence."""
    return f"{_ns(namespace)}:state"


def rag_content(namespace: str, key: str) -> str:
    """String: the bytes of a document's newest version, kept until it is indexed."""
    return f"{_ns(namespace)}:content:{key}"


def rag_chunks(namespace: str, key: str, version: int) -> str:
    """Hash: chunk index -> encoded chunk (text, heading) of one version of a document."""
    return f"{_ns(namespace)}:chunks:{key}:{version}"


RAG_NAMESPACES = "rag:namespaces"  # set (per partition): namespaces holding at least one document


def rag_channel(namespace: str) -> str:
    """Pub/sub channel of change notices for one namespace's documents."""
    return f"{_ns(namespace)}:chg"



# The cross-thread store (shared.items): small JSON items by key in a namespace, in the
# namespace's slot (beside its documents).
def item_records(namespace: str) -> str:
    """Hash: item key -> encoded Item."""
    return f"{_ns(namespace)}:items"


def item_keys(namespace: str) -> str:
    """Sorted set (every score 0): the namespace's item keys, in key order (listed by range and prefix)."""
    return f"{_ns(namespace)}:items:keys"


def item_state(namespace: str) -> str:
    """Hash: ``version`` (of the namespace's items, for live queries) and ``bytes`` (their size)."""
    return f"{_ns(namespace)}:items:state"


def item_channel(namespace: str) -> str:
    """Pub/sub channel of change notices for one namespace's items."""
    return f"{_ns(namespace)}:chg:items"


ITEM_NAMESPACES = "items:namespaces"  # set (per partition): namespaces holding at least one item


def namespace_write_record(digest: str, namespace: str) -> str:
    """Hash: the result of one guarded write of a namespace's items (see write_record), in its slot."""
    return f"{_ns(namespace)}:idem:{digest}"


VECTOR_INDEXERS = f"{PREFIX}:vec:indexers"  # set: index processes that may hold taken ops


def vector_ops(entity_id: str) -> str:
    """The partition of VECTOR_OPS of a thread or namespace (in its slot)."""
    return part_of(VECTOR_OPS, entity_id)


VECTOR_OPS_WAKE = f"{VECTOR_OPS}:wake"  # channel (per partition): ops were queued (index_op.lua's queue_op)


def vector_ops_wake(entity_id: str) -> str:
    """The channel that wakes the index process for ops of a thread or namespace."""
    return part_of(VECTOR_OPS_WAKE, entity_id)


def vector_ops_taken(owner: str) -> str:
    """List (per partition): the ops one index process took there and has not finished (given back
    if it dies)."""
    return f"vec:taken:{owner}"


def vector_indexer_alive(owner: str) -> str:
    """String with a short TTL: the index process ``owner`` is running."""
    return f"{PREFIX}:vec:indexer:{owner}"


# Durable workflows (shared.workflows). A run's keys, its partition's timers and index of runs are in
# the run's slot; the user's index of runs, a workflow kind's work pool, a parent and its child runs
# are reached by follow-ups (shared.storage.outbox).
def workflow(run_id: str, part: str) -> str:
    """One part of a run: ``run`` (hash), ``steps`` (hash stepId -> JSON record), ``results`` and
    ``inputs`` (hash stepId -> JSON), ``events`` (list of events no step has taken yet)."""
    return f"{_entity('wf', run_id)}:{part}"


WORKFLOW_PARTS = ("run", "steps", "results", "inputs", "events")
# app-wide sets kept one per partition (every_partition), each part in its runs' slot
WORKFLOW_TIMERS = "wf:timers"  # zset: timer members (below) -> due ms
WORKFLOW_RUNS = "wf:runs"  # zset: every run by start time (the playground, retention)
WORKFLOW_OWNERS = "wf:owners"  # hash: runId -> userId (to forget an expired run's index entry)
WORKFLOW_RUNS_VERSION = "wf:v"  # counter: the version of the list of every run (added up on read)
WORKFLOW_RUNS_CHANNEL = f"{PREFIX}:chg:wf"  # pub/sub: a run started, got its place or ended (the playground's list)
WORKFLOW_TIMERS_TICK = f"{PREFIX}:wf:tick"  # string (expiring): a worker is walking the timers this poll interval


def workflow_keys(run_id: str) -> list[str]:
    """The keys every workflow script takes, in this order: the run's parts, then its partition's
    timers, index of runs, owners, list version and outbox."""
    return [*(workflow(run_id, part) for part in WORKFLOW_PARTS),
            *(part_of(name, run_id) for name in (WORKFLOW_TIMERS, WORKFLOW_RUNS, WORKFLOW_OWNERS,
                                                 WORKFLOW_RUNS_VERSION, OUTBOX))]


def workflow_channel(run_id: str) -> str:
    """Pub/sub channel of change notices for one run (its status and steps)."""
    return f"{_entity('wf', run_id)}:chg"


def user_workflows(user_id: str) -> str:
    """Sorted set: the user's runs by start time (ms)."""
    return f"{_u(user_id)}:wf"


def user_workflows_version(user_id: str) -> str:
    """Counter: the version of the user's run list (one of their runs started, went on or ended)."""
    return f"{_u(user_id)}:wf:v"


def user_workflows_channel(user_id: str) -> str:
    """Pub/sub channel: one of the user's runs started, went on or ended."""
    return f"{_u(user_id)}:chg:wf"


def workflow_pool(name: str, part: str) -> str:
    """One workflow kind's work pool: ``running`` (set of runs holding a place), ``queue`` (zset of
    runs waiting for one, by when), ``released`` (zset of runs that gave theirs back, kept a day:
    a late follow-up must not take a place for them)."""
    return f"{_entity('wp', name)}:{part}"


def workflow_drive_timer(run_id: str) -> str:
    """Member of WORKFLOW_TIMERS: the run's next replay pass is due."""
    return f"d|{run_id}"


def workflow_step_timer(run_id: str, step_id: str) -> str:
    """Member of WORKFLOW_TIMERS: something of one step is due (to run, to wake, to time out, its lease)."""
    return f"s|{run_id}|{step_id}"


# Webhooks (shared.webhooks): app-wide and few, so all in one slot of their own (``{webhooks}``).
_WEBHOOKS = f"{PREFIX}:{{webhooks}}"
WEBHOOK_ENDPOINTS = f"{_WEBHOOKS}:endpoints"  # hash endpointId -> the endpoint's JSON (with its secret)
WEBHOOK_DUE = f"{_WEBHOOKS}:due"  # zset deliveryId -> when its next attempt is due (ms)
WEBHOOK_DELIVERY_PREFIX = f"{_WEBHOOKS}:d:"


def webhook_delivery(delivery_id: str) -> str:
    """Hash: one delivery (an event to one endpoint): its body, attempt, status."""
    return f"{WEBHOOK_DELIVERY_PREFIX}{delivery_id}"


def webhook_user_deliveries(user_id: str) -> str:
    """Set: the deliveries of events about one user (erasing the user reaches those not yet sent)."""
    return f"{_WEBHOOKS}:u:{_escaped(user_id)}"


def webhook_log(endpoint_id: str) -> str:
    """List: the endpoint's latest delivery attempts, newest first (JSON each)."""
    return f"{_WEBHOOKS}:log:{endpoint_id}"


# Schedules (shared.schedules): app-wide and few per user, so all in one slot of their own (``{schedules}``).
_SCHEDULES = f"{PREFIX}:{{schedules}}"
SCHEDULES_DUE = f"{_SCHEDULES}:due"  # zset scheduleId -> when it fires next (or a taker's lease ends), ms
SCHEDULE_PREFIX = f"{_SCHEDULES}:s:"
APP_SCHEDULES = f"{_SCHEDULES}:app"  # set: the ids of the schedules the app module declares (SCHEDULES)


def schedule(schedule_id: str) -> str:
    """Hash: one schedule (its definition as JSON, nextAt, paused, fired, lastFiredAt, takes)."""
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def user_schedules(user_id: str) -> str:
    """Sorted set: the user's schedules by creation time."""
    return f"{_SCHEDULES}:u:{user_id}"


def user_schedules_version(user_id: str) -> str:
    return f"{_SCHEDULES}:u:{user_id}:v"


def user_schedules_channel(user_id: str) -> str:
    """Sharded channel: the user's schedules changed (their list's version)."""
    return f"{_SCHEDULES}:u:{user_id}:chg"


def working_memory(*, user_id: str | None = None, thread_id: str | None = None) -> str:
    """Hash: a working memory (text, version, updatedAt, updatedBy): the user's, or one thread's."""
    if thread_id is not None:
        return f"{_t(thread_id)}:wm"
    assert user_id is not None
    return f"{_u(user_id)}:wm"


def working_memory_history(memory_key: str) -> str:
    """List: the revisions of the working memory ``memory_key``, newest first (JSON each)."""
    return f"{memory_key}:hist"


def working_memory_channel(memory_key: str) -> str:
    """Sharded channel: the working memory ``memory_key`` changed (its version)."""
    return f"{memory_key}:chg"
