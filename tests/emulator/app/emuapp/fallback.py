"""$default: tells the client which body it could not route."""

from __future__ import annotations

from typing import Any

from emuapp.record import reply


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Handler output must show in the emulator's output, as it would in CloudWatch.
    print(f"fallback handler saw {event['body']!r}")
    reply(event, {"default": event["body"], "routeKey": event["requestContext"]["routeKey"]})
    return {"statusCode": 200}
