"""What a WebSocket upgrade request carries: the scene, the token and the subprotocols.

A browser cannot set headers on a WebSocket, so it sends the token either in the query
string (`?sceneId=S&token=JWT`) or as a second subprotocol (`collab.v1, JWT`), which the
server must answer with `collab.v1` alone (answering with the token would echo it back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SUBPROTOCOL = "collab.v1"
PROTOCOL_HEADER = "sec-websocket-protocol"
# A scene id becomes a DynamoDB key and a Redis {hash tag}: braces or odd characters there
# would split a scene across cluster slots, so only a plain id is accepted.
SCENE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

Event = Mapping[str, Any]


def query_param(event: Event, name: str) -> str | None:
    value = (event.get("queryStringParameters") or {}).get(name)
    return value if isinstance(value, str) and value else None


def scene_id(event: Event) -> str | None:
    """The requested scene, or None when it is missing or not a plain id."""
    value = query_param(event, "sceneId")
    return value if value is not None and SCENE_ID_PATTERN.fullmatch(value) else None


def offered_subprotocols(event: Event) -> list[str]:
    """Every subprotocol the client offered, in order. Header names are case-insensitive,
    and API Gateway may give them in `headers`, in `multiValueHeaders`, or both."""
    values: list[str] = []
    for name, value in (event.get("multiValueHeaders") or {}).items():
        if name.lower() == PROTOCOL_HEADER and isinstance(value, list):
            values += [item for item in value if isinstance(item, str)]
    if not values:
        for name, value in (event.get("headers") or {}).items():
            if name.lower() == PROTOCOL_HEADER and isinstance(value, str):
                values.append(value)
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def token(event: Event) -> str | None:
    """The JWT from the `token` query parameter, else the subprotocol offered next to
    collab.v1."""
    from_query = query_param(event, "token")
    if from_query is not None:
        return from_query
    offered = offered_subprotocols(event)
    if SUBPROTOCOL not in offered:
        return None
    others = [item for item in offered if item != SUBPROTOCOL]
    return others[0] if others else None


def connect_response(event: Event) -> dict[str, Any]:
    """$connect's answer. Nothing may be posted to the connection until it returns, so it
    only accepts: the authorizer has already admitted the connection."""
    response: dict[str, Any] = {"statusCode": 200}
    if SUBPROTOCOL in offered_subprotocols(event):
        response["headers"] = {"Sec-WebSocket-Protocol": SUBPROTOCOL}
    return response
