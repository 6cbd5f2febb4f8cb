"""Who sent an event: identity and role come from the authorizer's context, which API
Gateway attaches to every event of the connection (no lookup per message)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

VIEWER = "viewer"


@dataclass(frozen=True)
class Caller:
    connection_id: str
    scene_id: str
    user_id: str
    user_name: str
    role: str  # owner | editor | viewer, or "" without access to the scene
    expires_at: int  # the token's exp, epoch seconds
    endpoint: str  # the Management API endpoint of this connection's stage
    connected_at: int = 0

    @classmethod
    def from_event(cls, event: dict[str, Any], endpoint_override: str | None = None) -> Caller:
        context = event.get("requestContext") or {}
        authorizer = context.get("authorizer") or {}
        endpoint = endpoint_override or f"https://{context.get('domainName')}/{context.get('stage')}"
        return cls(
            connection_id=str(context.get("connectionId", "")),
            scene_id=str(authorizer.get("sceneId", "")),
            user_id=str(authorizer.get("userId", "")),
            user_name=str(authorizer.get("userName") or authorizer.get("userId", "")),
            role=str(authorizer.get("role") or ""),
            expires_at=int(float(authorizer.get("exp") or 0)),
            endpoint=endpoint,
            connected_at=int(context.get("connectedAt") or 0),
        )

    @property
    def is_viewer(self) -> bool:
        return self.role == VIEWER

    def token_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def user(self) -> dict[str, str]:
        return {"userId": self.user_id, "userName": self.user_name}
