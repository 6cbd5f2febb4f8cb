"""Verify a JWT and turn it into an Identity.

The accepted algorithm is fixed by the configuration (RS256 for jwks, HS256 for hs256) and
never read from the token, so neither `alg: none` nor an HS256 token "signed" with the
public RSA key can pass. `exp`, `iat` and `sub` are required; skew is bounded by the
configured leeway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from collab.auth import keys
from collab.auth.config import AuthConfig

REQUIRED_CLAIMS = ["exp", "iat", "sub"]
# An optional claim that restricts a token to one scene.
SCENE_CLAIM = "sceneId"


class InvalidToken(Exception):
    """The token proves nothing: the upgrade is refused (401). The message names the
    reason, never the token."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    user_name: str
    expires_at: int
    # Set when the token was minted for one scene only (development tokens are).
    scene_id: str | None = None


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config

    def verify(self, token: str) -> Identity:
        """The identity a token proves; InvalidToken if it proves nothing, KeyUnavailable
        if the keys could not be fetched."""
        header = _header(token)
        if header.get("alg") != self.config.algorithm:
            raise InvalidToken(f"algorithm {_short(header.get('alg'))} is not accepted")
        key = self._rsa_key(header) if self.config.mode == "jwks" else self._secret()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.config.algorithm],
                issuer=self.config.issuer,
                audience=self.config.audience,
                leeway=self.config.leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(str(error)) from error
        identity = identity_from_claims(claims)
        # The leeway forgives clock skew on iat/nbf (a token minted "in the future"), not an
        # expiry: a token past exp by our clock would be refused on its first message anyway
        # (the message handlers check exp strictly), so it is not admitted either.
        if identity.expires_at <= time.time():
            raise InvalidToken("token has expired")
        return identity

    def _rsa_key(self, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no kid")
        try:
            return keys.jwks_client(str(self.config.jwks_url)).get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as error:
            raise keys.KeyUnavailable(f"could not fetch the JWKS: {error}") from error
        except jwt.PyJWKClientError as error:
            raise InvalidToken(f"no signing key for kid {_short(kid)}") from error

    def _secret(self) -> str:
        if self.config.secret is None:
            raise keys.KeyUnavailable("hs256 mode without a secret")
        return keys.load_secret(self.config.secret)


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidToken("sub is not a non-empty string")
    return Identity(
        user_id=user_id,
        user_name=display_name(claims),
        expires_at=int(claims["exp"]),
        scene_id=scene if isinstance(scene := claims.get(SCENE_CLAIM), str) else None,
    )


def display_name(claims: dict[str, Any]) -> str:
    for claim in ("name", "email"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(claims["sub"])


def _short(value: object) -> str:
    """A header value for a log line: the client chose it, so its length is bounded."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"malformed token: {error}") from error
