"""functions/routes.json and functions/tables.json, parsed: the one route table and the
table schemas, which the local emulator reads too. The stack never keeps a second list."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra import FUNCTIONS_DIR

ROUTES_FILE = FUNCTIONS_DIR / "routes.json"
TABLES_FILE = FUNCTIONS_DIR / "tables.json"
# An HTTP API route key: a method, one space, a path of literal and {parameter} segments.
HTTP_ROUTE_KEY = re.compile(r"(GET|POST|PUT|PATCH|DELETE|HEAD) (/[A-Za-z0-9_.~{}-]+)+")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    # Relative to functions/, the root of the Lambda code asset.
    handler: str
    needs_cache: bool


@dataclass(frozen=True)
class RouteTable:
    selection_expression: str
    functions: Mapping[str, FunctionSpec]
    authorizer_function: str
    authorizer_route: str
    # Route key -> function name.
    routes: Mapping[str, str]
    # The HTTP API's: "METHOD /path" -> function name.
    http_routes: Mapping[str, str]


@dataclass(frozen=True)
class TableSpec:
    name: str
    env: str
    partition_key: str
    sort_key: str
    ttl_attribute: str | None


def _entries(raw: Mapping[str, object]) -> dict[str, object]:
    """Drop `_comment` and other underscore keys."""
    return {key: value for key, value in raw.items() if not key.startswith("_")}


def load_routes(path: Path = ROUTES_FILE) -> RouteTable:
    raw = json.loads(path.read_text())
    functions = {
        name: FunctionSpec(name, spec["handler"], bool(spec["needsCache"]))
        for name, spec in _entries(raw["functions"]).items()
        if isinstance(spec, dict)
    }
    routes = {route: str(function) for route, function in _entries(raw["routes"]).items()}
    http_routes = {route: str(function) for route, function in _entries(raw.get("httpRoutes", {})).items()}
    table = RouteTable(
        selection_expression=raw["routeSelectionExpression"],
        functions=functions,
        authorizer_function=raw["authorizer"]["function"],
        authorizer_route=raw["authorizer"]["route"],
        routes=routes,
        http_routes=http_routes,
    )
    undefined = sorted({*routes.values(), *http_routes.values(), table.authorizer_function} - set(functions))
    if undefined:
        raise ValueError(f"{path}: routes name undefined functions {undefined}")
    if table.authorizer_route not in routes:
        raise ValueError(f"{path}: the authorizer's route {table.authorizer_route} is not a route")
    malformed = sorted(route for route in http_routes if not HTTP_ROUTE_KEY.fullmatch(route))
    if malformed:
        raise ValueError(f"{path}: httpRoutes keys {malformed} are not `METHOD /path`")
    return table


def load_tables(path: Path = TABLES_FILE) -> dict[str, TableSpec]:
    raw = json.loads(path.read_text())
    return {
        name: TableSpec(name, spec["env"], spec["partitionKey"], spec["sortKey"], spec.get("ttlAttribute"))
        for name, spec in _entries(raw).items()
        if isinstance(spec, dict)
    }
