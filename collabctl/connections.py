"""Close a user's WebSocket connections to a scene from outside the handlers: after a
revoke, and after a grant that lowers their role. An open connection keeps the role its
authorizer gave it (API Gateway fixes the authorizer context for the connection's life),
so a change applies by closing it: the client reconnects and gets the new role."""

from __future__ import annotations

from typing import Any

from collab.rooms import ROLE_RANK, Rooms


def close_user_connections(
    rooms: Rooms, scene_id: str, user_id: str, management: Any, *, above: str | None = None
) -> list[str]:
    """Close every open connection of the user to the scene (members or not: `$connect`
    records each one), or with `above` only those whose role ranks above it; the ids
    closed. `management` is a boto3 apigatewaymanagementapi client for the API's stage. A
    connection already gone is skipped; its $disconnect (or its 410 on the next post, or
    the TTL) removes its row."""
    closed = []
    for connection in stale_connections(rooms, scene_id, user_id, above):
        try:
            management.delete_connection(ConnectionId=connection)
        except management.exceptions.GoneException:
            continue
        closed.append(connection)
    return closed


def stale_connections(rooms: Rooms, scene_id: str, user_id: str, above: str | None = None) -> list[str]:
    """The user's connections that a revoke (above=None) or a lower role must close."""
    floor = ROLE_RANK.get(above or "", 0)
    return [
        c.connection_id
        for c in rooms.connections(scene_id)
        if c.user_id == user_id and (above is None or ROLE_RANK.get(c.role, 0) > floor)
    ]
