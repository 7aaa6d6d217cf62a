"""Settings from environment variables, parsed and validated in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from threadline.shared.errors import ConfigError

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper", forbid_unknown_fields=False):
    """Every setting, named as its environment variable in upper case."""

    @property
    def rq_url(self) -> str:
        """The Redis of RQ's queues, jobs and registries: RQ_REDIS_URL, else the store's."""
        return self.rq_redis_url or self.redis_url

    @property
    def rq_apart(self) -> bool:
        """RQ's keys live in a Redis of their own (a transaction cannot span the two)."""
        return self.rq_url != self.redis_url

    @property
    def mapped_claims(self) -> tuple[str, ...]:
        """The token claims agents get (AUTH_CLAIMS)."""
        return tuple(name.strip() for name in self.auth_claims.split(",") if name.strip())

    redis_url: str = "redis://127.0.0.1:6379/0"
    rq_redis_url: str | None = None  # where RQ keeps its queues, jobs and registries (unset: REDIS_URL)
    # scripts/run without REDIS_URL: a local Redis Cluster of this many embedded Valkey primaries (0: one Valkey)
    redis_cluster_nodes: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    qdrant_url: str | None = None
    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: Port = 8000
    # web apps on other origins that may call the API and open /ws: comma-separated, or *
    cors_origins: Annotated[str, msgspec.Meta(
        pattern=r"^\s*(\*|https?://[^/\s,]+)(\s*,\s*(\*|https?://[^/\s,]+))*\s*$")] | None = None
    # where browsers reach this server (behind a proxy): the origin of the links it builds
    public_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$")] | None = None
    auth_secret: Annotated[str, msgspec.Meta(min_length=32)] | None = None
    # the app's identity provider (besides HS256 tokens signed with AUTH_SECRET): its keys, issuer,
    # audience, and the claims that name the user, the admin flag and the teams
    auth_jwks_url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")] | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_user_claim: Annotated[str, msgspec.Meta(min_length=1)] = "sub"
    auth_admin_claim: Annotated[str, msgspec.Meta(min_length=1)] = "admin"
    auth_teams_claim: Annotated[str, msgspec.Meta(min_length=1)] = "teams"
    # token claims handed to agents (their tools, instructions and context handler): comma-separated names
    auth_claims: str = ""
    auth_jwks_refresh_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0  # keys older than this are fetched again
    auth_jwks_refetch_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0  # least time between fetches for unknown kids
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    embedding_base_url: str | None = None  # unset: LLM_BASE_URL when EMBEDDING_MODEL is set
    embedding_model: str | None = None  # unset: the built-in hashing embedder
    embedding_api_key: str | None = None
    embedding_provider: str | None = None  # a provider of the app module for /embeddings
    llm_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    app_module: str = "threadline.example"
    mock_llm_words: NonNegative = 40
    mock_llm_delay_ms: NonNegative = 30
    workers: Positive = 2
    worker_concurrency: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    worker_drain_s: Annotated[float, msgspec.Meta(ge=0)] = 25.0
    generation_timeout_s: Annotated[int, msgspec.Meta(ge=1)] = 3600  # RQ job timeout of one reply
    ws_max_subscriptions: Positive = 200
    ws_send_queue: Positive = 1000
    ws_send_queue_bytes: Annotated[int, msgspec.Meta(ge=64 << 10)] = 4 << 20
    ws_ping_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    ws_ping_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    ws_compression: bool = False
    rate_limit_sends_per_minute: NonNegative = 60
    rate_limit_burst: Positive = 20
    rate_limits: str | None = None  # more rules, as JSON: [{"name", "limit", "periodS", "on", "kind", "per", ...}]
    stream_stale_ms: Annotated[int, msgspec.Meta(ge=1000)] = 15_000
    stream_grace_ms: Annotated[int, msgspec.Meta(ge=0)] = 60_000
    gc_thresholds: Annotated[str, msgspec.Meta(pattern=r"^\d+,\d+,\d+$")] = "10000,10,10"
    idempotency_ttl_s: Annotated[int, msgspec.Meta(ge=86400)] = 86400 * 2
    rag_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 << 20  # largest document (RAG_MAX_BYTES)
    items_namespace_bytes: Annotated[int, msgspec.Meta(ge=65536)] = 4 << 20  # a namespace's items in the store
    files_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 20 << 20  # largest uploaded file
    files_types: str = ("image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/markdown,"
                        "text/csv,application/json")  # media types an upload may be (sniffed from its bytes)
    files_bucket: str | None = None  # s3://bucket[/prefix]: files in an S3-compatible bucket, not DATA_DIR/files
    files_s3_endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO; unset: AWS
    files_s3_region: str = "us-east-1"
    files_s3_access_key_id: str | None = None  # unset: AWS_ACCESS_KEY_ID and the usual AWS chain
    files_s3_secret_access_key: str | None = None
    files_grace_s: Annotated[int, msgspec.Meta(ge=0)] = 3600  # an unreferenced file is vacuumed after this
    files_url_ttl_s: Annotated[int, msgspec.Meta(ge=10, le=7 * 86400)] = 900  # signed download links
    usage_period: Literal["month", "week", "day"] = "month"  # billing period of the usage totals (UTC)
    usage_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 400  # ledger entries older than this are trimmed
    workflow_retention_s: Annotated[int, msgspec.Meta(ge=60)] = 7 * 86400  # a finished run's record expires after this
    erase_lease_ms: Annotated[int, msgspec.Meta(ge=100)] = 60_000  # an erasure's runner silent this long died: another takes it up
    export_self_service: bool = True  # users may download their own data (GET /api/users/{own id}/export)
    erase_self_service: bool = False  # users may erase their own data (POST /api/users/{own id}/erase); admins always may
    workflow_lease_ms: Annotated[int, msgspec.Meta(ge=500)] = 15_000  # a step (or pass) silent this long lost its worker
    workflow_poll_ms: Annotated[int, msgspec.Meta(ge=10, le=5000)] = 200  # how often workers look for due timers
    # seconds before each retry of a webhook delivery that failed (a non-2xx answer, a timeout); after the last, it fails
    webhook_backoff_s: Annotated[str, msgspec.Meta(pattern=r"^\d+(\.\d+)?(,\d+(\.\d+)?)*$")] = "5,30,120,600,1800,3600,10800"
    webhook_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0  # one delivery attempt's bound
    schedule_lease_ms: Annotated[int, msgspec.Meta(ge=1000)] = 30_000  # a scheduler silent this long after taking a schedule died: another fires it
    sse_ping_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0  # a comment line on idle event streams
    log_json: bool = False  # JSON lines instead of text, in every process
    metrics_port: Port | None = None  # workers and the index serve /metrics from this port upwards
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"


