"""What every per-connection entry point does first: the environment's runtime, the caller
from the authorizer's context, and the log's correlation keys (never the token)."""

from __future__ import annotations

from typing import Any

from collab import runtime
from collab.caller import Caller
from collab.observability import logger


def begin(event: dict[str, Any]) -> tuple[runtime.Runtime, Caller]:
    rt = runtime.current()
    caller = Caller.from_event(event, rt.settings.management_endpoint)
    context = event.get("requestContext") or {}
    logger.append_keys(
        connection_id=caller.connection_id,
        scene_id=caller.scene_id,
        request_id=context.get("requestId"),
        route=context.get("routeKey"),
    )
    return rt, caller
