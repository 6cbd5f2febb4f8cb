"""Builds the handlers' dependencies once per execution environment.

Lambda reuses warm environments, so clients, connection pools and registered Lua scripts
built here serve every later invocation of the environment.

This is where the stage's shape is read (collab.settings): with CACHE_KIND=none there is
no Redis, and every store that would use it gets `Cache.disabled()`, which refuses every
call at once, so the DynamoDB fallbacks the stores already have for a cache outage serve
everything (DESIGN §4 invariant 7) without a connection attempt or a timeout.
FANOUT_IP_FAMILY picks which addresses of the Management API host the fan-out uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collab import aws_clients
from collab.access import SceneAccess
from collab.awareness import AwarenessStore, Presence
from collab.blobs import BlobStore
from collab.cache import Cache, connect
from collab.change_events import ChangeEvents
from collab.chunks import ChunkAssembler
from collab.client_ids import ClientIds
from collab.documents import Documents, PausePoint, _no_pause
from collab.durable_chunks import DurableChunks
from collab.durable_log import DurableLog
from collab.hot_state import HotState
from collab.outbox import Outbox
from collab.rooms import Rooms
from collab.settings import CACHE_KIND, Settings
from collab.versions import Versions


@dataclass
class Runtime:
    settings: Settings
    rooms: Rooms
    access: SceneAccess
    documents: Documents
    awareness: Presence
    chunks: ChunkAssembler
    outbox_factory: Callable[[str], Outbox]
    versions: Versions
    events: ChangeEvents
    blobs: BlobStore
    # Who first wrote with each Yjs client id (review M8).
    client_ids: ClientIds | None = None
    # Chunk reassembly while the cache is unavailable.
    durable_chunks: DurableChunks | None = None
    # The environment's one cache client (its breaker is shared by every store above).
    cache: Cache | None = None
    _outboxes: dict[str, Outbox] = field(default_factory=dict)

    def outbox(self, endpoint: str) -> Outbox:
        """One Management API client per endpoint, reused across invocations."""
        if endpoint not in self._outboxes:
            self._outboxes[endpoint] = self.outbox_factory(endpoint)
        return self._outboxes[endpoint]


def build(settings: Settings, pause: PausePoint = _no_pause) -> Runtime:
    dynamodb = aws_clients.json_client("dynamodb")
    # Built on the first payload over a DynamoDB item: most environments never need it.
    s3 = aws_clients.LazyClient("s3")
    redis = _cache(settings)
    blobs = BlobStore(s3, settings.snapshot_bucket)
    log = DurableLog(dynamodb, settings.documents_table, blobs)
    documents = Documents(
        log,
        HotState(redis),
        cache_tail_limit=settings.cache_tail_limit,
        log_tail_limit=settings.log_tail_limit,
        pause=pause,
    )
    return Runtime(
        settings=settings,
        rooms=Rooms(dynamodb, settings.connections_table, settings.connection_ttl_seconds),
        access=SceneAccess(settings.access_table, dynamodb),
        documents=documents,
        awareness=_presence(settings, redis, dynamodb),
        chunks=ChunkAssembler(
            redis, max_bytes=settings.max_message_bytes, max_pending=settings.max_pending_chunked
        ),
        outbox_factory=lambda endpoint: _outbox(settings, endpoint),
        versions=Versions(
            dynamodb, settings.documents_table, blobs, retention_days=settings.version_retention_days
        ),
        blobs=blobs,
        events=ChangeEvents(
            aws_clients.json_client("events"),
            settings.event_bus_name,
            dynamodb,
            settings.documents_table,
        ),
        client_ids=ClientIds(dynamodb, settings.documents_table),
        durable_chunks=DurableChunks(
            dynamodb,
            settings.documents_table,
            max_bytes=settings.max_message_bytes,
            max_pending=settings.max_pending_chunked,
        ),
        cache=redis,
    )


def _cache(settings: Settings) -> Cache:
    if not settings.has_cache:
        return Cache.disabled(f"this stage has no cache ({CACHE_KIND}=none); DynamoDB serves")
    return connect(settings.redis_url, settings.redis_cluster)


def _presence(settings: Settings, cache: Cache, dynamodb: Any) -> Presence:
    """Presence lives in the cache; on a stage without one, in the documents table (the
    same rules, collab.awareness_table)."""
    if not settings.has_cache:
        # Imported here: a stage with a cache never needs it (cold starts, docs/benchmarks.md).
        from collab.awareness_table import AwarenessTable

        return AwarenessTable(
            dynamodb,
            settings.documents_table,
            max_message_bytes=settings.awareness_max_message_bytes,
            max_entries=settings.awareness_max_entries,
            max_ids_per_connection=settings.awareness_max_ids_per_connection,
            max_states=settings.awareness_max_states,
        )
    return AwarenessStore(
        cache,
        max_message_bytes=settings.awareness_max_message_bytes,
        max_entries=settings.awareness_max_entries,
        max_ids_per_connection=settings.awareness_max_ids_per_connection,
        max_states=settings.awareness_max_states,
    )


def _outbox(settings: Settings, endpoint: str) -> Outbox:
    return Outbox(endpoint, settings.fanout_workers, ip_family=settings.fanout_ip_family)


_runtime: Runtime | None = None


def current() -> Runtime:
    """The environment's runtime, built from the environment variables on first use."""
    global _runtime
    if _runtime is None:
        _runtime = build(Settings.from_env())
    return _runtime
