"""Fixtures of the auth tests: an RSA key made here and its JWKS served over a real
loopback HTTP server, token factories, and $connect events built from a saved API Gateway
REQUEST authorizer event (events/connect_request.json)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from authtest import AUDIENCE, ISSUER, KID, SECRET, JwksServer
from cryptography.hazmat.primitives.asymmetric import rsa

from collab.auth import keys
from collab.auth.config import AuthConfig

EVENTS = Path(__file__).parent / "events"

Claims = dict[str, Any]


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    """A key the JWKS does not publish: what an attacker signs with."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def jwks_server(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    server = JwksServer({**jwk, "kid": KID, "use": "sig", "alg": "RS256"})
    yield server
    server.close()


@pytest.fixture
def rs256_config(jwks_server: JwksServer) -> Iterator[AuthConfig]:
    # Each test starts cold, as a new execution environment would.
    keys.jwks_client.cache_clear()
    yield AuthConfig.jwks(jwks_server.url, ISSUER, AUDIENCE)
    keys.jwks_client.cache_clear()


@pytest.fixture
def hs256_config() -> AuthConfig:
    return AuthConfig.hs256(SECRET, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def claims() -> Callable[..., Claims]:
    """Valid claims now; a keyword overrides one, a keyword set to None removes it."""

    def make(**overrides: Any) -> Claims:
        now = int(time.time())
        base: Claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-ada",
            "iat": now,
            "exp": now + 600,
            "name": "Ada Lovelace",
            "email": "ada@example.test",
        }
        base.update(overrides)
        return {claim: value for claim, value in base.items() if value is not None}

    return make


@pytest.fixture
def rs256_token(rsa_key: rsa.RSAPrivateKey, claims: Callable[..., Claims]) -> Callable[..., str]:
    def make(key: rsa.RSAPrivateKey | None = None, kid: str | None = KID, **overrides: Any) -> str:
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(claims(**overrides), key or rsa_key, algorithm="RS256", headers=headers)

    return make


@pytest.fixture
def hs256_token(claims: Callable[..., Claims]) -> Callable[..., str]:
    def make(secret: str = SECRET, **overrides: Any) -> str:
        return jwt.encode(claims(**overrides), secret, algorithm="HS256")

    return make


@pytest.fixture
def connect_event() -> Callable[..., dict[str, Any]]:
    """A $connect REQUEST authorizer event with the given query parameters and extra
    headers (each given both in `headers` and in `multiValueHeaders`, as API Gateway does,
    unless `multi_value_only` or `single_value_only`)."""
    template = json.loads((EVENTS / "connect_request.json").read_text())

    def make(
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        *,
        single_value_only: bool = False,
        multi_value_only: bool = False,
    ) -> dict[str, Any]:
        event = copy.deepcopy(template)
        query = query or {}
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        for name, value in (headers or {}).items():
            if not multi_value_only:
                event["headers"][name] = value
            if not single_value_only:
                event["multiValueHeaders"][name] = [value]
        return event

    return make
