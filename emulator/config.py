"""What the emulator serves: the route table it reads and the knobs a caller can turn."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.http_routes import HttpRouteError, HttpRouter

# API Gateway's WebSocket quotas (not adjustable on AWS either).
FRAME_LIMIT = 32 * 1024
MESSAGE_LIMIT = 128 * 1024
# The integration timeout of a WebSocket API; a Lambda function may set less.
DEFAULT_FUNCTION_TIMEOUT = 29.0
DEFAULT_MEMORY_MB = 128
SELECTION_PREFIX = "$request.body."
# An HTTP API's quotas: its payload limit and its integration timeout (30 s, the most it
# allows; a Lambda function that times out first is a function error, a 500).
HTTP_PAYLOAD_LIMIT = 10 * 1024 * 1024
HTTP_INTEGRATION_TIMEOUT = 30.0
# A browser origin as CORS compares it: scheme, host and optional port, nothing after.
ORIGIN_PATTERN = re.compile(r"https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")


class RouteTableError(ValueError):
    """The route table is not one the emulator (or API Gateway) could serve."""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: its handler ("module.func" under the code dir) and limits."""

    name: str
    handler: str
    timeout: float = DEFAULT_FUNCTION_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class RouteTable:
    functions: Mapping[str, FunctionSpec]
    routes: Mapping[str, str]
    selection_path: tuple[str, ...] = ("action",)
    authorizer: str | None = None
    # API Gateway answers 401 without invoking the authorizer when one of these is missing.
    identity_sources: tuple[str, ...] = ()
    # The HTTP API's routes ("GET /scenes/{sceneId}" -> function), served on their own port.
    http_routes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, default_timeout: float = DEFAULT_FUNCTION_TIMEOUT) -> RouteTable:
        return cls.parse(json.loads(Path(path).read_text()), default_timeout, source=str(path))

    @classmethod
    def parse(cls, raw: Mapping[str, Any], default_timeout: float, source: str = "route table") -> RouteTable:
        functions = {
            name: _function_spec(name, spec, default_timeout, source)
            for name, spec in raw.get("functions", {}).items()
            if not name.startswith("_")
        }
        routes = {key: str(fn) for key, fn in raw.get("routes", {}).items() if not key.startswith("_")}
        for key, fn in routes.items():
            if fn not in functions:
                raise RouteTableError(f"{source}: route {key!r} names unknown function {fn!r}")
        http_routes = {
            key: str(fn) for key, fn in raw.get("httpRoutes", {}).items() if not key.startswith("_")
        }
        for key, fn in http_routes.items():
            if fn not in functions:
                raise RouteTableError(f"{source}: HTTP route {key!r} names unknown function {fn!r}")
        try:
            HttpRouter(http_routes)
        except HttpRouteError as bad:
            raise RouteTableError(f"{source}: {bad}") from None
        expression = raw.get("routeSelectionExpression", "$request.body.action")
        if not expression.startswith(SELECTION_PREFIX) or expression == SELECTION_PREFIX:
            raise RouteTableError(f"{source}: unsupported routeSelectionExpression {expression!r}")
        authorizer = raw.get("authorizer")
        authorizer_fn = None
        sources: tuple[str, ...] = ()
        if authorizer:
            authorizer_fn = str(authorizer["function"])
            if authorizer_fn not in functions:
                raise RouteTableError(f"{source}: authorizer names unknown function {authorizer_fn!r}")
            if authorizer.get("route", "$connect") != "$connect":
                raise RouteTableError(f"{source}: API Gateway runs an authorizer on $connect only")
            sources = tuple(authorizer.get("identitySource", ()))
        return cls(
            functions=functions,
            routes=routes,
            selection_path=tuple(expression[len(SELECTION_PREFIX) :].split(".")),
            authorizer=authorizer_fn,
            identity_sources=sources,
            http_routes=http_routes,
        )

    def http_router(self) -> HttpRouter:
        return HttpRouter(self.http_routes)

    def function_for(self, route_key: str) -> FunctionSpec | None:
        name = self.routes.get(route_key)
        return None if name is None else self.functions[name]

    def select_route(self, body: str) -> str | None:
        """The route key a message body selects: the expression's value if a route has
        that key, else $default (also for bodies that are not JSON), else None."""
        value: Any
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            value = None
        for part in self.selection_path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value in self.routes and not value.startswith("$"):
            return value
        return "$default" if "$default" in self.routes else None


