"""The durable state of a scene in DynamoDB: an append-only update log and snapshots.

Items of the documents table (partition `sceneId`, sort `sk`):
- `log#<id>`   one accepted update (the acknowledgement of an edit is this write);
- `head`       the pointer: `version` (counts compactions) and `snapshotId`;
- `snap#<id>`  a snapshot: the merge of every update compacted so far, with its Summary
               (`sv`, `rest`: collab.state_summary) when that fits in the item, so a sync
               that lacks nothing is answered without reading the snapshot itself.
Payloads over the item limit live in S3 (see blobs.py), at `scenes/<scene>/log/<id>` and
`scenes/<scene>/snap/<id>`, so an item's object key follows from its id.

Compaction writes the new snapshot, switches `head` with a compare-and-set on the version
it read, then deletes exactly the log items it merged, by id. A reader therefore reads the
log before the pointer: whatever a compaction deletes is already in the snapshot the
pointer names by then.

Lost responses: botocore retries a write whose response never arrived (a 5xx, a timeout, a
reset), and the retry of a conditional write that had in fact been applied fails its own
condition. Both conditional writes here ask for the item that failed the condition
(`ReturnValuesOnConditionCheckFailure=ALL_OLD`, free) and recognise their own write in it,
so a retried success is a success, and a compactor never deletes the snapshot the head names.

Garbage: a compactor that dies between two writes, or an append whose item put fails after
its S3 put, leaves `snap#` items and S3 objects nothing points to. Every successful
compaction sweeps a bounded batch of those that are older than ORPHAN_AGE_SECONDS.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pycrdt import merge_updates

from collab.aws_json import prefix_pages
from collab.blobs import BlobMissing, BlobStore
from collab.state_summary import EMPTY, Summary, summarize

logger = logging.getLogger(__name__)

LOG_PREFIX = "log#"
SNAP_PREFIX = "snap#"
HEAD = "head"

# A Lambda invocation lasts at most 15 minutes, so an object or item this old can no longer
# be waiting for its item, nor become the head; the rest is margin for clock skew.
ORPHAN_AGE_SECONDS = 3600
# Bounded work per sweep: at most this many old items and objects of each kind looked at.
SWEEP_BATCH = 50
# Compaction is due when the log's weight passes LOG_TAIL_LIMIT: an entry weighs one unit
# plus one per WEIGHT_BYTES, spilled or not. Every sync reads the whole log (a strongly
# consistent Query, billed by its bytes) and folds in what the cache lacks, and a spilled
# entry costs an S3 GET wherever the cache does not hold it, so bytes count as much as
# entries: at the default limit of 500 the log holds at most ~125 KB (a few hundred
# keystrokes, or one paste), and a paste of 125 KB or more is compacted at once instead of
# weighing on every sync until 500 more updates arrive.
WEIGHT_BYTES = 256
# The largest summary kept in a `snap#` item (the item's limit is 400 KB); a bigger one is
# not stored and a sync without the cache reads the snapshot itself.
SUMMARY_LIMIT = 300_000


def new_entry_id() -> str:
    """Unique, roughly time-ordered: nanoseconds then randomness (concurrent writers)."""
    return f"{time.time_ns():020d}-{secrets.token_hex(6)}"


def entry_weight(size: int) -> int:
    """What one log entry of `size` bytes adds to the log's weight (see WEIGHT_BYTES)."""
    return 1 + size // WEIGHT_BYTES


def log_weight(entries: Iterable[LogEntry]) -> int:
    """Compaction is due when this passes the log limit: counts and bytes both."""
    return sum(entry_weight(entry.size) for entry in entries)


def blob_key(scene_id: str, kind: str, entry_id: str) -> str:
    return f"scenes/{scene_id}/{kind}/{entry_id}"


@dataclass(frozen=True)
class Head:
    version: int
    snapshot_id: str | None


