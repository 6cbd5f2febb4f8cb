"""`$connect` after the authorizer: record the connection, then re-read the role.

The row makes every open connection visible to `revoke` and to a role change, whether or
not it ever sends `sync` (a connection may write with `update` alone). Re-reading the role
after the row exists closes the window between the authorizer's check and the write: a
revoke or a downgrade that lands in it either finds the row or is seen here. The role
travels in the authorizer context, which API Gateway fixes for the connection's life, so
a connection whose role changed meanwhile is refused: the client reconnects and gets the
new role.
"""

from __future__ import annotations

from typing import Any

from collab.access import SceneAccess
from collab.caller import Caller
from collab.rooms import Member, Rooms

REFUSED = {"statusCode": 403}


def admit(rooms: Rooms, access: SceneAccess, caller: Caller) -> bool:
    """Record the connection; False when its role changed since the authorizer read it."""
    if not caller.role:
        # No access: every message is refused and the connection closed; nothing to revoke.
        return True
    member = Member.of(caller)
    rooms.admit(caller.scene_id, member)
    if access.get_role(caller.scene_id, caller.user_id) == caller.role:
        return True
    rooms.leave(caller.scene_id, caller.connection_id)
    return False


def refused() -> dict[str, Any]:
    return dict(REFUSED)
