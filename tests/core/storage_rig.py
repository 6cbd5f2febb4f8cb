"""A scene's document store as the handlers build it (collab.aws_clients' DynamoDB client,
its four attempts; botocore's S3 client), on real Redis and moto's server, plus the
faults those services cannot be asked for (tests.support.faults, on the real clients):

- LoseResponse: the request really reaches moto (the write happens), then the client is
  told the read timed out, so the client's own retry sends it again, as it would in AWS;
- CrashOn: the process dies just before a request is sent (nothing is written).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from pycrdt import Doc, Text

from collab import aws_clients
from collab import cache as cache_module
from collab.blobs import BlobStore
from collab.documents import Documents
from collab.durable_log import DurableLog
from collab.hot_state import HotState
from tests.support.faults import SendThenLose, before_send, on_call
from tests.support.pause import Crash, PausePoints

RETRIES = Config(retries={"max_attempts": 3, "mode": "standard"})


def text_of(state: bytes) -> str:
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


def editor_updates(pieces: list[str]) -> list[bytes]:
    """One Yjs update per piece, typed in order by one editor."""
    doc = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for piece in pieces:
        text += piece
    return updates


def sort_key_of(body: bytes) -> str:
    """The sort key of the item a DynamoDB PutItem request writes ("" for other requests)."""
    return str(json.loads(body or b"{}").get("Item", {}).get("sk", {}).get("S", ""))


def LoseResponse(
    client: Any, prefix: str, times: int = 1, meanwhile: Callable[[], None] | None = None
) -> SendThenLose:
    """The next `times` PutItem calls on `client` whose item's sort key starts with `prefix`
    are applied by moto, then their responses lost. `meanwhile` runs between the applied
    write and the client's retry (another writer getting in first)."""
    return SendThenLose(
        client, "PutItem", lambda body: sort_key_of(body).startswith(prefix), times=times, meanwhile=meanwhile
    )


class CrashOn:
    """The next call of `operation` on `client` (a PutItem only when its item's sort key
    starts with `prefix`) raises Crash before anything is sent: a Lambda dying there."""

    def __init__(self, client: Any, operation: str, prefix: str = "") -> None:
        self.prefix = prefix
        self.armed = True
        before_send(client, self._crash, operation)

    def _crash(self, operation: str, body: bytes) -> None:
        if self.armed and sort_key_of(body).startswith(self.prefix):
            self.armed = False
            raise Crash()


class Calls:
    """Counts the calls of `operation` a client makes (its retries not counted)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.count = 0
        on_call(client, self._seen, operation)

    def _seen(self, operation: str) -> None:
        self.count += 1


class Rig:
    """Documents on real services, with its own clients (so faults stay on them) and a wall
    clock the orphan sweep reads, which a test can move forward (`later`)."""

    def __init__(
        self, redis_url: str, cluster: bool, tables: dict[str, str], scene: str | None = None, **limits: int
    ) -> None:
        self.pause = PausePoints()
        self.later = 0.0
        self.table = tables["DOCUMENTS_TABLE"]
        self.bucket = tables["SNAPSHOT_BUCKET"]
        self.dynamodb = aws_clients.json_client("dynamodb")
        self.s3 = boto3.client("s3", config=RETRIES)
        self.redis = cache_module.connect(redis_url, cluster)
        self.log = DurableLog(self.dynamodb, self.table, BlobStore(self.s3, self.bucket), clock=self.clock)
        self.hot = HotState(self.redis)
        self.docs = Documents(self.log, self.hot, pause=self.pause, **limits)
        self.scene = scene or f"scene-{uuid.uuid4().hex[:8]}"
        # For the test's own reads: no hooks on it.
        self._reader = boto3.client("dynamodb")
        self._s3_reader = boto3.client("s3")

    def clock(self) -> float:
        return time.time() + self.later

    def flush_scene(self) -> None:
        for key in self.redis.scan_iter(match=f"collab:{{{self.scene}}}:*"):
            self.redis.delete(key)

    def sort_keys(self, prefix: str) -> set[str]:
        page = self._reader.query(
            TableName=self.table,
            KeyConditionExpression="sceneId = :s AND begins_with(sk, :p)",
            ExpressionAttributeValues={":s": {"S": self.scene}, ":p": {"S": prefix}},
            ConsistentRead=True,
        )
        return {item["sk"]["S"] for item in page["Items"]}

    def objects(self) -> set[str]:
        page = self._s3_reader.list_objects_v2(Bucket=self.bucket, Prefix=f"scenes/{self.scene}/")
        return {obj["Key"] for obj in page.get("Contents", [])}

    def put_head(self, version: int, snapshot_id: str) -> None:
        self._reader.put_item(
            TableName=self.table,
            Item={
                "sceneId": {"S": self.scene},
                "sk": {"S": "head"},
                "version": {"N": str(version)},
                "snapshotId": {"S": snapshot_id},
            },
        )
