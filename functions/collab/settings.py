"""Every setting the handlers read, by name, in one place.

The CDK app and the local stack set these variables; nothing else in the code reads the
environment. A required setting that is missing fails at start-up with its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

# Names of environment variables (the CDK app and devstack use these constants too).
CONNECTIONS_TABLE = "CONNECTIONS_TABLE"
ACCESS_TABLE = "ACCESS_TABLE"
DOCUMENTS_TABLE = "DOCUMENTS_TABLE"
SNAPSHOT_BUCKET = "SNAPSHOT_BUCKET"
REDIS_URL = "REDIS_URL"
REDIS_CLUSTER = "REDIS_CLUSTER"
CACHE_KIND = "CACHE_KIND"
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
FANOUT_IP_FAMILY = "FANOUT_IP_FAMILY"
AWARENESS_MAX_MESSAGE_BYTES = "AWARENESS_MAX_MESSAGE_BYTES"
AWARENESS_MAX_ENTRIES = "AWARENESS_MAX_ENTRIES"
AWARENESS_MAX_IDS_PER_CONNECTION = "AWARENESS_MAX_IDS_PER_CONNECTION"
AWARENESS_MAX_STATES = "AWARENESS_MAX_STATES"
EVENT_BUS_NAME = "EVENT_BUS_NAME"
VERSION_RETENTION_DAYS = "VERSION_RETENTION_DAYS"


# CACHE_KIND: "redis" (the default: REDIS_URL names it) or "none", a stage built without
# any cache (infra cacheKind none): REDIS_URL is then not read, and the stores that would
# use the cache get one that is never available (collab.cache.Cache.disabled).
CacheKind = Literal["redis", "none"]
CACHE_KINDS: tuple[CacheKind, ...] = ("redis", "none")
# FANOUT_IP_FAMILY: "any" (the default: every address the host name resolves to, raced by
# awscrt) or "ipv6" (IPv6 addresses only, for functions whose VPC routes IPv6 and not IPv4:
# infra egress ipv6; collab.management_client).
IpFamily = Literal["any", "ipv6"]
IP_FAMILIES: tuple[IpFamily, ...] = ("any", "ipv6")


class MissingSetting(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"required setting {name} is not set")
        self.name = name


class InvalidSetting(ValueError):
    def __init__(self, name: str, value: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"setting {name} is {value!r}; expected one of {', '.join(allowed)}")
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


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """The value of `name` if it is one of `allowed`; unset or empty means the first."""
    value = env.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise InvalidSetting(name, value, allowed)
    return value


@dataclass(frozen=True)
class Settings:
    """Storage and runtime settings of the per-message handlers."""

    connections_table: str
    access_table: str
    documents_table: str
    # Payloads over DynamoDB's item limit (big pastes, big snapshots) go to this bucket.
    snapshot_bucket: str
    # Read only with cache_kind "redis" (where it is required).
    redis_url: str = ""
    redis_cluster: bool = False
    # Whether this stage has a cache at all; the core's stores do not ask (they get a cache
    # that is never available), the runtime does when it picks implementations.
    cache_kind: CacheKind = "redis"
    # The WebSocket stage's Management API. A WebSocket event names its own endpoint
    # (https://{domainName}/{stage}); the local stack and the HTTP API's function, whose
    # events come from another API, need this.
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
    # Which addresses of the Management API host the fan-out connects to.
    fanout_ip_family: IpFamily = "any"
    # Presence caps (collab.awareness): per message, per connection, per scene (all roles).
    awareness_max_message_bytes: int = 128 * 1024
    awareness_max_entries: int = 8
    awareness_max_ids_per_connection: int = 4
    awareness_max_states: int = 256
    # The stage's EventBridge bus for change events (collab.change_events); "" sends none.
    event_bus_name: str = ""
    # Saved versions expire after this many days (DynamoDB TTL, an S3 lifecycle rule); 0 keeps them.
    version_retention_days: int = 90

    def __post_init__(self) -> None:
        if self.cache_kind not in CACHE_KINDS:
            raise InvalidSetting(CACHE_KIND, self.cache_kind, CACHE_KINDS)
        if self.fanout_ip_family not in IP_FAMILIES:
            raise InvalidSetting(FANOUT_IP_FAMILY, self.fanout_ip_family, IP_FAMILIES)
        if self.cache_kind == "redis" and not self.redis_url:
            raise MissingSetting(REDIS_URL)

    @property
    def has_cache(self) -> bool:
        return self.cache_kind != "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        cache_kind = cast(CacheKind, _choice(env, CACHE_KIND, CACHE_KINDS))
        has_cache = cache_kind != "none"
        return cls(
            connections_table=_required(env, CONNECTIONS_TABLE),
            access_table=_required(env, ACCESS_TABLE),
            documents_table=_required(env, DOCUMENTS_TABLE),
            cache_kind=cache_kind,
            # Without a cache a REDIS_URL left in the environment is ignored, not used.
            redis_url=_required(env, REDIS_URL) if has_cache else "",
            redis_cluster=_flag(env, REDIS_CLUSTER) if has_cache else False,
            snapshot_bucket=_required(env, SNAPSHOT_BUCKET),
            management_endpoint=env.get(MANAGEMENT_ENDPOINT) or None,
            connection_ttl_seconds=_int(env, CONNECTION_TTL_SECONDS, 2 * 3600 + 600),
            max_message_bytes=_int(env, MAX_MESSAGE_BYTES, 16 * 1024 * 1024),
            max_pending_chunked=_int(env, MAX_PENDING_CHUNKED, 8),
            cache_tail_limit=_int(env, CACHE_TAIL_LIMIT, 200),
            log_tail_limit=_int(env, LOG_TAIL_LIMIT, 500),
            fanout_workers=_int(env, FANOUT_WORKERS, 64),
            fanout_ip_family=cast(IpFamily, _choice(env, FANOUT_IP_FAMILY, IP_FAMILIES)),
            awareness_max_message_bytes=_int(env, AWARENESS_MAX_MESSAGE_BYTES, 128 * 1024),
            awareness_max_entries=_int(env, AWARENESS_MAX_ENTRIES, 8),
            awareness_max_ids_per_connection=_int(env, AWARENESS_MAX_IDS_PER_CONNECTION, 4),
            awareness_max_states=_int(env, AWARENESS_MAX_STATES, 256),
            event_bus_name=env.get(EVENT_BUS_NAME, ""),
            version_retention_days=_int(env, VERSION_RETENTION_DAYS, 90),
        )
