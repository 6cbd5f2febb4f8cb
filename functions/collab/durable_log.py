"""The durable state of a scene in DynamoDB: an append-only update log and snapshots.

Items of the documents table (partition `sceneId`, sort `sk`):
- `log#<id>`   one accepted update (the acknowledgement of an edit is this write);
- `head`       the pointer: `version` (counts compactions) and `snapshotId`;
- `snap#<id>`  a snapshot: the merge of every update compacted so far.
Payloads over the item limit live in S3 (see blobs.py).

Compaction writes the new snapshot, switches `head` with a compare-and-set on the version
it read, then deletes exactly the log items it merged, by id. A reader therefore reads the
log before the pointer: whatever a compaction deletes is already in the snapshot the
pointer names by then.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from collab.blobs import BlobMissing, BlobStore

LOG_PREFIX = "log#"
SNAP_PREFIX = "snap#"
HEAD = "head"


def new_entry_id() -> str:
    """Unique, roughly time-ordered: nanoseconds then randomness (concurrent writers)."""
    return f"{time.time_ns():020d}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Head:
    version: int
    snapshot_id: str | None


@dataclass(frozen=True)
class LogEntry:
    entry_id: str
    update: bytes
    item: dict[str, Any]


class DurableLog:
    def __init__(self, dynamodb: Any, table: str, blobs: BlobStore) -> None:
        self._db = dynamodb
        self._table = table
        self._blobs = blobs

    # -- the log ---------------------------------------------------------------------------
    def append(self, scene_id: str, update: bytes) -> str:
        entry_id = new_entry_id()
        item = {
            "sceneId": {"S": scene_id},
            "sk": {"S": LOG_PREFIX + entry_id},
            "size": {"N": str(len(update))},
            **self._blobs.attributes(f"scenes/{scene_id}/log/{entry_id}", update),
        }
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
        return entry_id

    def read_log(self, scene_id: str) -> list[LogEntry]:
        """Every log item, strongly consistent (read this before the head)."""
        entries = []
        for item in self._query(scene_id, LOG_PREFIX):
            entry_id = item["sk"]["S"][len(LOG_PREFIX) :]
            entries.append(LogEntry(entry_id, self._blobs.read(item), item))
        return entries

    def _query(self, scene_id: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "sceneId = :s AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":s": {"S": scene_id}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- the snapshot ----------------------------------------------------------------------
    def read_head(self, scene_id: str) -> Head:
        item = self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": HEAD}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return Head(0, None)
        return Head(int(item["version"]["N"]), item["snapshotId"]["S"])

    def read_snapshot(self, scene_id: str, head: Head) -> bytes | None:
        """The snapshot `head` names; BlobMissing if a newer compaction removed it already
        (the caller reads the head again)."""
        if head.snapshot_id is None:
            return None
        item = self._snapshot_item(scene_id, head.snapshot_id)
        if item is None:
            raise BlobMissing(head.snapshot_id)
        return self._blobs.read(item)

    def _snapshot_item(self, scene_id: str, snapshot_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": SNAP_PREFIX + snapshot_id}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def load_latest(self, scene_id: str) -> tuple[Head, bytes | None]:
        """The current head and its snapshot, retrying past a concurrent compaction."""
        for _ in range(5):
            head = self.read_head(scene_id)
            try:
                return head, self.read_snapshot(scene_id, head)
            except BlobMissing:
                continue
        raise RuntimeError(f"scene {scene_id}: the snapshot kept moving under five reads")

    def commit_snapshot(
        self, scene_id: str, read: Head, snapshot: bytes, merged: list[LogEntry]
    ) -> Head | None:
        """Install `snapshot` (the merge of `read`'s snapshot and `merged`) if the head is
        still `read`; then delete exactly `merged`. None when another compaction won."""
        snapshot_id = new_entry_id()
        item = {
            "sceneId": {"S": scene_id},
            "sk": {"S": SNAP_PREFIX + snapshot_id},
            "size": {"N": str(len(snapshot))},
            **self._blobs.attributes(f"scenes/{scene_id}/snap/{snapshot_id}", snapshot),
        }
        self._db.put_item(TableName=self._table, Item=item)
        new_head = Head(read.version + 1, snapshot_id)
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "sceneId": {"S": scene_id},
                    "sk": {"S": HEAD},
                    "version": {"N": str(new_head.version)},
                    "snapshotId": {"S": snapshot_id},
                },
                ConditionExpression="attribute_not_exists(sk) OR version = :v",
                ExpressionAttributeValues={":v": {"N": str(read.version)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self._delete_items(scene_id, [item])  # lost the race: only our own snapshot goes
            return None
        old = [self._snapshot_item(scene_id, read.snapshot_id)] if read.snapshot_id else []
        self._delete_items(scene_id, [e.item for e in merged] + [i for i in old if i is not None])
        return new_head

    def _delete_items(self, scene_id: str, items: list[dict[str, Any]]) -> None:
        keys = [{"sceneId": {"S": scene_id}, "sk": item["sk"]} for item in items]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            for attempt in range(8):
                unprocessed = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                if not unprocessed:
                    break
                pending = unprocessed
                time.sleep(0.05 * 2**attempt)
        self._blobs.delete(items)
