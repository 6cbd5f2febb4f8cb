"""What every per-connection entry point does first: the environment's runtime, the caller
from the authorizer's context, and the log's correlation keys (never the token); and, on
an environment's first invocation, awscrt's load on a thread of its own, so that the
invocation's first waits on DynamoDB and Redis cover it before the first post needs it
(collab.management_client)."""

from __future__ import annotations

from typing import Any

from collab import management_client, runtime
from collab.caller import Caller
from collab.observability import logger


def begin(event: dict[str, Any]) -> tuple[runtime.Runtime, Caller]:
    rt = runtime.current()
    # After the build, which is Python work the load (it holds the GIL) would only delay.
    management_client.load_in_background()  # once per process; a no-op once loaded
    caller = Caller.from_event(event, rt.settings.management_endpoint)
    context = event.get("requestContext") or {}
    logger.append_keys(
        connection_id=caller.connection_id,
        scene_id=caller.scene_id,
        request_id=context.get("requestId"),
        route=context.get("routeKey"),
    )
    return rt, caller
