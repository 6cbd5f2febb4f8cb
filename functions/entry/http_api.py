"""Lambda entry point of the HTTP API (v2, payload format 2.0): the scene as one update or
as text, server-side updates, and version history (collab.http_routes has the routes)."""

from __future__ import annotations

# First, before anything imports PyJWT (see entry.without_cryptography).
from entry import without_cryptography  # noqa: F401

# isort: split
from typing import TYPE_CHECKING, Any

from collab import http_routes, management_client, runtime
from collab.observability import logger, metrics, tracer
from entry.ahead_of_traffic import initialised_ahead_of_traffic

if TYPE_CHECKING:  # an annotation only
    from aws_lambda_powertools.utilities.typing import LambdaContext

if initialised_ahead_of_traffic():
    runtime.current()
    http_routes.verifier()
    management_client.load_awscrt()  # what the first call to DynamoDB would load


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http_routes.resolve(event, context)
