"""Configuration from the environment: Firebase defaults, overrides, and settings that are
missing or wrong failing with their names."""

from __future__ import annotations

import pytest

from collab.auth.config import FIREBASE_JWKS_URL, AuthConfig, InvalidSetting, SecretSource
from collab.settings import MissingSetting


def test_firebase_defaults() -> None:
    config = AuthConfig.from_env({"AUTH_MODE": "jwks", "FIREBASE_PROJECT_ID": "screenplay-prod"})
    assert config == AuthConfig.firebase("screenplay-prod")
    assert config.jwks_url == FIREBASE_JWKS_URL
    assert config.issuer == "https://securetoken.google.com/screenplay-prod"
    assert config.audience == "screenplay-prod"
    assert config.algorithm == "RS256"
    assert config.leeway_seconds == 60


def test_jwks_settings_override_the_firebase_defaults() -> None:
    env = {
        "AUTH_MODE": "JWKS",
        "FIREBASE_PROJECT_ID": "screenplay-prod",
        "JWKS_URL": "https://idp.example.test/.well-known/jwks.json",
        "JWT_ISSUER": "https://idp.example.test/",
    }
    config = AuthConfig.from_env(env)
    assert config.jwks_url == "https://idp.example.test/.well-known/jwks.json"
    assert config.issuer == "https://idp.example.test/"
    assert config.audience == "screenplay-prod"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "AUTH_MODE"),
        ({"AUTH_MODE": "jwks"}, "JWKS_URL"),
        ({"AUTH_MODE": "jwks", "JWKS_URL": "https://idp.example.test/jwks"}, "JWT_ISSUER"),
        ({"AUTH_MODE": "jwks", "JWKS_URL": "https://i/j", "JWT_ISSUER": "https://i/"}, "JWT_AUDIENCE"),
        ({"AUTH_MODE": "hs256"}, "JWT_SECRET or JWT_SECRET_PARAMETER or JWT_SECRET_ARN"),
    ],
)
def test_missing_settings_are_named(env: dict[str, str], name: str) -> None:
    with pytest.raises(MissingSetting) as raised:
        AuthConfig.from_env(env)
    assert raised.value.name == name


@pytest.mark.parametrize(
    "env",
    [
        {"AUTH_MODE": "rs512"},
        {"AUTH_MODE": "hs256", "JWT_SECRET": "too-short"},
        {"AUTH_MODE": "hs256", "JWT_SECRET": "x" * 32, "JWT_SECRET_ARN": "arn:aws:secretsmanager:..."},
    ],
)
def test_wrong_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(InvalidSetting):
        AuthConfig.from_env(env)


def test_hs256_from_ssm_is_read_lazily() -> None:
    # No AWS call at configuration time: the secret is fetched on the first verification.
    config = AuthConfig.from_env({"AUTH_MODE": "hs256", "JWT_SECRET_PARAMETER": "/collab/jwt"})
    assert config.secret == SecretSource(ssm_parameter="/collab/jwt")
    assert config.algorithm == "HS256"
    assert (config.issuer, config.audience) == (None, None)
