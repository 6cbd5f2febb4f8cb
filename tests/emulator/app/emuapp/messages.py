"""Message routes; each answers through the Management API."""

from __future__ import annotations

import json
import os
from typing import Any

from emuapp.record import record, reply, wait_for_file

# Module state: survives between invocations of one execution environment only.
invocations = 0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global invocations
    invocations += 1
    body = json.loads(event["body"])
    action = event["requestContext"]["routeKey"]
    if action == "boom":
        raise RuntimeError("boom")
    if action == "rendezvous":
        # Each of two messages waits for the other: both finish only if they run at once.
        record(f"rv-{body['me']}", {"pid": os.getpid()})
        met = wait_for_file(f"rv-{body['peer']}.json", timeout=8)
        reply(event, {"rendezvous": body["me"], "met": met, "pid": os.getpid()})
    elif action == "count":
        reply(
            event, {"count": invocations, "pid": os.getpid(), "env": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
        )
    elif action == "allocate":
        # Touched memory (non-zero bytes), held until the reply: past the setting, the
        # environment is ended with Runtime.OutOfMemory before it replies.
        held = [b"\x01" * (1024 * 1024) for _ in range(int(body["mb"]))]
        reply(event, {"allocated_mb": len(held), "pid": os.getpid()})
    elif action == "size":
        reply(event, {"size": len(event["body"])})
    elif action == "whoami":
        reply(event, {"authorizer": event["requestContext"].get("authorizer"), "event": event})
    else:
        reply(event, {"echo": body, "size": len(event["body"])})
    # Ignored by API Gateway: no route response is configured.
    return {"statusCode": 200, "body": "never sent to the client"}
