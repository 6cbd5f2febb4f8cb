"""$connect: query parameters steer it (reject, subprotocol, pause point, failure)."""

from __future__ import annotations

from typing import Any

from emuapp.record import record, wait_for_file


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    connection_id = event["requestContext"]["connectionId"]
    record(
        f"connect-{connection_id}",
        {
            "event": event,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
        },
    )
    if "pause" in query:
        record(f"{query['pause']}.started", {"connectionId": connection_id})
        wait_for_file(f"{query['pause']}.go")
    if "reject" in query:
        return {"statusCode": int(query["reject"]), "body": "rejected by $connect"}
    if query.get("fail"):
        raise RuntimeError("$connect failed on purpose")
    offered = event["headers"].get("Sec-WebSocket-Protocol")
    if offered:
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": offered.split(",")[0].strip()}}
    return {"statusCode": 200}
