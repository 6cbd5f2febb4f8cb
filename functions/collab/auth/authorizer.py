"""The REQUEST authorizer of $connect: a valid token is admitted with its role in the
scene (or with no role, so that the first message can tell the browser `forbidden`, since a
browser cannot read the status of a refused upgrade); anything else is refused with 401.

The context returned here reaches `requestContext.authorizer` of every later event of the
connection (read by collab.caller), so message handlers never look identity up.
"""

from __future__ import annotations

from typing import Any, Protocol

from collab.access import Role
from collab.auth import handshake
from collab.auth.tokens import Identity, InvalidToken, TokenVerifier

# The exact message API Gateway turns into a 401 response.
UNAUTHORIZED = "Unauthorized"


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(UNAUTHORIZED)
        self.reason = reason


class RoleLookup(Protocol):
    def get_role(self, scene_id: str, user_id: str) -> Role | None: ...


def authorize(event: handshake.Event, verifier: TokenVerifier, access: RoleLookup) -> dict[str, Any]:
    """The policy for a $connect request; Unauthorized (whose message is "Unauthorized")
    when the request proves nothing. A key source that is down raises KeyUnavailable: a
    500, so an outage never looks like a bad token."""
    scene_id = handshake.scene_id(event)
    if scene_id is None:
        raise Unauthorized("no valid sceneId query parameter")
    token = handshake.token(event)
    if token is None:
        raise Unauthorized("no token in the query string or the subprotocols")
    try:
        identity = verifier.verify(token)
    except InvalidToken as error:
        raise Unauthorized(f"invalid token: {error}") from error
    if identity.scene_id is not None and identity.scene_id != scene_id:
        raise Unauthorized("token was issued for another scene")
    role = access.get_role(scene_id, identity.user_id)
    return allow_policy(event["methodArn"], identity, scene_id, role)


def allow_policy(method_arn: str, identity: Identity, scene_id: str, role: Role | None) -> dict[str, Any]:
    return {
        "principalId": identity.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": method_arn}],
        },
        # API Gateway accepts only strings, numbers and booleans here.
        "context": {
            "userId": identity.user_id,
            "userName": identity.user_name,
            "sceneId": scene_id,
            "role": role or "",
            "exp": identity.expires_at,
        },
    }
