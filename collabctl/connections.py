"""Close a user's WebSocket connections to a scene from outside the handlers (after a
revoke: an open connection keeps the role its authorizer gave it until it is closed)."""

from __future__ import annotations

from typing import Any

from collab.rooms import Rooms


def close_user_connections(rooms: Rooms, scene_id: str, user_id: str, management: Any) -> list[str]:
    """Close every live connection of the user to the scene; the ids closed. `management`
    is a boto3 apigatewaymanagementapi client for the API's stage. A connection already
    gone is skipped; its $disconnect (or its 410 on the next post, or the TTL) removes its
    row."""
    closed = []
    for member in rooms.members(scene_id):
        if member.user_id != user_id:
            continue
        try:
            management.delete_connection(ConnectionId=member.connection_id)
        except management.exceptions.GoneException:
            continue
        closed.append(member.connection_id)
    return closed