@dataclass(frozen=True)
class LogEntry:
    """One log item. Its update is read on first use: a spilled one costs an S3 GET, which
    a reader skips when the cache already holds the entry (documents.py)."""

    entry_id: str
    item: dict[str, Any]
    blobs: BlobStore = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        return int(self.item["size"]["N"])

    @property
    def spilled(self) -> bool:
        return "s3Key" in self.item

    @cached_property
    def update(self) -> bytes:
        """BlobMissing when a compaction deleted the entry since the log was read: the
        snapshot the head names now holds it."""
        return self.blobs.read(self.item)


class DurableLog:
    def __init__(
        self, dynamodb: Any, table: str, blobs: BlobStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = dynamodb
        self._table = table
        self._blobs = blobs
        self._clock = clock  # wall-clock seconds; the sweep's notion of "old"

    # -- the log ---------------------------------------------------------------------------
    def append(self, scene_id: str, update: bytes) -> str:
        entry_id = new_entry_id()
        item = {
            "sceneId": {"S": scene_id},
            "sk": {"S": LOG_PREFIX + entry_id},
            "size": {"N": str(len(update))},
            **self._blobs.attributes(blob_key(scene_id, "log", entry_id), update),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            # The id is fresh (nanoseconds and 48 random bits), so an item already there is
            # this call's own, written by an attempt whose response was lost. Comparing it
            # costs nothing and makes a true collision an error, not a silent acknowledgement.
            if not _condition_failed(error) or self._existing(error, item) != item:
                raise
            logger.info("log append was retried after it had succeeded", extra={"entry": entry_id})
        return entry_id

    def read_log(self, scene_id: str) -> list[LogEntry]:
        """Every log item, strongly consistent (read this before the head). Spilled updates
        are not fetched here (LogEntry.update)."""
        return [
            LogEntry(item["sk"]["S"][len(LOG_PREFIX) :], item, self._blobs)
            for item in self._query(scene_id, LOG_PREFIX)
        ]

    def entry_exists(self, scene_id: str, entry_id: str) -> bool:
        return self._exists(scene_id, LOG_PREFIX + entry_id)

    def _query(self, scene_id: str, prefix: str) -> list[dict[str, Any]]:
        pages = prefix_pages(self._db, self._table, scene_id, prefix)
        return [item for page in pages for item in page["Items"]]

    # -- the snapshot ----------------------------------------------------------------------
    def read_head(self, scene_id: str) -> Head:
        item = self._get(scene_id, HEAD)
        if item is None:
            return Head(0, None)
        return Head(int(item["version"]["N"]), item["snapshotId"]["S"])

    def read_snapshot(self, scene_id: str, head: Head) -> bytes | None:
        """The snapshot `head` names; BlobMissing if a newer compaction removed it already
        (the caller reads the head again)."""
        if head.snapshot_id is None:
            return None
        item = self._get(scene_id, SNAP_PREFIX + head.snapshot_id)
        if item is None:
            raise BlobMissing(head.snapshot_id)
        return self._blobs.read(item)

    def read_snapshot_summary(self, scene_id: str, head: Head) -> Summary | None:
        """The summary stored with the snapshot `head` names (EMPTY when it names none),
        without its bytes. None when the item holds none (written before summaries, or
        too big) or is gone (compacted since `head` was read, or lost): the caller then
        reads the state itself. Reading the item, not a copy in the head, means a head
        whose snapshot is missing is never answered from a summary of what is gone."""
        if head.snapshot_id is None:
            return EMPTY
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": SNAP_PREFIX + head.snapshot_id}},
            ConsistentRead=True,
            ProjectionExpression="sv, #r",
            ExpressionAttributeNames={"#r": "rest"},
        ).get("Item")
        if item is None or "sv" not in item or "rest" not in item:
            return None
        return Summary(bytes(item["sv"]["B"]), bytes(item["rest"]["B"]))

    def load_latest(self, scene_id: str) -> tuple[Head, bytes | None]:
        """The current head and its snapshot, retrying past a concurrent compaction. A head
        whose snapshot is missing and that does not move is served from what survives."""
        previous: Head | None = None
        for _ in range(5):
            head = self.read_head(scene_id)
            try:
                return head, self.read_snapshot(scene_id, head)
            except BlobMissing:
                if head == previous:  # read twice, missing twice: not a compaction racing us
                    return head, self._surviving_snapshots(scene_id, head)
                previous = head
        raise RuntimeError(f"scene {scene_id}: the snapshot kept moving under five reads")

    def _surviving_snapshots(self, scene_id: str, head: Head) -> bytes | None:
        """The merge of every `snap#` that is still readable.

        Snapshots only grow (each includes the one its compactor loaded) and merging is
        idempotent, so the merge includes the newest survivor and anything an orphan adds.
        With the log on top (the caller has it) that is complete when the missing snapshot's
        compaction never deleted its log entries: the case of a head switch retried before
        this module recognised its own write, which deleted the snapshot it had installed.
        If anything else removed a snapshot after its compaction deleted the merged log
        items, the updates only it held are gone from DynamoDB (Redis may still have them)."""
        parts: list[bytes] = []
        for item in self._query(scene_id, SNAP_PREFIX):
            try:
                parts.append(self._blobs.read(item))
            except BlobMissing:
                continue
        logger.error(
            "the head names a snapshot that is missing; serving the surviving snapshots and the "
            "log, and the next log compaction writes a new head",
            extra={
                "sceneId": scene_id,
                "version": head.version,
                "snapshotId": head.snapshot_id,
                "surviving": len(parts),
            },
        )
        return merge_updates(*parts) if parts else None

    def commit_snapshot(
        self,
        scene_id: str,
        read: Head,
        snapshot: bytes,
        merged: list[LogEntry],
        summary: Summary | None = None,
    ) -> Head | None:
        """Install `snapshot` (the merge of `read`'s snapshot and `merged`) if the head is
        still `read`; then delete exactly `merged` and the snapshot `read` named, and sweep
        old orphans. None when another compaction won. `summary`: the snapshot's, when the
        caller has it (else it is computed here: one pass over the snapshot)."""
        summary = summary if summary is not None else summarize(snapshot)
        snapshot_id = new_entry_id()
        kept: dict[str, Any] = {}
        if len(summary.state_vector) + len(summary.rest) <= SUMMARY_LIMIT:
            kept = {"sv": {"B": summary.state_vector}, "rest": {"B": summary.rest}}
        reserve = len(summary.state_vector) + len(summary.rest) if kept else 0
        item = {
            "sceneId": {"S": scene_id},
            "sk": {"S": SNAP_PREFIX + snapshot_id},
            "size": {"N": str(len(snapshot))},
            **kept,
            **self._blobs.attributes(blob_key(scene_id, "snap", snapshot_id), snapshot, reserve),
        }
        self._db.put_item(TableName=self._table, Item=item)  # a new key: a retry rewrites it
        new_head = Head(read.version + 1, snapshot_id)
        if not self._switch_head(scene_id, read, new_head):
            # The head is past `read.version` for good, so it can never name ours.
            self._delete(scene_id, [SNAP_PREFIX + snapshot_id], [blob_key(scene_id, "snap", snapshot_id)])
            return None
        sort_keys = [LOG_PREFIX + e.entry_id for e in merged]
        blob_keys = [e.item["s3Key"]["S"] for e in merged if e.spilled]
        if read.snapshot_id is not None:
            sort_keys.append(SNAP_PREFIX + read.snapshot_id)
            blob_keys.append(blob_key(scene_id, "snap", read.snapshot_id))
        self._delete(scene_id, sort_keys, blob_keys)
        try:
            self.sweep(scene_id, keep=snapshot_id)
        except (ClientError, BotoCoreError):  # garbage only: the next compaction sweeps again
            logger.warning("orphan sweep failed", exc_info=True, extra={"sceneId": scene_id})
        return new_head

    def _switch_head(self, scene_id: str, read: Head, new: Head) -> bool:
        """Compare-and-set of the head from `read` to `new`; True when the head names `new`'s
        snapshot, also when a retried attempt of ours finds its own earlier write."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "sceneId": {"S": scene_id},
                    "sk": {"S": HEAD},
                    "version": {"N": str(new.version)},
                    "snapshotId": {"S": str(new.snapshot_id)},
                },
                ConditionExpression="attribute_not_exists(sk) OR version = :v",
                ExpressionAttributeValues={":v": {"N": str(read.version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as error:
            if not _condition_failed(error):
                raise
            current = self._existing(error, {"sk": {"S": HEAD}, "sceneId": {"S": scene_id}})
        if current is not None and current.get("snapshotId", {}).get("S") == new.snapshot_id:
            logger.info("head switch was retried after it had succeeded", extra={"sceneId": scene_id})
            return True
        return False

    # -- garbage ---------------------------------------------------------------------------
    def sweep(self, scene_id: str, keep: str) -> int:
        """Delete `snap#` items that are not the head and S3 objects without an item, older
        than ORPHAN_AGE_SECONDS, at most SWEEP_BATCH of each kind; the number deleted.

        Cheap when there is nothing to do (the usual case): one Query over a key range that
        only old snapshot ids fall in, and one ListObjectsV2 page per object prefix."""
        cutoff = self._clock() - ORPHAN_AGE_SECONDS
        old_ids = self._old_snapshot_ids(scene_id, f"{int(cutoff * 1e9):020d}")
        spared = {keep}
        if old_ids:
            spared.add(str(self.read_head(scene_id).snapshot_id))  # belt and braces
        orphans = [i for i in old_ids if i not in spared]
        sort_keys = [SNAP_PREFIX + i for i in orphans]
        blob_keys = [blob_key(scene_id, "snap", i) for i in orphans]
        for kind, prefix in (("log", LOG_PREFIX), ("snap", SNAP_PREFIX)):
            for key in self._blobs.keys_older_than(f"scenes/{scene_id}/{kind}/", cutoff, SWEEP_BATCH):
                entry_id = key.rsplit("/", 1)[1]
                if key in blob_keys or entry_id in spared:
                    continue
                if not self._exists(scene_id, prefix + entry_id):  # its item never came
                    blob_keys.append(key)
        if sort_keys or blob_keys:
            logger.info(
                "swept orphans",
                extra={"sceneId": scene_id, "items": len(sort_keys), "objects": len(blob_keys)},
            )
            self._delete(scene_id, sort_keys, blob_keys)
        return len(sort_keys) + len(blob_keys)

    def _old_snapshot_ids(self, scene_id: str, before: str) -> list[str]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="sceneId = :s AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={
                ":s": {"S": scene_id},
                ":a": {"S": SNAP_PREFIX},
                ":b": {"S": SNAP_PREFIX + before},
            },
            ProjectionExpression="#k",
            ExpressionAttributeNames={"#k": "sk"},
            ConsistentRead=True,
            Limit=SWEEP_BATCH,
        )
        return [item["sk"]["S"][len(SNAP_PREFIX) :] for item in page["Items"]]

    # -- plumbing --------------------------------------------------------------------------
    def _get(self, scene_id: str, sort_key: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def _exists(self, scene_id: str, sort_key: str) -> bool:
        return "Item" in self._db.get_item(
            TableName=self._table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": sort_key}},
            ConsistentRead=True,
            ProjectionExpression="#k",
            ExpressionAttributeNames={"#k": "sk"},
        )

    def _existing(self, error: ClientError, item: dict[str, Any]) -> dict[str, Any] | None:
        """The item that failed a condition: from the error (ALL_OLD), else read again."""
        returned: dict[str, Any] | None = error.response.get("Item")
        if returned is not None:
            return returned
        return self._get(item["sceneId"]["S"], item["sk"]["S"])

    def _delete(self, scene_id: str, sort_keys: list[str], blob_keys: list[str]) -> None:
        """Items first, then their objects: an object is never gone while an item names it
        (a crash in between leaves objects for the sweep)."""
        keys = [{"sceneId": {"S": scene_id}, "sk": {"S": sk}} for sk in sort_keys]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            for attempt in range(8):
                unprocessed = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                if not unprocessed:
                    break
                pending = unprocessed
                time.sleep(0.05 * 2**attempt)
        self._blobs.delete_keys(blob_keys)


def _condition_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
