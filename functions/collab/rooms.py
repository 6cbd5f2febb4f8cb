"""Room membership: the connections table, keyed by scene then connection.

A member list for fan-out is a strongly consistent Query of the base table (never a GSI,
which is eventually consistent). `$disconnect` is best effort, so every row carries a TTL
and reads ignore rows past it (DynamoDB deletes expired rows lazily, up to days later).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class Member:
    connection_id: str
    user_id: str
    user_name: str
    role: str
    connected_at: int = 0

    def public(self) -> dict[str, str]:
        """What peers see of a participant (DESIGN §2)."""
        return {"connectionId": self.connection_id, "userId": self.user_id, "userName": self.user_name}


class Rooms:
    def __init__(self, dynamodb: Any, table: str, ttl_seconds: int) -> None:
        self._db = dynamodb
        self._table = table
        self._ttl = ttl_seconds

    def join(self, scene_id: str, member: Member, now: float | None = None) -> bool:
        """Register a member; True only the first time (who announces the join)."""
        now = time.time() if now is None else now
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "sceneId": {"S": scene_id},
                    "connectionId": {"S": member.connection_id},
                    "userId": {"S": member.user_id},
                    "userName": {"S": member.user_name},
                    "role": {"S": member.role},
                    "connectedAt": {"N": str(int(member.connected_at or now * 1000))},
                    "expiresAt": {"N": str(int(now) + self._ttl)},
                },
                ConditionExpression="attribute_not_exists(connectionId)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def leave(self, scene_id: str, connection_id: str) -> Member | None:
        """Remove a member; returns it only to the one caller that removed it."""
        old = self._db.delete_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "connectionId": {"S": connection_id}},
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        return _member(old) if old else None

    def members(self, scene_id: str, now: float | None = None) -> list[Member]:
        now = time.time() if now is None else now
        members: list[Member] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "sceneId = :s",
            "ExpressionAttributeValues": {":s": {"S": scene_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            members += [_member(item) for item in page["Items"] if _alive(item, now)]
            if "LastEvaluatedKey" not in page:
                return members
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _alive(item: dict[str, Any], now: float) -> bool:
    return "expiresAt" not in item or int(item["expiresAt"]["N"]) > now


def _member(item: dict[str, Any]) -> Member:
    return Member(
        connection_id=item["connectionId"]["S"],
        user_id=item["userId"]["S"],
        user_name=item.get("userName", item["userId"])["S"],
        role=item.get("role", {"S": ""})["S"],
        connected_at=int(item.get("connectedAt", {"N": "0"})["N"]),
    )
