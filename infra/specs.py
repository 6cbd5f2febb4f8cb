"""functions/routes.json and functions/tables.json, parsed: the one route table and the
table schemas, which the local emulator reads too. The stack never keeps a second list."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra import FUNCTIONS_DIR

ROUTES_FILE = FUNCTIONS_DIR / "routes.json"
TABLES_FILE = FUNCTIONS_DIR / "tables.json"


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
    table = RouteTable(
        selection_expression=raw["routeSelectionExpression"],
        functions=functions,
        authorizer_function=raw["authorizer"]["function"],
        authorizer_route=raw["authorizer"]["route"],
        routes=routes,
    )
    undefined = sorted({*routes.values(), table.authorizer_function} - set(functions))
    if undefined:
        raise ValueError(f"{path}: routes name undefined functions {undefined}")
    if table.authorizer_route not in routes:
        raise ValueError(f"{path}: the authorizer's route {table.authorizer_route} is not a route")
    return table


def load_tables(path: Path = TABLES_FILE) -> dict[str, TableSpec]:
    raw = json.loads(path.read_text())
    return {
        name: TableSpec(name, spec["env"], spec["partitionKey"], spec["sortKey"], spec.get("ttlAttribute"))
        for name, spec in _entries(raw).items()
        if isinstance(spec, dict)
    }
