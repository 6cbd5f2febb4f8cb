"""Lambda entry point of every message route: sync, update, awareness, ping, chunk, $default."""

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
    logger.append_keys(
        connection_id=caller.connection_id,
        scene_id=caller.scene_id,
        request_id=event.get("requestContext", {}).get("requestId"),
        route=event.get("requestContext", {}).get("routeKey"),
    )
    session.handle_message(rt, caller, event.get("body"))
    return {"statusCode": 200}
