"""Development tokens: HS256 JWTs that the `hs256` authorizer mode accepts. For the local
stack and for trying a deployed HS256 stack; production clients bring their own tokens."""

from __future__ import annotations

import time

import jwt

from collab.auth.config import MIN_SECRET_BYTES
from collab.auth.tokens import SCENE_CLAIM


def mint_dev_token(
    secret: str,
    user_id: str,
    scene_id: str | None,
    name: str | None = None,
    ttl: int = 3600,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    now: int | None = None,
) -> str:
    """An HS256 token for `user_id`, valid for `ttl` seconds. With a `scene_id` it opens
    only that scene; issuer and audience must match JWT_ISSUER / JWT_AUDIENCE when those
    are set."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    issued = int(time.time()) if now is None else now
    claims: dict[str, object] = {"sub": user_id, "iat": issued, "exp": issued + ttl}
    optional = {"name": name, SCENE_CLAIM: scene_id, "iss": issuer, "aud": audience}
    claims.update({claim: value for claim, value in optional.items() if value})
    return jwt.encode(claims, secret, algorithm="HS256")
