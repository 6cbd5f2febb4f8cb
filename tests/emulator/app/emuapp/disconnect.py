"""$disconnect: records its event for the test to find."""

from __future__ import annotations

from typing import Any

from emuapp.record import record


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record(f"disconnect-{event['requestContext']['connectionId']}", event)
    return {"statusCode": 200}
