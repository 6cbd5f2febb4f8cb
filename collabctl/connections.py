"""Read and close a scene's WebSocket connections from outside the handlers: the
connections table (sceneId, connectionId) and the API Gateway Management API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Participant:
    connection_id: str
    user_id: str
    user_name: str
    role: str
    connected_at: int | None
    expires_at: int | None


def connection_rows(dynamodb: Any, table: str, scene_id: str) -> Iterator[dict[str, Any]]:
    """Every row of the scene, expired ones included. Strongly consistent: a connection
    registered a moment ago is listed."""
    for page in dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="sceneId = :scene",
        ExpressionAttributeValues={":scene": {"S": scene_id}},
        ConsistentRead=True,
    ):
        yield from page.get("Items", [])


def participant(item: dict[str, Any]) -> Participant:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> int | None:
        value = item.get(name, {}).get("N")
        return int(value) if value is not None else None

    return Participant(
        connection_id=text("connectionId"),
        user_id=text("userId"),
        user_name=text("userName"),
        role=text("role"),
        connected_at=number("connectedAt"),
        expires_at=number("expiresAt"),
    )


def list_participants(
    dynamodb: Any, table: str, scene_id: str, now: float | None = None
) -> list[Participant]:
    """The scene's connections whose TTL has not passed (DynamoDB deletes expired rows
    lazily, up to days later, so they are filtered here)."""
    now = time.time() if now is None else now
    everyone = (participant(item) for item in connection_rows(dynamodb, table, scene_id))
    return [p for p in everyone if p.expires_at is None or p.expires_at > now]


def close_user_connections(
    dynamodb: Any, table: str, scene_id: str, user_id: str, management: Any
) -> list[str]:
    """Close every open connection of the user to the scene; the ids closed. `management`
    is a boto3 apigatewaymanagementapi client for the API's stage. A connection that is
    already gone is skipped; its $disconnect (or the TTL) removes its row."""
    closed = []
    for item in connection_rows(dynamodb, table, scene_id):
        row = participant(item)
        if row.user_id != user_id:
            continue
        try:
            management.delete_connection(ConnectionId=row.connection_id)
        except management.exceptions.GoneException:
            continue
        closed.append(row.connection_id)
    return closed
