"""The identity every event after $connect carries in `requestContext.authorizer`, as the
authorizer (collab.auth.authorizer) put it there."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collab.access import Role, parse_role


@dataclass(frozen=True)
class AuthContext:
    user_id: str
    user_name: str
    scene_id: str
    role: Role | None
    expires_at: int

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> AuthContext:
        """KeyError when the event carries no authorizer context (a route reached without
        the $connect authorizer is a deployment fault, not a client's)."""
        context = event["requestContext"]["authorizer"]
        return cls(
            user_id=str(context["userId"]),
            user_name=str(context["userName"]),
            scene_id=str(context["sceneId"]),
            role=parse_role(context.get("role")),
            # API Gateway may hand numbers on as strings.
            expires_at=int(context["exp"]),
        )

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at
