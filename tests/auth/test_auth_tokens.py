"""Token verification: every way a token must fail, against an RSA key made here and
served as a JWKS over loopback, and against an HS256 secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from authtest import AUDIENCE, ISSUER, KID, SECRET, JwksServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collab.auth import keys
from collab.auth.config import AuthConfig
from collab.auth.tokens import InvalidToken, TokenVerifier


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token pyjwt refuses to make (alg none, HMAC keyed with a PEM public key)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def rejects(config: AuthConfig, token: str, reason: str = "") -> None:
    with pytest.raises(InvalidToken, match=f"(?i){reason}"):
        TokenVerifier(config).verify(token)


# --- what passes -------------------------------------------------------------------------


def test_rs256_token_from_the_jwks_is_accepted(
    rs256_config: AuthConfig, rs256_token: Callable[..., str]
) -> None:
    identity = TokenVerifier(rs256_config).verify(rs256_token())
    assert identity.user_id == "user-ada"
    assert identity.user_name == "Ada Lovelace"
    assert identity.expires_at > time.time()
    assert identity.scene_id is None


def test_warm_verifications_reuse_the_fetched_keys(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], jwks_server: JwksServer
) -> None:
    before = jwks_server.hits
    for _ in range(3):
        # A new verifier each time, as a new invocation in a warm environment would build.
        TokenVerifier(rs256_config).verify(rs256_token())
    assert jwks_server.hits == before + 1


def test_user_name_falls_back_to_email_then_sub(
    hs256_config: AuthConfig, hs256_token: Callable[..., str]
) -> None:
    verify = TokenVerifier(hs256_config).verify
    assert verify(hs256_token(name=None)).user_name == "ada@example.test"
    assert verify(hs256_token(name=None, email=None)).user_name == "user-ada"
    assert verify(hs256_token(name="  ", email=None)).user_name == "user-ada"


def test_skew_within_the_leeway_is_tolerated(
    rs256_config: AuthConfig, rs256_token: Callable[..., str]
) -> None:
    now = int(time.time())
    TokenVerifier(rs256_config).verify(rs256_token(iat=now + 30, nbf=now + 30))


def test_the_leeway_does_not_extend_an_expiry(
    rs256_config: AuthConfig, rs256_token: Callable[..., str]
) -> None:
    # Admitted, it would be refused with token_expired on its first message anyway.
    now = int(time.time())
    rejects(rs256_config, rs256_token(iat=now - 3600, exp=now - 30), "expired")


def test_hs256_token_is_accepted(hs256_config: AuthConfig, hs256_token: Callable[..., str]) -> None:
    assert TokenVerifier(hs256_config).verify(hs256_token(sceneId="scene-1")).scene_id == "scene-1"


# --- time --------------------------------------------------------------------------------


def test_expired(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    now = int(time.time())
    rejects(rs256_config, rs256_token(iat=now - 7200, exp=now - 120), "expired")


def test_not_yet_valid_by_nbf(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    now = int(time.time())
    rejects(rs256_config, rs256_token(nbf=now + 300, exp=now + 900), "not yet valid")


def test_issued_in_the_future(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    now = int(time.time())
    rejects(rs256_config, rs256_token(iat=now + 300, exp=now + 900), "not yet valid")


# --- who issued it, for whom -------------------------------------------------------------


def test_wrong_audience(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    rejects(rs256_config, rs256_token(aud="another-project"), "audience")


def test_no_audience(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    rejects(rs256_config, rs256_token(aud=None), "aud")


def test_wrong_issuer(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    rejects(rs256_config, rs256_token(iss="https://securetoken.google.com/another-project"), "issuer")


def test_wrong_issuer_hs256(hs256_config: AuthConfig, hs256_token: Callable[..., str]) -> None:
    rejects(hs256_config, hs256_token(iss="https://elsewhere.test"), "issuer")


@pytest.mark.parametrize("claim", ["sub", "exp", "iat"])
def test_required_claim_missing(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], claim: str
) -> None:
    rejects(rs256_config, rs256_token(**{claim: None}), claim)


@pytest.mark.parametrize("sub", ["", 42])
def test_sub_not_a_non_empty_string(
    hs256_config: AuthConfig, hs256_token: Callable[..., str], sub: Any
) -> None:
    rejects(hs256_config, hs256_token(sub=sub))


# --- algorithm confusion -----------------------------------------------------------------


def test_alg_none(
    rs256_config: AuthConfig, hs256_config: AuthConfig, claims: Callable[..., dict[str, Any]]
) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": KID}, claims(), lambda _: b"")
    rejects(rs256_config, token, "algorithm 'none'")
    rejects(hs256_config, token, "algorithm 'none'")


def test_hs256_token_presented_to_rs256_config(
    rs256_config: AuthConfig, hs256_token: Callable[..., str]
) -> None:
    rejects(rs256_config, hs256_token(), "algorithm 'HS256'")


def test_rs256_token_presented_to_hs256_config(
    hs256_config: AuthConfig, rs256_token: Callable[..., str]
) -> None:
    rejects(hs256_config, rs256_token(), "algorithm 'RS256'")


def test_hs256_signed_with_the_rsa_public_key(
    rs256_config: AuthConfig, rsa_key: rsa.RSAPrivateKey, claims: Callable[..., dict[str, Any]]
) -> None:
    """The classic confusion: HMAC keyed with the published public key. A verifier that
    took the algorithm from the token would check it with that same public key."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": KID},
        claims(),
        lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
    )
    rejects(rs256_config, token, "algorithm 'HS256'")
    # Nor does pyjwt itself, below our header check, accept it for RS256.
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"], audience=AUDIENCE)


