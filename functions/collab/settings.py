"""Every setting the handlers read, by name, in one place.

The CDK app and the local stack set these variables; nothing else in the code reads the
environment. A required setting that is missing fails at start-up with its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Names of environment variables (the CDK app and devstack use these constants too).
CONNECTIONS_TABLE = "CONNECTIONS_TABLE"
ACCESS_TABLE = "ACCESS_TABLE"
DOCUMENTS_TABLE = "DOCUMENTS_TABLE"
SNAPSHOT_BUCKET = "SNAPSHOT_BUCKET"
REDIS_URL = "REDIS_URL"
REDIS_CLUSTER = "REDIS_CLUSTER"
MANAGEMENT_ENDPOINT = "MANAGEMENT_ENDPOINT"
AUTH_MODE = "AUTH_MODE"
JWT_SECRET = "JWT_SECRET"
JWT_SECRET_PARAMETER = "JWT_SECRET_PARAMETER"
JWT_SECRET_ARN = "JWT_SECRET_ARN"
JWKS_URL = "JWKS_URL"
JWT_ISSUER = "JWT_ISSUER"
JWT_AUDIENCE = "JWT_AUDIENCE"
FIREBASE_PROJECT_ID = "FIREBASE_PROJECT_ID"
CONNECTION_TTL_SECONDS = "CONNECTION_TTL_SECONDS"
MAX_MESSAGE_BYTES = "MAX_MESSAGE_BYTES"
MAX_PENDING_CHUNKED = "MAX_PENDING_CHUNKED"
CACHE_TAIL_LIMIT = "CACHE_TAIL_LIMIT"
LOG_TAIL_LIMIT = "LOG_TAIL_LIMIT"
FANOUT_WORKERS = "FANOUT_WORKERS"
AWARENESS_MAX_MESSAGE_BYTES = "AWARENESS_MAX_MESSAGE_BYTES"
AWARENESS_MAX_ENTRIES = "AWARENESS_MAX_ENTRIES"
AWARENESS_MAX_IDS_PER_CONNECTION = "AWARENESS_MAX_IDS_PER_CONNECTION"
AWARENESS_MAX_STATES = "AWARENESS_MAX_STATES"


class MissingSetting(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"required setting {name} is not set")
        self.name = name


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise MissingSetting(name)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Storage and runtime settings of the per-message handlers."""

    connections_table: str
    access_table: str
    documents_table: str
    redis_url: str
    # Payloads over DynamoDB's item limit (big pastes, big snapshots) go to this bucket.
    snapshot_bucket: str
    redis_cluster: bool = False
    # Local stack only: on AWS the endpoint is https://{domainName}/{stage} of the event.
    management_endpoint: str | None = None
    # A connection lives at most 2 h on API Gateway; the row outlives it a little.
    connection_ttl_seconds: int = 2 * 3600 + 600
    max_message_bytes: int = 16 * 1024 * 1024
    max_pending_chunked: int = 8
    # Compaction thresholds: the Redis tail and the DynamoDB log are merged past these.
    cache_tail_limit: int = 200
    log_tail_limit: int = 500
    # Posts in flight at once per invocation (one kept-alive connection each).
    fanout_workers: int = 64
    # Presence caps (collab.awareness): per message, per connection, per scene (all roles).
    awareness_max_message_bytes: int = 128 * 1024
    awareness_max_entries: int = 8
    awareness_max_ids_per_connection: int = 4
    awareness_max_states: int = 256

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            connections_table=_required(env, CONNECTIONS_TABLE),
            access_table=_required(env, ACCESS_TABLE),
            documents_table=_required(env, DOCUMENTS_TABLE),
            redis_url=_required(env, REDIS_URL),
            redis_cluster=_flag(env, REDIS_CLUSTER),
            snapshot_bucket=_required(env, SNAPSHOT_BUCKET),
            management_endpoint=env.get(MANAGEMENT_ENDPOINT) or None,
            connection_ttl_seconds=_int(env, CONNECTION_TTL_SECONDS, 2 * 3600 + 600),
            max_message_bytes=_int(env, MAX_MESSAGE_BYTES, 16 * 1024 * 1024),
            max_pending_chunked=_int(env, MAX_PENDING_CHUNKED, 8),
            cache_tail_limit=_int(env, CACHE_TAIL_LIMIT, 200),
            log_tail_limit=_int(env, LOG_TAIL_LIMIT, 500),
            fanout_workers=_int(env, FANOUT_WORKERS, 64),
            awareness_max_message_bytes=_int(env, AWARENESS_MAX_MESSAGE_BYTES, 128 * 1024),
            awareness_max_entries=_int(env, AWARENESS_MAX_ENTRIES, 8),
            awareness_max_ids_per_connection=_int(env, AWARENESS_MAX_IDS_PER_CONNECTION, 4),
            awareness_max_states=_int(env, AWARENESS_MAX_STATES, 256),
        )
