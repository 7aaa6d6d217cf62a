"""What an operation runs with: the store, the caller, the process's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from threadline.shared.auth import Identity
from threadline.shared.config import Settings
from threadline.shared.files.store import FileStore
from threadline.shared.runtime import Runtime
from threadline.shared.storage.client import Client
from threadline.shared.storage.guard import Guard
from threadline.shared.threads import Store
from threadline.shared.usage.ledger import UsageLedger
from threadline.shared.verifier import Verifier
from threadline.shared.workflows.journal import Journal

if TYPE_CHECKING:  # what the services are; each of these modules needs Context itself
    from threadline.server.fanout import ChangeListener
    from threadline.server.live import LiveQueries
    from threadline.server.reaper import StreamReaper
    from threadline.server.reply_queue import ReplyQueue
    from threadline.server.ws.session import Session
    from threadline.shared.usage.limits import Limits
    from threadline.shared.vectors.search import MemorySearch


@dataclass(slots=True)
class Services:
    """One per web process, made by server.app before it serves (tasks start with the app): the
    process's runtime (shared.runtime) and what only a web process has."""

    runtime: Runtime
    secret: str
    dev_mode: bool
    listener: ChangeListener
    live: LiveQueries
    limiter: Limits | None = None  # None: nothing is rate limited
    generation: ReplyQueue | None = None  # None: this server cannot start replies
    reaper: StreamReaper | None = None
    sessions: set[Session] = field(default_factory=set)  # open WebSocket sessions
    verifier: Verifier = None  # type: ignore[assignment]  # made from the secret and settings when not given

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = Verifier(self.secret, self.settings)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def redis(self) -> Client:
        return self.runtime.redis

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def memory(self) -> MemorySearch:
        return self.runtime.memory

    @property
    def files(self) -> FileStore:
        return self.runtime.files

    @property
    def usage(self) -> UsageLedger:
        return self.runtime.usage

    @property
    def workflows(self) -> Journal:
        return self.runtime.workflows


@dataclass(slots=True)
class Context:
    """One operation by one caller."""

    services: Services
    identity: Identity
    guard: Guard | None = None  # set while a mutation a client may resend runs
    connection: str = "http"  # a WebSocket session's id; HTTP callers share one (presence is per connection)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def owner_or_any(self) -> str | None:
        """Whose records (threads, runs) the caller may reach: their own; anyone's (None) for an admin."""
        return None if self.identity.admin else self.identity.user_id
