"""Where verification keys come from, cached for the life of a warm execution environment.

- RS256: one `jwt.PyJWKClient` per JWKS URL, kept at module level, so warm invocations
  verify without a network call. It refetches the set when it expires (5 min) or, at
  most once per cooldown, when a token names an unknown kid (key rotation).
- HS256: the secret itself, or read through Powertools parameters (which caches it for
  `SECRET_MAX_AGE_SECONDS`, so a rotated secret is picked up within that time).
"""

from __future__ import annotations

from functools import cache

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


def load_secret(source: SecretSource) -> str:
    if source.value is not None:
        return source.value
    # Imported here: the jwks mode and the local stack never need the parameters utility.
    from aws_lambda_powertools.utilities import parameters

    try:
        if source.ssm_parameter is not None:
            name = settings.JWT_SECRET_PARAMETER
            value = parameters.get_parameter(
                source.ssm_parameter, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS
            )
        elif source.secrets_manager_arn is not None:
            name = settings.JWT_SECRET_ARN
            value = parameters.get_secret(source.secrets_manager_arn, max_age=SECRET_MAX_AGE_SECONDS)
        else:
            raise KeyUnavailable("no HS256 secret source is configured")
    except parameters.GetParameterError as error:
        raise KeyUnavailable(f"could not read the HS256 secret: {error}") from error
    if not isinstance(value, str):
        raise KeyUnavailable(f"the HS256 secret named by {name} is not a string")
    check_secret(value, name)
    return value
