"""The routes of an HTTP API (API Gateway v2) and how a request picks one.

A route key is "METHOD /path" or "$default". Path segments are literals, `{name}` (one
whole segment, never empty) or, last only, `{name+}` (one or more segments). Matching
follows API Gateway's documented order ("Routing API requests", HTTP API developer guide):
a full match of route and method first, then a route with a greedy variable, then
`$default`; nothing matches: 404 {"message":"Not Found"}. Literal paths beat templates
(the guide's `GET /pets/dog/1` over `GET /pets/dog/{id}`), and a method beats `ANY` on the
same path. Where the guide says nothing (two templates that both match), the one with a
literal further left wins, so a table's order never decides.

A trailing slash is a path of its own: `/scenes/s-1/` matches no `/scenes/{sceneId}` (an
HTTP API has no route ending in "/", and its variables are never empty).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_ROUTE = "$default"
METHODS = frozenset({"ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
_VARIABLE = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")


class HttpRouteError(ValueError):
    """A route key API Gateway would refuse."""


@dataclass(frozen=True)
class HttpRoute:
    key: str
    function: str
    method: str  # "ANY" matches every method
    # Per segment: ("literal", text) | ("variable", name) | ("greedy", name).
    segments: tuple[tuple[str, str], ...]

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1][0] == "greedy"

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        """The path parameters if this route takes `method` on the path split in `parts`."""
        if self.method not in ("ANY", method):
            return None
        if self.greedy:
            fixed = self.segments[:-1]
            if len(parts) <= len(fixed):
                return None
        elif len(parts) != len(self.segments):
            return None
        else:
            fixed = self.segments
        params: dict[str, str] = {}
        for (kind, value), part in zip(fixed, parts, strict=False):
            if kind == "literal":
                if part != value:
                    return None
            elif not part:
                return None
            else:
                params[value] = part
        if self.greedy:
            rest = parts[len(fixed) :]
            if not all(rest):
                return None
            params[self.segments[-1][1]] = "/".join(rest)
        return params

    def rank(self) -> tuple[int, tuple[int, ...], int]:
        """Smaller is more specific (the order of the module docstring)."""
        literals = tuple(0 if kind == "literal" else 1 for kind, _ in self.segments)
        return (1 if self.greedy else 0, literals, 1 if self.method == "ANY" else 0)


def parse_route(key: str, function: str) -> HttpRoute:
    if key == DEFAULT_ROUTE:
        return HttpRoute(key, function, "ANY", ())
    method, sep, path = key.partition(" ")
    if not sep or method not in METHODS:
        raise HttpRouteError(f"route {key!r}: needs 'METHOD /path' with a method of {sorted(METHODS)}")
    if not path.startswith("/") or (path != "/" and path.endswith("/")) or "//" in path:
        raise HttpRouteError(f"route {key!r}: the path starts with '/' and has no empty segment")
    if any(c.isspace() or c in "?#" for c in path):
        raise HttpRouteError(f"route {key!r}: the path holds no spaces, '?' or '#'")
    raw_segments = path[1:].split("/") if path != "/" else []
    segments: list[tuple[str, str]] = []
    names: set[str] = set()
    for position, raw in enumerate(raw_segments):
        variable = _VARIABLE.fullmatch(raw)
        if variable is None:
            if "{" in raw or "}" in raw:
                raise HttpRouteError(f"route {key!r}: a variable is a whole segment, e.g. '{{sceneId}}'")
            segments.append(("literal", raw))
            continue
        name, plus = variable.groups()
        if plus and position != len(raw_segments) - 1:
            raise HttpRouteError(f"route {key!r}: a greedy variable must be the last segment")
        if name in names:
            raise HttpRouteError(f"route {key!r}: variable {name!r} appears twice")
        names.add(name)
        segments.append(("greedy" if plus else "variable", name))
    return HttpRoute(key, function, method, tuple(segments))


class HttpRouter:
    """Every route of the table, tried from the most specific to the least."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        parsed = [parse_route(key, fn) for key, fn in routes.items()]
        self._default = next((r for r in parsed if r.key == DEFAULT_ROUTE), None)
        self._routes = sorted((r for r in parsed if r.key != DEFAULT_ROUTE), key=HttpRoute.rank)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The route a request takes and its path parameters, or None (404). `path` is
        the decoded request path (what the event's rawPath shows)."""
        if path.startswith("/"):
            parts = path[1:].split("/") if path != "/" else []
            for route in self._routes:
                params = route.match(method, parts)
                if params is not None:
                    return route, params
        if self._default is not None:
            return self._default, {}
        return None
