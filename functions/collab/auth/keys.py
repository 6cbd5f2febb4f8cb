"""Where verification keys come from, cached for the life of a warm execution environment.

- RS256: one `jwt.PyJWKClient` per JWKS URL, kept at module level, so warm invocations
  verify without a network call. It refetches the set when it expires (5 min) or, at
  most once per cooldown, when a token names an unknown kid (key rotation).
- HS256: the secret itself, or read from SSM Parameter Store or Secrets Manager with a
  lean JSON client (collab.aws_json) and kept for `SECRET_MAX_AGE_SECONDS`, so a rotated
  secret is picked up within that time. Not through Powertools parameters: that utility
  imports boto3 and builds its own boto3 session and client, about 110 ms of the
  authorizer's first invocation, where the authorizer has awscrt loaded already for the
  access table.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Any

import jwt

from collab import settings
from collab.auth.config import SecretSource, check_secret

JWKS_LIFESPAN_SECONDS = 300
# Google rotates its keys daily and publishes the next one ahead of use, so an unknown kid
# is almost always an attacker or a typo: refetch for it at most this often.
JWKS_COOLDOWN_SECONDS = 30
# The authorizer has seconds, not the JWKS client's default 30, before API Gateway gives up.
JWKS_TIMEOUT_SECONDS = 5
SECRET_MAX_AGE_SECONDS = 300


class KeyUnavailable(RuntimeError):
    """The key source could not be reached: a server fault (500), never the token's (401)."""


@cache
def jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(
        url,
        cache_jwk_set=True,
        lifespan=JWKS_LIFESPAN_SECONDS,
        timeout=JWKS_TIMEOUT_SECONDS,
        cooldown_duration=JWKS_COOLDOWN_SECONDS,
    )


_secrets: dict[SecretSource, tuple[float, str]] = {}
_secrets_lock = threading.Lock()


def load_secret(source: SecretSource) -> str:
    if source.value is not None:
        return source.value
    now = time.monotonic()
    with _secrets_lock:
        cached = _secrets.get(source)
    if cached is not None and now - cached[0] < SECRET_MAX_AGE_SECONDS:
        return cached[1]
    value = _fetch_secret(source)
    with _secrets_lock:
        _secrets[source] = (now, value)
    return value


@cache
def _client(service: str) -> Any:
    # Imported here: the jwks mode and a secret given inline never need these clients.
    from collab import aws_clients

    return aws_clients.json_client(service)


def _fetch_secret(source: SecretSource) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    value: object
    try:
        if source.ssm_parameter is not None:
            name = settings.JWT_SECRET_PARAMETER
            response = _client("ssm").get_parameter(Name=source.ssm_parameter, WithDecryption=True)
            value = response["Parameter"]["Value"]
        elif source.secrets_manager_arn is not None:
            name = settings.JWT_SECRET_ARN
            # A binary secret has no SecretString: refused below like any non-string.
            value = (
                _client("secretsmanager")
                .get_secret_value(SecretId=source.secrets_manager_arn)
                .get("SecretString")
            )
        else:
            raise KeyUnavailable("no HS256 secret source is configured")
    except (BotoCoreError, ClientError) as error:
        raise KeyUnavailable(f"could not read the HS256 secret: {error}") from error
    if not isinstance(value, str):
        raise KeyUnavailable(f"the HS256 secret named by {name} is not a string")
    check_secret(value, name)
    return value
