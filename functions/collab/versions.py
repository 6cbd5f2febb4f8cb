"""Saved versions of a scene (issue 12): the whole scene as one update, with a label.

Items of the documents table, beside the log and snapshots (collab.durable_log), under
prefixes no other reader queries:
- `ver#<versionId>`   the entry: label, createdAt, createdBy, bytes, auto, and a digest of
                      the state vector (so "nothing changed since the last version" is a
                      comparison, not a read of the payload); what a listing reads;
- `verdata#<versionId>` the payload, inline or in S3 at `versions/<scene>/<versionId>`
                      beyond the item limit (collab.blobs). Kept apart so a listing of 100
                      versions reads 100 small items, not 100 scenes.
The payload is written first: an entry is never listed before its payload can be read. A
writer that dies between the two leaves a payload nothing lists, expired by its TTL.

Version ids are the creation time in milliseconds (13 digits) and 8 random hex digits:
unique, and in sort-key order oldest first, so the newest are one backward Query.

Retention: with `retention_days` > 0 both items carry `expiresAt` (the table's TTL) and the
stack's S3 lifecycle rule expires `versions/` a day later; 0 keeps versions for ever.

`claim_auto` decides the automatic versions taken while a scene is edited (at most one per
AUTO_INTERVAL_SECONDS): each execution environment remembers when it may next ask, so a
busy scene costs one conditional write per environment per interval, and the write is
what keeps several environments from taking one each.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from collab.blobs import BlobStore

ENTRY_PREFIX = "ver#"
DATA_PREFIX = "verdata#"
AUTO_MARKER = "verauto"
RESTORE_LEASE = "verrestore"
RESTORE_LEASE_SECONDS = 30
# Within the http function's timeout (15 s) with room for the restore itself: past it the
# caller gets 409 conflict rather than Lambda's timeout (API Gateway's 503).
RESTORE_WAIT_SECONDS = 8
AUTO_INTERVAL_SECONDS = 600
LIST_LIMIT = 100
LABEL_LIMIT = 200
DAY = 86_400


class VersionNotFound(LookupError):
    pass


class RestoreBusy(RuntimeError):
    """Another restore of the scene held its lease for longer than this one would wait."""


@dataclass(frozen=True)
class Version:
    version_id: str
    label: str
    created_at: str  # ISO 8601, UTC, milliseconds
    created_by: str
    bytes: int
    auto: bool
    state_digest: str = ""

    def public(self) -> dict[str, Any]:
        """The entry as the HTTP API and the `version` server message show it."""
        return {
            "versionId": self.version_id,
            "label": self.label,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
            "bytes": self.bytes,
            "auto": self.auto,
        }


@dataclass(frozen=True)
class Page:
    versions: list[Version]
    before: str | None  # the id to ask `before` of for older versions; None: no more


def state_digest(state_vector: bytes) -> str:
    return hashlib.sha256(state_vector).hexdigest()[:32]


def valid_version_id(value: str) -> bool:
    head, _, tail = value.partition("-")
    return (
        len(head) == 13 and head.isdigit() and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail)
    )


class Versions:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        blobs: BlobStore,
        *,
        retention_days: int = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table
        self._blobs = blobs
        self._retention_days = retention_days
        self._clock = clock
        self._next_auto_check: dict[str, float] = {}

    def create(
        self, scene_id: str, state: bytes, state_vector: bytes, *, label: str, created_by: str, auto: bool
    ) -> Version:
        now = self._clock()
        version_id = f"{int(now * 1000):013d}-{secrets.token_hex(4)}"
        version = Version(
            version_id=version_id,
            label=label[:LABEL_LIMIT],
            created_at=datetime.fromtimestamp(now, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            created_by=created_by,
            bytes=len(state),
            auto=auto,
            state_digest=state_digest(state_vector),
        )
        expiry = (
            {"expiresAt": {"N": str(int(now) + self._retention_days * DAY)}} if self._retention_days else {}
        )
        key = f"versions/{scene_id}/{version_id}"
        self._db.put_item(
            TableName=self._table,
            Item={
                "sceneId": {"S": scene_id},
                "sk": {"S": DATA_PREFIX + version_id},
                **self._blobs.attributes(key, state),
                **expiry,
            },
        )
        self._db.put_item(
            TableName=self._table,
            Item={
                "sceneId": {"S": scene_id},
                "sk": {"S": ENTRY_PREFIX + version_id},
                "label": {"S": version.label},
                "createdAt": {"S": version.created_at},
                "createdBy": {"S": created_by},
                "bytes": {"N": str(version.bytes)},
                "auto": {"BOOL": auto},
                "digest": {"S": version.state_digest},
                **expiry,
            },
        )
        return version

    def list(self, scene_id: str, limit: int = LIST_LIMIT) -> list[Version]:
        """The newest `limit`, newest first."""
        return self.page(scene_id, limit=limit).versions

    def page(self, scene_id: str, *, before: str | None = None, limit: int = LIST_LIMIT) -> Page:
        """Up to `limit` versions older than `before` (the newest without it), newest
        first; expired entries the TTL has not removed yet are left out. One Query."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "sceneId = :s AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":s": {"S": scene_id}, ":p": {"S": ENTRY_PREFIX}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if before is not None:
            request["ExclusiveStartKey"] = {"sceneId": {"S": scene_id}, "sk": {"S": ENTRY_PREFIX + before}}
        answer = self._db.query(**request)
        now = self._clock()
        versions = [_version(item) for item in answer.get("Items", []) if not _expired(item, now)]
        last = answer.get("LastEvaluatedKey")
        older = last["sk"]["S"][len(ENTRY_PREFIX) :] if last else None
        return Page(versions, older)

    def latest(self, scene_id: str) -> Version | None:
        newest = self.list(scene_id, limit=1)
        return newest[0] if newest else None

    def get(self, scene_id: str, version_id: str) -> Version:
        item = self._item(scene_id, ENTRY_PREFIX + version_id)
        return _version(item)

    def read(self, scene_id: str, version_id: str) -> bytes:
        """The scene as it was at the version: one update."""
        item = self._item(scene_id, DATA_PREFIX + version_id)
        return self._blobs.read(item)

    def claim_auto(self, scene_id: str) -> bool:
        """True at most once per AUTO_INTERVAL_SECONDS per scene across every environment:
        the caller then takes an automatic version. A scene's first edit starts the clock
        (a version of a scene being edited comes after 10 minutes of it, not at once)."""
        now = self._clock()
        if self._next_auto_check.get(scene_id, 0.0) > now:
            return False
        self._next_auto_check[scene_id] = now + AUTO_INTERVAL_SECONDS
        if len(self._next_auto_check) > 10_000:  # a long-lived environment's memo stays small
            self._next_auto_check = {scene_id: now + AUTO_INTERVAL_SECONDS}
        key = {"sceneId": {"S": scene_id}, "sk": {"S": AUTO_MARKER}}
        cutoff = int(now) - AUTO_INTERVAL_SECONDS
        # Older than two intervals: the scene was not edited all along (every environment
        # that serves edits asks at least once an interval), so the clock starts again.
        stale = int(now) - 2 * AUTO_INTERVAL_SECONDS
        values = {":now": {"N": str(int(now))}, ":cutoff": {"N": str(cutoff)}, ":stale": {"N": str(stale)}}
        # The claim names itself: botocore retries a write whose response was lost, and the
        # retry then fails the condition on this very write (whose item says it was ours).
        claim = secrets.token_hex(8)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET claimedAt = :now, claim = :claim",
                ConditionExpression="claimedAt < :cutoff AND claimedAt >= :stale",
                ExpressionAttributeValues={**values, ":claim": {"S": claim}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            if error.response.get("Item", {}).get("claim", {}).get("S") == claim:
                return True
            old = error.response.get("Item", {}).get("claimedAt")
            if old is None or int(old["N"]) < stale:  # no clock, or a stale one: restart it
                try:
                    self._db.update_item(
                        TableName=self._table,
                        Key=key,
                        UpdateExpression="SET claimedAt = :now",
                        ConditionExpression="attribute_not_exists(claimedAt) OR claimedAt < :stale",
                        ExpressionAttributeValues={":now": values[":now"], ":stale": values[":stale"]},
                    )
                except ClientError as second:
                    if not _condition_failed(second):
                        raise
            return False
        return True

    @contextmanager
    def restoring(self, scene_id: str, wait_seconds: float = RESTORE_WAIT_SECONDS) -> Iterator[None]:
        """Holds the scene's restore lease: restores one after another, each computed
        against the scene as the previous one left it (two at once would each re-insert
        the version's content). A holder that dies frees it after RESTORE_LEASE_SECONDS."""
        owner = secrets.token_hex(8)
        key = {"sceneId": {"S": scene_id}, "sk": {"S": RESTORE_LEASE}}
        deadline = time.monotonic() + wait_seconds
        while True:
            now = self._clock()
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={
                        **key,
                        "owner": {"S": owner},
                        "until": {"N": str(int(now) + RESTORE_LEASE_SECONDS)},
                        "expiresAt": {"N": str(int(now) + 2 * RESTORE_LEASE_SECONDS)},
                    },
                    ConditionExpression="attribute_not_exists(sk) OR #until < :now",
                    ExpressionAttributeNames={"#until": "until"},
                    ExpressionAttributeValues={":now": {"N": str(int(now))}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                break
            except ClientError as error:
                if not _condition_failed(error):
                    raise
                if error.response.get("Item", {}).get("owner", {}).get("S") == owner:
                    break  # our own put, retried after its response was lost
                if time.monotonic() >= deadline:
                    raise RestoreBusy(scene_id) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            try:
                self._db.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
            except ClientError as error:
                if not _condition_failed(error):  # already taken over after expiring: not ours
                    raise

    def _item(self, scene_id: str, sort_key: str) -> dict[str, Any]:
        response = self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or _expired(item, self._clock()):
            raise VersionNotFound(sort_key.partition("#")[2])
        return dict(item)


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _expired(item: dict[str, Any], now: float) -> bool:
    expires = item.get("expiresAt")
    return expires is not None and float(expires["N"]) <= now


def _version(item: dict[str, Any]) -> Version:
    return Version(
        version_id=item["sk"]["S"][len(ENTRY_PREFIX) :],
        label=item.get("label", {}).get("S", ""),
        created_at=item["createdAt"]["S"],
        created_by=item.get("createdBy", {}).get("S", ""),
        bytes=int(item["bytes"]["N"]),
        auto=bool(item.get("auto", {}).get("BOOL", False)),
        state_digest=item.get("digest", {}).get("S", ""),
    )
