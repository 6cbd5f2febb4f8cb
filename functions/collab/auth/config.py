"""How tokens are verified, parsed from the environment once per execution environment.

Two modes, chosen explicitly by AUTH_MODE (no guessing from which variables happen to be
set, so a half-configured stack fails at start-up with the name of what is missing):

- `jwks`: RS256 against a JWKS URL. With FIREBASE_PROJECT_ID the URL, issuer and audience
  default to Firebase's; JWKS_URL, JWT_ISSUER and JWT_AUDIENCE override them.
- `hs256`: HS256 with a shared secret: JWT_SECRET (local), or the name of an SSM
  SecureString (JWT_SECRET_PARAMETER) or a Secrets Manager ARN (JWT_SECRET_ARN) on AWS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from collab import settings
from collab.settings import MissingSetting

FIREBASE_JWKS_URL = (
    "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
)
FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"

# Below a digest's length an HMAC key is guessable offline from any one token.
MIN_SECRET_BYTES = 32

# Clock skew tolerated on exp, nbf and iat: client, identity provider and Lambda clocks
# differ by seconds, never by minutes.
DEFAULT_LEEWAY_SECONDS = 60

Mode = Literal["jwks", "hs256"]
MODES: tuple[Mode, ...] = ("jwks", "hs256")


class InvalidSetting(RuntimeError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {name} {problem}")
        self.name = name


@dataclass(frozen=True)
class SecretSource:
    """Where the HS256 secret lives: exactly one of the three is set."""

    value: str | None = None
    ssm_parameter: str | None = None
    secrets_manager_arn: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    mode: Mode
    # Checked when set; required in jwks mode (anyone can publish a JWKS).
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    secret: SecretSource | None = None
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    @property
    def algorithm(self) -> str:
        """The one algorithm this configuration accepts; a token's header never chooses it."""
        return "RS256" if self.mode == "jwks" else "HS256"

    @classmethod
    def jwks(
        cls, jwks_url: str, issuer: str, audience: str, leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    ) -> AuthConfig:
        return cls("jwks", issuer, audience, jwks_url=jwks_url, leeway_seconds=leeway_seconds)

    @classmethod
    def firebase(cls, project_id: str) -> AuthConfig:
        """Firebase ID tokens of one project."""
        return cls.jwks(FIREBASE_JWKS_URL, FIREBASE_ISSUER_PREFIX + project_id, project_id)

    @classmethod
    def hs256(
        cls, secret: str | SecretSource, issuer: str | None = None, audience: str | None = None
    ) -> AuthConfig:
        source = SecretSource(value=secret) if isinstance(secret, str) else secret
        if source.value is not None:
            check_secret(source.value, settings.JWT_SECRET)
        return cls(mode="hs256", secret=source, issuer=issuer, audience=audience)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        mode = env.get(settings.AUTH_MODE, "").strip().lower()
        if not mode:
            raise MissingSetting(settings.AUTH_MODE)
        if mode == "jwks":
            return _jwks_from_env(env)
        if mode == "hs256":
            return _hs256_from_env(env)
        raise InvalidSetting(settings.AUTH_MODE, f"is {mode!r}, expected one of {', '.join(MODES)}")


def check_secret(secret: str, name: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise InvalidSetting(name, f"must be at least {MIN_SECRET_BYTES} bytes")


def _jwks_from_env(env: Mapping[str, str]) -> AuthConfig:
    project = env.get(settings.FIREBASE_PROJECT_ID, "")
    defaults = (
        {
            settings.JWKS_URL: FIREBASE_JWKS_URL,
            settings.JWT_ISSUER: FIREBASE_ISSUER_PREFIX + project,
            settings.JWT_AUDIENCE: project,
        }
        if project
        else {}
    )

    def pick(name: str) -> str:
        value = env.get(name, "") or defaults.get(name, "")
        if not value:
            raise MissingSetting(name)
        return value

    return AuthConfig.jwks(pick(settings.JWKS_URL), pick(settings.JWT_ISSUER), pick(settings.JWT_AUDIENCE))


def _hs256_from_env(env: Mapping[str, str]) -> AuthConfig:
    names = (settings.JWT_SECRET, settings.JWT_SECRET_PARAMETER, settings.JWT_SECRET_ARN)
    given = [name for name in names if env.get(name)]
    if not given:
        raise MissingSetting(" or ".join(names))
    if len(given) > 1:
        raise InvalidSetting(" and ".join(given), "are all set; set exactly one")
    source = SecretSource(
        value=env.get(settings.JWT_SECRET) or None,
        ssm_parameter=env.get(settings.JWT_SECRET_PARAMETER) or None,
        secrets_manager_arn=env.get(settings.JWT_SECRET_ARN) or None,
    )
    return AuthConfig.hs256(
        source,
        issuer=env.get(settings.JWT_ISSUER) or None,
        audience=env.get(settings.JWT_AUDIENCE) or None,
    )