def _function_spec(name: str, spec: Mapping[str, Any], default_timeout: float, source: str) -> FunctionSpec:
    handler = spec.get("handler", "")
    module, _, func = handler.rpartition(".")
    if not module or not func:
        raise RouteTableError(f"{source}: function {name!r} needs a handler like 'module.func'")
    return FunctionSpec(
        name=name,
        handler=handler,
        timeout=float(spec.get("timeout", default_timeout)),
        memory_mb=int(spec.get("memorySize", DEFAULT_MEMORY_MB)),
    )


@dataclass(frozen=True)
class HttpCors:
    """The HTTP API's CORS configuration (API Gateway's CorsConfiguration), answered by the
    gateway itself (http_api.py). No origins, the default, is an API without CORS. The other
    fields default to what the CDK app configures (infra/http_api.py): the methods of the
    routes and the two headers a browser's call sends beyond the safelisted ones."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ("GET", "POST")
    allow_headers: tuple[str, ...] = ("authorization", "content-type")
    max_age: int = 3600

    def __post_init__(self) -> None:
        for origin in self.allow_origins:
            if origin != "*" and not ORIGIN_PATTERN.fullmatch(origin):
                raise ValueError(f"CORS origin {origin!r} is not scheme://host[:port] (or *)")
        if self.max_age < 0:
            raise ValueError(f"CORS max_age is {self.max_age}; it is seconds, 0 or more")

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)

    def allowed_origin(self, origin: str | None) -> str | None:
        """The access-control-allow-origin for a request from `origin`, if it is allowed."""
        if origin is None or not self.enabled:
            return None
        if "*" in self.allow_origins:
            return "*"
        return origin if origin in self.allow_origins else None


@dataclass
class EmulatorConfig:
    """Everything the emulator needs; `env` is what every handler sees in os.environ
    (plus Lambda's own variables), nothing is inherited from the emulator's process."""

    routes_file: Path
    code_dir: Path
    stage: str = "local"
    port: int = 0
    # The HTTP API's own port (API Gateway gives it its own endpoint); 0 picks a free one.
    http_port: int = 0
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=dict)
    max_environments: int = 4
    idle_timeout: float = 600.0
    max_duration: float = 7200.0
    function_timeout: float = DEFAULT_FUNCTION_TIMEOUT
    # How long the HTTP API waits for a function before it answers 503 (AWS: 30 s at most).
    http_timeout: float = HTTP_INTEGRATION_TIMEOUT
    # CORS on the HTTP API, as a stage's httpCorsOrigins sets it; off by default.
    http_cors: HttpCors = field(default_factory=HttpCors)
    api_id: str = "emulator01"
    http_api_id: str = "emulator02"  # the HTTP API is an API of its own, with its own id
    account_id: str = "123456789012"
    # Per function, in MB: overrides the route table's memorySize (devstack passes the
    # CDK stage's memoryMb settings, the ones deployed).
    function_memory: Mapping[str, int] = field(default_factory=dict)
    # Ends an environment that goes over its memory setting, as Lambda does (memory.py).
    enforce_memory: bool = True
    # "module" or "module:function" each environment imports (and calls) before its
    # handler: test instrumentation, e.g. devstack/faults.py. Nothing like it on AWS.
    preload: tuple[str, ...] = ()

    @property
    def region(self) -> str:
        return self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION") or "us-east-1"

    def route_table(self) -> RouteTable:
        table = RouteTable.load(self.routes_file, self.function_timeout)
        unknown = sorted(set(self.function_memory) - set(table.functions))
        if unknown:
            raise RouteTableError(f"{self.routes_file}: memory set for unknown functions {unknown}")
        functions = {
            name: dataclasses.replace(fn, memory_mb=int(self.function_memory.get(name, fn.memory_mb)))
            for name, fn in table.functions.items()
        }
        return dataclasses.replace(table, functions=functions)
