"""Lambda entry point: the REQUEST authorizer of $connect (logic in collab.auth.authorizer).
Logs the decision and its reason, never a token."""

from __future__ import annotations

# First, before anything imports PyJWT (see entry.without_cryptography).
from entry import without_cryptography  # noqa: F401

# isort: split
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from collab import management_client
from collab.access import SceneAccess
from collab.auth.authorizer import Unauthorized, authorize
from collab.auth.config import AuthConfig
from collab.auth.tokens import TokenVerifier
from collab.tracing import XRayProvider
from entry.ahead_of_traffic import initialised_ahead_of_traffic

logger = Logger(service="collab-authorizer")
tracer = Tracer(service="collab-authorizer", provider=XRayProvider())


@cache
def _dependencies() -> tuple[TokenVerifier, SceneAccess]:
    # Built on the first invocation, kept by warm ones (clients, JWKS, secret caches).
    return TokenVerifier(AuthConfig.from_env()), SceneAccess.from_env()


if initialised_ahead_of_traffic():
    _dependencies()
    management_client.load_awscrt()  # what the first call to DynamoDB would load


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    policy = _decide(event)
    if policy is None:
        # API Gateway answers 401 exactly when the authorizer raises "Unauthorized". Raised
        # outside the traced call: a refusal is routine, not an error to trace and alarm on.
        raise Exception("Unauthorized")
    return policy


# The policy names the user: kept out of the trace.
@tracer.capture_method(capture_response=False)
def _decide(event: dict[str, Any]) -> dict[str, Any] | None:
    verifier, access = _dependencies()
    try:
        policy = authorize(event, verifier, access)
    except Unauthorized as denied:
        logger.info("connection refused", extra={"reason": denied.reason})
        return None
    logger.info("connection admitted", extra={k: policy["context"][k] for k in ("userId", "sceneId", "role")})
    return policy
