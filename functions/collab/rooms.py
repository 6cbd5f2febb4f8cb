"""Room membership: the connections table, keyed by scene then connection.

A connection's row is written twice:
- at `$connect` (`admit`), before the connection can send anything, so that `revoke` and a
  role change always find every open connection, member or not. `$connect` re-reads the
  role after this write, which closes the window between the authorizer's check and it;
- at its first `sync` (`join`), which makes it a member: a recipient of fan-out. Nothing
  can be posted to a connection while `$connect` runs, so only joined rows receive.

A member list for fan-out is a strongly consistent Query of the base table (never a GSI,
which is eventually consistent). `$disconnect` is best effort, so every row carries a TTL
and reads ignore rows past it (DynamoDB deletes expired rows lazily, up to days later).
A row also carries the token's expiry: a member whose token has expired receives nothing
more (invariant 8); the caller closes it.

Writes are safe to retry (botocore retries a write whose response was lost): `admit` is a
plain put, and `join` recognises its own earlier success by a token it wrote.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from collab.aws_json import query_pages
from collab.caller import Caller

ROLE_RANK = {"viewer": 1, "editor": 2, "owner": 3}


@dataclass(frozen=True)
class Member:
    connection_id: str
    user_id: str
    user_name: str
    role: str
    connected_at: int = 0
    token_expires_at: int = 0  # the token's exp (epoch seconds); 0 when unknown
    # The role was checked after the row existed (by `$connect`, or by a sync).
    verified: bool = field(default=False, compare=False)

    @classmethod
    def of(cls, caller: Caller) -> Member:
        """The caller's connection as a row: identity, role and token expiry."""
        return cls(
            caller.connection_id,
            caller.user_id,
            caller.user_name,
            caller.role,
            caller.connected_at,
            token_expires_at=caller.expires_at,
        )

    def public(self) -> dict[str, str]:
        """What peers see of a participant (docs/design.md §2)."""
        return {"connectionId": self.connection_id, "userId": self.user_id, "userName": self.user_name}

    def token_expired(self, now: float) -> bool:
        return bool(self.token_expires_at) and self.token_expires_at <= now


@dataclass(frozen=True)
class Joined:
    first: bool  # this call made the connection a member: it announces the join
    verified: bool  # `$connect` checked the role after writing the row (see admit)


@dataclass(frozen=True)
class Roster:
    members: list[Member] = field(default_factory=list)  # live, joined, token valid
    expired: list[Member] = field(default_factory=list)  # joined, but the token has expired


