"""Lambda entry point of $disconnect: best effort (API Gateway may not call it), so rows
also expire by TTL and 410s on post evict too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collab import management_client, runtime, session
from collab.observability import logger, metrics, tracer
from entry.ahead_of_traffic import initialised_ahead_of_traffic
from entry.common import begin

if TYPE_CHECKING:  # an annotation only
    from aws_lambda_powertools.utilities.typing import LambdaContext

# No awscrt ahead of the first post: no one waits for a $disconnect, and one without
# peers left posts nothing.
if initialised_ahead_of_traffic():
    runtime.current()
    management_client.load_awscrt()  # what the first call to DynamoDB would load


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt, caller = begin(event)
    if caller.scene_id:
        session.on_disconnect(rt, caller)
    return {"statusCode": 200}