# --- signatures and keys -----------------------------------------------------------------


def test_tampered_signature(rs256_config: AuthConfig, rs256_token: Callable[..., str]) -> None:
    header, payload, signature = rs256_token().split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    rejects(rs256_config, tampered, "Signature verification failed")


def test_tampered_payload(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], claims: Callable[..., Any]
) -> None:
    header, _, signature = rs256_token().split(".")
    forged = b64url(json.dumps(claims(sub="user-admin")).encode())
    rejects(rs256_config, f"{header}.{forged}.{signature}", "Signature verification failed")


def test_signed_by_another_key_under_the_known_kid(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], other_rsa_key: rsa.RSAPrivateKey
) -> None:
    rejects(rs256_config, rs256_token(key=other_rsa_key), "Signature verification failed")


def test_hs256_wrong_secret(hs256_config: AuthConfig, hs256_token: Callable[..., str]) -> None:
    rejects(hs256_config, hs256_token(secret="another-secret-that-is-at-least-32-bytes"), "Signature")


def test_missing_kid(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], jwks_server: JwksServer
) -> None:
    before = jwks_server.hits
    rejects(rs256_config, rs256_token(kid=None), "no kid")
    assert jwks_server.hits == before  # refused before any fetch


def test_unknown_kid(
    rs256_config: AuthConfig, rs256_token: Callable[..., str], other_rsa_key: rsa.RSAPrivateKey
) -> None:
    rejects(rs256_config, rs256_token(key=other_rsa_key, kid="rotated-away"), "no signing key for kid")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b.c",
        "eyJhbGciOiJSUzI1NiJ9",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "....",
        "\u00e9.\u00e9.\u00e9",
    ],
)
def test_garbage(rs256_config: AuthConfig, hs256_config: AuthConfig, garbage: str) -> None:
    rejects(rs256_config, garbage)
    rejects(hs256_config, garbage)


# --- key sources -------------------------------------------------------------------------


def test_unreachable_jwks_is_a_server_fault_not_a_bad_token(rs256_token: Callable[..., str]) -> None:
    from devstack.services import free_port

    config = AuthConfig.jwks(f"http://127.0.0.1:{free_port()}/jwks.json", ISSUER, AUDIENCE)
    with pytest.raises(keys.KeyUnavailable):
        TokenVerifier(config).verify(rs256_token())


def test_secret_from_ssm(moto: str, hs256_token: Callable[..., str]) -> None:
    import boto3

    name = f"/collab/test/jwt-secret-{time.time_ns()}"
    boto3.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_PARAMETER": name})
    assert TokenVerifier(config).verify(hs256_token(iss=None, aud=None)).user_id == "user-ada"


def test_secret_from_secrets_manager(moto: str, hs256_token: Callable[..., str]) -> None:
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"collab-jwt-{time.time_ns()}", SecretString=SECRET
    )["ARN"]
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_ARN": arn, "JWT_ISSUER": ISSUER})
    assert TokenVerifier(config).verify(hs256_token(aud=None)).user_id == "user-ada"
    rejects(config, hs256_token(aud=None, iss=None), "iss")


def test_a_rotated_secret_is_used_once_the_cached_one_is_older_than_the_max_age(
    moto: str, hs256_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    name = f"/collab/test/jwt-rotated-{time.time_ns()}"
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=name, Value=SECRET, Type="SecureString")
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_PARAMETER": name})
    rotated = "r" * 40
    assert TokenVerifier(config).verify(hs256_token(iss=None, aud=None)).user_id == "user-ada"
    ssm.put_parameter(Name=name, Value=rotated, Type="SecureString", Overwrite=True)
    # Within the max age: the cached secret, no read per invocation.
    assert TokenVerifier(config).verify(hs256_token(iss=None, aud=None)).user_id == "user-ada"
    rejects(config, hs256_token(rotated, iss=None, aud=None), "signature")
    monkeypatch.setattr(keys, "SECRET_MAX_AGE_SECONDS", 0)
    assert TokenVerifier(config).verify(hs256_token(rotated, iss=None, aud=None)).user_id == "user-ada"
    rejects(config, hs256_token(iss=None, aud=None), "signature")


def test_a_binary_secret_is_a_server_fault(moto: str, hs256_token: Callable[..., str]) -> None:
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"collab-jwt-binary-{time.time_ns()}", SecretBinary=SECRET.encode()
    )["ARN"]
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_ARN": arn})
    with pytest.raises(keys.KeyUnavailable, match="not a string"):
        TokenVerifier(config).verify(hs256_token())


def test_missing_ssm_parameter_is_a_server_fault(moto: str, hs256_token: Callable[..., str]) -> None:
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_PARAMETER": "/collab/test/absent"})
    with pytest.raises(keys.KeyUnavailable):
        TokenVerifier(config).verify(hs256_token())