_FIELD = re.compile(r"`\$\.([A-Z_]+)`")
_SECRET = re.compile(r"SECRET|KEY|TOKEN|PASSWORD")
STACK_FILE = "stack.json"  # where a running scripts/run records how to reach it (see stack_file)


def stack_file(data_dir: str) -> Path:
    """The file in which ``scripts/run`` records the URL of its embedded Valkey while it runs."""
    return Path(data_dir) / STACK_FILE


def _running_stack_redis(env: Mapping[str, str]) -> str | None:
    """REDIS_URL of the stack ``scripts/run`` runs on DATA_DIR, when one runs."""
    path = stack_file(env.get("DATA_DIR") or "./data")
    try:
        record = msgspec.json.decode(path.read_bytes())
        os.kill(int(record["pid"]), 0)  # a record left by a launcher that was killed is stale
        return str(record["redisUrl"])
    except (OSError, msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read Settings from the environment; raise ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    names = {f.encode_name for f in msgspec.structs.fields(Settings)}
    raw = {k: v for k, v in env.items() if k in names and v != ""}
    if "REDIS_URL" not in raw:
        running = _running_stack_redis(env)
        if running is not None:
            raw["REDIS_URL"] = running
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        match = _FIELD.search(str(exc))
        name = match.group(1) if match else "?"
        shown = "(hidden)" if _SECRET.search(name) else repr(raw.get(name))
        why = str(exc).split(" - at ")[0]
        raise ConfigError(f"invalid environment variable {name}={shown}: {why}") from exc
