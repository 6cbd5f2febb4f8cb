"""One stage's configuration, read from CDK context, and every resource name derived from it.

cdk.json holds one block of settings per stage under `collab:stages`; `-c stage=NAME`
picks one (default: the `stage` key), and any setting given on the command line overrides
the block, e.g. `cdk deploy -c stage=prod -c natGateways=2`. Command-line values arrive as
strings and are converted to the type of the field; an unknown key, a bad value or a
missing required one fails the synth with a message that names it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from collab import settings

STAGES_KEY = "collab:stages"
STAGE_KEY = "stage"
PROJECT = "collab"
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,15}")
# A browser origin as CORS compares it: scheme, host and optional port, nothing after.
ORIGIN_PATTERN = re.compile(r"https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")
# The handler tunables a stage may set (collab/settings.py reads them).
TUNABLES = (
    settings.CONNECTION_TTL_SECONDS,
    settings.MAX_MESSAGE_BYTES,
    settings.MAX_PENDING_CHUNKED,
    settings.CACHE_TAIL_LIMIT,
    settings.LOG_TAIL_LIMIT,
    settings.FANOUT_WORKERS,
)


class ConfigError(ValueError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"context setting {name!r} {problem}")
        self.name = name


@dataclass(frozen=True)
class FunctionOptions:
    """Per-function overrides (keys of routes.json "functions")."""

    memoryMb: int | None = None
    timeoutSeconds: int | None = None
    reservedConcurrency: int | None = None
    provisionedConcurrency: int | None = None


@dataclass(frozen=True)
class StageConfig:
    """The settings of one deployed stage. Field names are the context keys."""

    stage: str
    # Authentication (see functions/collab/auth/config.py): jwks, or hs256 with a secret in
    # SSM or Secrets Manager; hs256 with neither creates a generated secret in the stack.
    authMode: Literal["jwks", "hs256"] = "hs256"
    jwksUrl: str | None = None
    jwtIssuer: str | None = None
    jwtAudience: str | None = None
    firebaseProjectId: str | None = None
    jwtSecretParameter: str | None = None
    jwtSecretArn: str | None = None
    # The cache: ElastiCache Serverless (Valkey), a node-based replication group, or none at
    # all: then there is no VPC either, every function runs outside one, and the handlers
    # serve everything from DynamoDB (CACHE_KIND=none, collab/settings.py).
    cacheKind: Literal["serverless", "nodes", "none"] = "serverless"
    cacheEngineVersion: str = "8"
    cacheMaxDataGb: int | None = None
    cacheMaxEcpuPerSecond: int | None = None
    cacheNodeType: str = "cache.t4g.small"
    cacheShards: int = 1
    cacheReplicas: int = 1
    # Network (stages with a cache): how the functions in the VPC reach the Management API.
    # nat: NAT gateways (natGateways of them) in public subnets; ipv6: a dual-stack VPC whose
    # private subnets send IPv6 through an egress-only internet gateway, no NAT (natGateways
    # is then not used), a dual-stack API, and the fan-out over IPv6 only.
    egress: Literal["nat", "ipv6"] = "nat"
    maxAzs: int = 2
    natGateways: int = 1
    # Functions.
    memoryMb: int = 1024
    timeoutSeconds: int = 15
    logLevel: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tracing: bool = True
    functions: Mapping[str, FunctionOptions] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)
    # API stage throttling (requests or messages per second, across all connections), of
    # each API: the WebSocket API's stage and the HTTP API's, each on its own.
    throttleRateLimit: int = 500
    throttleBurstLimit: int = 1000
    # The HTTP API: the browser origins allowed to call it (CORS), none by default; "*"
    # allows any (the API uses bearer tokens, never cookies).
    httpCorsOrigins: tuple[str, ...] = ()
    # Saved versions expire after this many days (DynamoDB TTL and the bucket's lifecycle
    # rule on versions/); 0 keeps them for ever.
    versionRetentionDays: int = 90
    # Operations.
    logRetentionDays: int = 30
    removalPolicy: Literal["destroy", "retain"] = "destroy"
    alarmEmail: str | None = None
    # What a stage pays for at rest besides storage (docs/cost.md): a CloudWatch dashboard
    # ($3 a month past the account's three free ones) and the alarms (about $0.10 a month
    # per metric they read past ten free). A developer's own stage may go without both.
    dashboard: bool = True
    alarms: bool = True
    # API Gateway writes logs only with an account-wide CloudWatch role; set false when the
    # account already has one.
    apiGatewayAccountRole: bool = True

    def __post_init__(self) -> None:
        if not STAGE_PATTERN.fullmatch(self.stage):
            raise ConfigError(
                STAGE_KEY, f"is {self.stage!r}; use 1-16 of a-z, 0-9 and -, starting with a letter"
            )
        if self.cacheKind == "none" and self.egress != "nat":
            raise ConfigError("egress", f"is {self.egress!r}, but cacheKind none has no VPC to route")
        if self.has_vpc and self.egress == "nat" and self.natGateways < 1:
            raise ConfigError(
                "natGateways", "must be at least 1: functions in the VPC post to @connections via NAT"
            )
        if self.maxAzs < 2:
            raise ConfigError("maxAzs", "must be at least 2 (ElastiCache needs subnets in two zones)")
        if self.authMode == "jwks" and not (self.jwksUrl or self.firebaseProjectId):
            raise ConfigError("jwksUrl", "is required with authMode jwks (or set firebaseProjectId)")
        if self.authMode == "jwks" and not self.firebaseProjectId:
            for name in ("jwtIssuer", "jwtAudience"):
                if not getattr(self, name):
                    raise ConfigError(name, "is required with authMode jwks (or set firebaseProjectId)")
        if self.jwtSecretParameter and self.jwtSecretArn:
            raise ConfigError("jwtSecretArn", "and jwtSecretParameter are both set; set one")
        if self.dual_stack and self.authMode == "hs256" and self.jwtSecretParameter:
            # The http function verifies tokens in the VPC, which reaches Secrets Manager
            # over IPv6 (its regional name is dual-stack) but SSM only through NAT or an
            # interface endpoint (docs/deploy.md, "HTTP API and events").
            raise ConfigError(
                "jwtSecretParameter",
                "cannot be read from the VPC with egress ipv6; use jwtSecretArn or the generated secret",
            )
        for origin in self.httpCorsOrigins:
            if origin != "*" and not ORIGIN_PATTERN.fullmatch(origin):
                raise ConfigError(
                    "httpCorsOrigins", f"has {origin!r}; an origin is scheme://host[:port] (or *)"
                )
        if self.versionRetentionDays < 0:
            raise ConfigError("versionRetentionDays", f"is {self.versionRetentionDays}; 0 keeps versions")
        unknown = sorted(set(self.settings) - set(TUNABLES))
        if unknown:
            raise ConfigError("settings", f"has unknown keys {unknown}; known: {list(TUNABLES)}")

    # --- the shape ----------------------------------------------------------------------
    @property
    def has_cache(self) -> bool:
        return self.cacheKind != "none"

    @property
    def has_vpc(self) -> bool:
        """The VPC exists for the cache alone."""
        return self.has_cache

    @property
    def dual_stack(self) -> bool:
        """IPv6 egress: a dual-stack VPC and API, functions allowed IPv6 out."""
        return self.has_vpc and self.egress == "ipv6"

    @property
    def nat_gateways(self) -> int:
        """NAT gateways to build: natGateways with egress nat, else none."""
        return self.natGateways if self.has_vpc and self.egress == "nat" else 0

    # --- names, all derived from the stage ---------------------------------------------
    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.stage}"

    @property
    def stack_name(self) -> str:
        return f"Collab-{self.stage}"

    @property
    def api_name(self) -> str:
        return f"{self.prefix}-websocket"

    @property
    def http_api_name(self) -> str:
        return f"{self.prefix}-http"

    @property
    def event_bus_name(self) -> str:
        """As the local stack names its bus (devstack/event_bus.py)."""
        return f"{self.prefix}-events"

    @property
    def stage_name(self) -> str:
        """The API Gateway stage: the last path segment of the WebSocket URL."""
        return self.stage

    @property
    def service_name(self) -> str:
        """POWERTOOLS_SERVICE_NAME: the `service` dimension of the Collab metrics."""
        return PROJECT

    def table_name(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    def function_name(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    @property
    def cache_name(self) -> str:
        return self.prefix

    @property
    def dashboard_name(self) -> str:
        return self.prefix

    @property
    def retain(self) -> bool:
        return self.removalPolicy == "retain"

    def function_options(self, logical: str) -> FunctionOptions:
        return self.functions.get(logical, FunctionOptions())


def from_context(get: Callable[[str], Any]) -> StageConfig:
    """The stage named by the `stage` context key, its block from `collab:stages`, then
    every context key that names a setting. `get` is `app.node.try_get_context`."""
    stage = str(get(STAGE_KEY) or "dev")
    blocks = _as_mapping(get(STAGES_KEY) or {}, STAGES_KEY)
    values: dict[str, Any] = dict(_as_mapping(blocks.get(stage) or {}, f"{STAGES_KEY}.{stage}"))
    names = {f.name for f in dataclasses.fields(StageConfig)} - {STAGE_KEY}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{STAGES_KEY}.{stage}", f"has unknown keys {unknown}")
    values.update({name: get(name) for name in names if get(name) is not None})
    hints = get_type_hints(StageConfig)
    converted = {name: _convert(name, hints[name], value) for name, value in values.items()}
    return StageConfig(stage=stage, **converted)


def _as_mapping(value: Any, name: str) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(name, f"is not JSON: {error}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(name, "must be an object")
    return value


def _convert(name: str, hint: Any, value: Any) -> Any:
    """A context value (JSON from cdk.json, a string from -c) as the field's type."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None or value == "":
            return None
        (inner,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return _convert(name, inner, value)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(name, f"is {value!r}; expected one of {list(get_args(hint))}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "false"}:
            return str(value).lower() == "true"
        raise ConfigError(name, f"is {value!r}; expected true or false")
    if hint is int:
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(name, f"is {value!r}; expected an integer") from None
    if hint is str:
        return str(value)
    if origin is tuple:
        return _strings(name, value)
    if name == "functions":
        return {
            key: _function_options(f"functions.{key}", _as_mapping(options, f"functions.{key}"))
            for key, options in _as_mapping(value, name).items()
        }
    if name == "settings":
        return {str(key): str(item) for key, item in _as_mapping(value, name).items()}
    raise ConfigError(name, f"has an unsupported type {hint!r}")  # pragma: no cover


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list of strings: a JSON array (cdk.json, or `-c` as JSON), or `-c a,b`."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(name, f"is not JSON: {error}") from None
        else:
            value = [item.strip() for item in text.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError(name, f"is {value!r}; expected a list of strings")
    return tuple(value)


def _function_options(name: str, values: Mapping[str, Any]) -> FunctionOptions:
    hints = get_type_hints(FunctionOptions)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}")
    return FunctionOptions(**{key: _convert(f"{name}.{key}", hints[key], v) for key, v in values.items()})
