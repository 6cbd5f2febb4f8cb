"""Lambda entry point of $disconnect: best effort (API Gateway may not call it), so rows
also expire by TTL and 410s on post evict too."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from collab import runtime, session
from collab.caller import Caller
from collab.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime.current()
    caller = Caller.from_event(event, rt.settings.management_endpoint)
    logger.append_keys(connection_id=caller.connection_id, scene_id=caller.scene_id)
    if caller.scene_id:
        session.on_disconnect(rt, caller)
    return {"statusCode": 200}
