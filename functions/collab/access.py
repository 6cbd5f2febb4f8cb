"""Who may open a scene, and as what: the access table, (sceneId, userId) -> role."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from collab import settings
from collab.aws_json import query_pages
from collab.settings import MissingSetting

Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "editor", "viewer")


@dataclass(frozen=True)
class Grant:
    user_id: str
    role: Role


def parse_role(value: object) -> Role | None:
    return cast(Role, value) if value in ROLES else None


class SceneAccess:
    """The access table. `dynamodb` is a DynamoDB client (collab.aws_json's, or botocore's);
    by default the lean one (AWS_ENDPOINT_URL_DYNAMODB points it at moto locally)."""

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        if dynamodb is None:
            from collab import aws_clients

            dynamodb = aws_clients.json_client("dynamodb")
        self.table_name = table_name
        self.dynamodb = dynamodb

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dynamodb: Any = None) -> SceneAccess:
        env = os.environ if env is None else env
        table = env.get(settings.ACCESS_TABLE, "")
        if not table:
            raise MissingSetting(settings.ACCESS_TABLE)
        return cls(table, dynamodb)

    def get_role(self, scene_id: str, user_id: str) -> Role | None:
        """The user's role in the scene, or None. Read strongly consistent, so a grant or a
        revoke takes effect on the very next connection."""
        item = self.dynamodb.get_item(
            TableName=self.table_name,
            Key=_key(scene_id, user_id),
            ProjectionExpression="#role",
            ExpressionAttributeNames={"#role": "role"},
            ConsistentRead=True,
        ).get("Item")
        # An unknown role in the table (a typo, a future role) grants nothing.
        return parse_role(item["role"].get("S")) if item and "role" in item else None

    def grant(self, scene_id: str, user_id: str, role: str) -> None:
        """Give the user this role in the scene, replacing any role they had."""
        if parse_role(role) is None:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item={
                **_key(scene_id, user_id),
                "role": {"S": role},
                "grantedAt": {"N": str(int(time.time()))},
            },
        )

    def revoke(self, scene_id: str, user_id: str) -> bool:
        """Remove the user's access to the scene; whether they had any. Open connections
        keep the role their authorizer gave them until closed (collabctl revoke does)."""
        old = self.dynamodb.delete_item(
            TableName=self.table_name, Key=_key(scene_id, user_id), ReturnValues="ALL_OLD"
        )
        return bool(old.get("Attributes"))

    def list_grants(self, scene_id: str) -> list[Grant]:
        """Everyone with a role in the scene, by user id."""
        return [
            Grant(item["userId"]["S"], role)
            for item in self._items(scene_id)
            if (role := parse_role(item.get("role", {}).get("S"))) is not None
        ]

    def _items(self, scene_id: str) -> Iterator[dict[str, Any]]:
        for page in query_pages(
            self.dynamodb,
            TableName=self.table_name,
            KeyConditionExpression="sceneId = :scene",
            ExpressionAttributeValues={":scene": {"S": scene_id}},
            ConsistentRead=True,
        ):
            yield from page.get("Items", [])


def _key(scene_id: str, user_id: str) -> dict[str, Any]:
    return {"sceneId": {"S": scene_id}, "userId": {"S": user_id}}