class Rooms:
    def __init__(self, dynamodb: Any, table: str, ttl_seconds: int) -> None:
        self._db = dynamodb
        self._table = table
        self._ttl = ttl_seconds

    def admit(self, scene_id: str, member: Member, now: float | None = None) -> None:
        """Record an open connection at `$connect` (not yet a member). A plain put: a
        retry writes the same row, and nothing else can have written it yet."""
        now = time.time() if now is None else now
        item = self._item(scene_id, member, now)
        item["admittedAt"] = {"N": str(int(now * 1000))}
        self._db.put_item(TableName=self._table, Item=item)

    def join(self, scene_id: str, member: Member, now: float | None = None) -> Joined:
        """Make a connection a member; `first` only for the call that did it. An update,
        not a put: it keeps the row `admit` wrote, and creates one if there is none."""
        now = time.time() if now is None else now
        token = secrets.token_hex(8)
        values = self._item(scene_id, member, now)
        del values["sceneId"], values["connectionId"]
        names = {f"#{name}": name for name in values}
        assignments = [f"#{name} = :{name}" for name in values]
        expression_values = {f":{name}": value for name, value in values.items()}
        expression_values[":now"] = {"N": str(int(now * 1000))}
        expression_values[":token"] = {"S": token}
        try:
            new = self._db.update_item(
                TableName=self._table,
                Key=_key(scene_id, member.connection_id),
                UpdateExpression="SET " + ", ".join([*assignments, "joinedAt = :now", "joinToken = :token"]),
                # Only the first join writes: the one that announces. (A condition, not
                # if_not_exists: moto, the local stack's DynamoDB, applies concurrent
                # unconditional updates without isolation.)
                ConditionExpression="attribute_not_exists(joinToken)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expression_values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = error.response.get("Item")
            if old is None:  # no ALL_OLD in the error: read the row that won
                old = self._db.get_item(
                    TableName=self._table, Key=_key(scene_id, member.connection_id), ConsistentRead=True
                ).get("Item", {})
            # Botocore's retry of our own successful join finds our token: still the first.
            ours = old.get("joinToken", {}).get("S") == token
            return Joined(first=ours, verified="admittedAt" in old)
        return Joined(first=True, verified="admittedAt" in new)

    def mark_verified(self, scene_id: str, connection_id: str, now: float | None = None) -> None:
        """The role was checked after the row existed (a connection `$connect` did not admit)."""
        now = time.time() if now is None else now
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(scene_id, connection_id),
                UpdateExpression="SET admittedAt = if_not_exists(admittedAt, :now)",
                ConditionExpression="attribute_exists(connectionId)",
                ExpressionAttributeValues={":now": {"N": str(int(now * 1000))}},
            )
        except ClientError as error:
            # Gone meanwhile ($disconnect or an eviction): nothing left to mark.
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def leave(self, scene_id: str, connection_id: str) -> Member | None:
        """Remove a connection's row; returns the member only to the one caller that
        removed a member's row (who announces the leave). A retry after a lost response
        returns None: the participant list of the peers' next sync reply repairs that."""
        old = self._db.delete_item(
            TableName=self._table, Key=_key(scene_id, connection_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        return _member(old) if old and _joined(old) else None

    def roster(self, scene_id: str, now: float | None = None) -> Roster:
        """The members (fan-out recipients) and the members whose token has expired."""
        now = time.time() if now is None else now
        roster = Roster()
        for item in self._rows(scene_id, now):
            if not _joined(item):
                continue
            member = _member(item)
            (roster.expired if member.token_expired(now) else roster.members).append(member)
        return roster

    def recipients(self, scene_id: str, now: float | None = None) -> Roster:
        """`roster` for a fan-out: the same rows, but each Member carries only its
        connection id and token expiry (user, name and role are empty).

        DynamoDB filters the rows (joined, not past their TTL) and returns two attributes
        of each: with botocore's client, which parsed a response attribute by attribute,
        for 20 members of 12 attributes the Query cost the handler 4.0 ms of CPU per
        update, 2.7 ms this way (300 Queries against moto); collab.aws_json decodes the
        answer with json.loads, and a smaller answer is still less to read.
        The read stays a strongly consistent Query of the base table (invariant 2)."""
        now = time.time() if now is None else now
        roster = Roster()
        pages = query_pages(
            self._db,
            TableName=self._table,
            KeyConditionExpression="sceneId = :s",
            # _joined and _alive, evaluated by DynamoDB.
            FilterExpression=(
                "(attribute_exists(joinedAt) OR attribute_not_exists(admittedAt)) "
                "AND (attribute_not_exists(expiresAt) OR expiresAt > :now)"
            ),
            ProjectionExpression="connectionId, tokenExpiresAt",
            ExpressionAttributeValues={":s": {"S": scene_id}, ":now": {"N": str(int(now))}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page["Items"]:
                member = Member(
                    connection_id=item["connectionId"]["S"],
                    user_id="",
                    user_name="",
                    role="",
                    token_expires_at=int(item.get("tokenExpiresAt", {"N": "0"})["N"]),
                )
                (roster.expired if member.token_expired(now) else roster.members).append(member)
        return roster

    def members(self, scene_id: str, now: float | None = None) -> list[Member]:
        return self.roster(scene_id, now).members

    def connections(self, scene_id: str, now: float | None = None) -> list[Member]:
        """Every open connection's row, member or not (what revoke and grant close)."""
        now = time.time() if now is None else now
        return [_member(item) for item in self._rows(scene_id, now)]

    def _rows(self, scene_id: str, now: float) -> list[dict[str, Any]]:
        pages = query_pages(
            self._db,
            TableName=self._table,
            KeyConditionExpression="sceneId = :s",
            ExpressionAttributeValues={":s": {"S": scene_id}},
            ConsistentRead=True,
        )
        return [item for page in pages for item in page["Items"] if _alive(item, now)]

    def _item(self, scene_id: str, member: Member, now: float) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_key(scene_id, member.connection_id),
            "userId": {"S": member.user_id},
            "userName": {"S": member.user_name},
            "role": {"S": member.role},
            "connectedAt": {"N": str(int(member.connected_at or now * 1000))},
            "expiresAt": {"N": str(int(now) + self._ttl)},
        }
        if member.token_expires_at:
            item["tokenExpiresAt"] = {"N": str(member.token_expires_at)}
        return item


def _key(scene_id: str, connection_id: str) -> dict[str, Any]:
    return {"sceneId": {"S": scene_id}, "connectionId": {"S": connection_id}}


def _alive(item: dict[str, Any], now: float) -> bool:
    return "expiresAt" not in item or int(item["expiresAt"]["N"]) > now


def _joined(item: dict[str, Any]) -> bool:
    # Rows written before `$connect` admitted connections have neither attribute: members.
    return "joinedAt" in item or "admittedAt" not in item


def _member(item: dict[str, Any]) -> Member:
    return Member(
        connection_id=item["connectionId"]["S"],
        user_id=item["userId"]["S"],
        user_name=item.get("userName", item["userId"])["S"],
        role=item.get("role", {"S": ""})["S"],
        connected_at=int(item.get("connectedAt", {"N": "0"})["N"]),
        token_expires_at=int(item.get("tokenExpiresAt", {"N": "0"})["N"]),
        verified="admittedAt" in item,
    )
