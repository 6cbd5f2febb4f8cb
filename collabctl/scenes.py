"""`collabctl scene check` and `collabctl scene remove-update`: find what Yjs cannot read in
a scene's stored document, and take it out.

A scene is stored as a DynamoDB snapshot plus a log of updates (collab/durable_log.py),
with Redis caching their merge (collab/hot_state.py). Every sync serves the merge of all
of it, so one update Yjs cannot read breaks every browser's load of the scene (review F1).

- `check` reads the snapshot the head names and every log entry and runs the strict Yjs
  reader (collab/yjs_format.py) and pycrdt's decoder over each, then over their merge (what
  a sync serves). Bad entries are reported by id; the exit status is 2 if any is bad.
- `remove-update --entry ID` deletes a bad log entry (its item, then its S3 object). When
  ID is the snapshot's id, it rewrites the snapshot without the client groups Yjs cannot
  read, the whole group of each such client id: a struct cannot be cut out of its group
  without decoding it, and a group Yjs cannot read was written by one bad client session.
  Structs of others that sit inside a dropped struct (a child of a bad type) are kept but
  stay pending in Yjs, invisible. The new snapshot replaces the old one by the head's
  compare-and-set (a concurrent compaction wins; run the command again).
  Redis holds the same bytes (its `snap` and `tail` are merged into every sync), so the
  scene's cache keys are deleted afterwards and the next sync refills them from DynamoDB.
  That needs the cache's URL (REDIS_URL / --redis-url); without one, pass --skip-cache and
  the cache keeps serving the bad update until its keys expire (24 h without writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from pycrdt import get_update, merge_updates

from collab import settings
from collab.blobs import BlobMissing, BlobStore
from collab.cache import CacheUnavailable, connect, scene_key
from collab.documents import validate_update
from collab.durable_log import LOG_PREFIX, DurableLog, LogEntry
from collab.errors import InvalidUpdate
from collab.lib0 import var_uint
from collab.yjs_format import MAX_CLOCK, UnreadableUpdate, read_update

FOUND_UNREADABLE = 2  # exit status of `check` when something is bad

# How many bad client groups a snapshot rewrite drops before giving up (it is an operator
# tool: a snapshot with more is a different problem).
MAX_DROPPED_CLIENTS = 50


@dataclass(frozen=True)
class Finding:
    kind: str  # "snapshot", "log" or "served" (the merge a sync serves)
    entry_id: str
    size: int
    problem: str | None  # None: Yjs reads it
    client: int | None = None  # the client group the problem is in, when known

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_scene(log: DurableLog, scene_id: str) -> list[Finding]:
    """The snapshot, every log entry and their merge, each checked."""
    entries = log.read_log(scene_id)  # before the head, as every reader does
    head, snapshot = log.load_latest(scene_id)
    findings: list[Finding] = []
    parts: list[bytes] = []
    if snapshot is not None:
        findings.append(_check("snapshot", str(head.snapshot_id), snapshot))
        parts.append(snapshot)
    for entry in entries:
        update = _entry_update(entry)
        if update is None:
            findings.append(Finding("log", entry.entry_id, entry.size, "compacted while checked: run again"))
            continue
        findings.append(_check("log", entry.entry_id, update))
        parts.append(update)
    try:
        served = merge_updates(*parts) if parts else b"\x00\x00"
    except ValueError:
        findings.append(Finding("served", "merged", sum(map(len, parts)), "pycrdt cannot merge it"))
    else:
        findings.append(_check("served", "merged", served))
    return findings


def _entry_update(entry: LogEntry) -> bytes | None:
    try:
        return entry.update
    except BlobMissing:
        return None


def _check(kind: str, entry_id: str, update: bytes) -> Finding:
    try:
        validate_update(update)  # the strict Yjs reader, then pycrdt's decoder
    except UnreadableUpdate as error:
        return Finding(kind, entry_id, len(update), error.message, error.client)
    except InvalidUpdate as error:
        return Finding(kind, entry_id, len(update), error.message)
    return Finding(kind, entry_id, len(update), None)


@dataclass(frozen=True)
class Removal:
    entry_id: str
    kind: str  # "log" (the entry was deleted) or "snapshot" (it was rewritten)
    dropped_clients: tuple[int, ...] = ()
    new_snapshot_id: str | None = None


def remove_update(
    log: DurableLog, dynamodb: Any, table: str, blobs: BlobStore, scene_id: str, entry_id: str, force: bool
) -> Removal:
    """Delete log entry `entry_id`, or rewrite the snapshot if `entry_id` is its id.
    ValueError (the operator's to fix) if there is no such entry, if it is readable and
    `force` is not set, or if the head moved meanwhile."""
    head, snapshot = log.load_latest(scene_id)
    if snapshot is not None and entry_id == head.snapshot_id:
        kept, dropped = without_unreadable_clients(snapshot)
        if not dropped and not force:
            raise ValueError(f"snapshot {entry_id} is readable; --force rewrites it anyway")
        new_head = log.commit_snapshot(scene_id, head, kept, [])
        if new_head is None:
            raise ValueError("a compaction replaced the snapshot meanwhile: check the scene again")
        return Removal(entry_id, "snapshot", dropped, new_head.snapshot_id)
    key = {"sceneId": {"S": scene_id}, "sk": {"S": LOG_PREFIX + entry_id}}
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        raise ValueError(
            f"scene {scene_id} has no log entry {entry_id} (compacted into the snapshot? "
            "run `collabctl scene check` again)"
        )
    update = _entry_update(LogEntry(entry_id, item, blobs))
    if update is not None and _check("log", entry_id, update).ok and not force:
        raise ValueError(f"log entry {entry_id} is readable; --force removes it anyway")
    dynamodb.delete_item(TableName=table, Key=key)
    if "s3Key" in item:  # the item first: an object is never gone while an item names it
        blobs.delete_keys([item["s3Key"]["S"]])
    return Removal(entry_id, "log")


def without_unreadable_clients(state: bytes) -> tuple[bytes, tuple[int, ...]]:
    """`state` minus every client group Yjs cannot read, and the client ids dropped.

    The strict reader stops at the first problem and names its client group; pycrdt, which
    decodes what Yjs cannot, re-encodes the state without that client (a diff against a
    state vector that claims the client's every clock). ValueError when the problem is in
    no client group (the header or the delete set) or pycrdt cannot decode the state."""
    dropped: list[int] = []
    while True:
        try:
            read_update(state)
            return state, tuple(dropped)
        except UnreadableUpdate as error:
            if error.client is None or error.client in dropped or len(dropped) >= MAX_DROPPED_CLIENTS:
                raise ValueError(
                    f"the snapshot cannot be repaired by dropping client groups: {error}"
                ) from None
            dropped.append(error.client)
        state_vector = var_uint(len(dropped)) + b"".join(var_uint(c) + var_uint(MAX_CLOCK) for c in dropped)
        try:
            state = get_update(state, state_vector)
        except ValueError:
            raise ValueError("pycrdt cannot decode the snapshot either: it cannot be rewritten") from None


def purge_cache(redis_url: str, cluster: bool, scene_id: str) -> None:
    """Delete the scene's cached document (snapshot, marks and tail); readers refill it from
    DynamoDB."""
    cache = connect(redis_url, cluster)
    try:
        cache.delete(scene_key(scene_id, "doc"), scene_key(scene_id, "tail"))
    finally:
        cache.close()


# -- the command line ------------------------------------------------------------------------


def register(commands: Any, scene: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
    """Add `scene check` and `scene remove-update` to collabctl's subcommands."""
    tables = argparse.ArgumentParser(add_help=False)
    tables.add_argument("--documents-table", help=f"default: ${settings.DOCUMENTS_TABLE}")
    tables.add_argument("--snapshot-bucket", help=f"default: ${settings.SNAPSHOT_BUCKET}")
    group = commands.add_parser("scene", help="check or repair a scene's stored document")
    actions = group.add_subparsers(required=True, metavar="action")
    check = actions.add_parser(
        "check",
        parents=[scene, tables, as_json],
        help="report stored updates Yjs cannot read (exit status 2 if any)",
    )
    check.set_defaults(run=run_check)
    remove = actions.add_parser(
        "remove-update",
        parents=[scene, tables],
        help="delete a bad log entry, or rewrite the snapshot without the bad client groups",
    )
    remove.add_argument("--entry", required=True, help="a log entry id or the snapshot id, as `check` prints")
    remove.add_argument("--force", action="store_true", help="also when Yjs can read it")
    remove.add_argument("--redis-url", help=f"the cache to purge; default: ${settings.REDIS_URL}")
    remove.add_argument("--redis-cluster", action="store_true", help=f"default: ${settings.REDIS_CLUSTER}")
    remove.add_argument(
        "--skip-cache",
        action="store_true",
        help="do not purge the cache (it then serves the bad update until its keys expire)",
    )
    remove.set_defaults(run=run_remove)


def run_check(args: argparse.Namespace) -> int:
    findings = check_scene(_durable_log(args)[0], args.scene)
    if args.json:
        print(json.dumps([asdict(f) for f in findings]))
    else:
        for finding in findings:
            state = "ok " if finding.ok else "BAD"
            where = "" if finding.client is None else f" (client {finding.client})"
            problem = "" if finding.ok else f"\t{finding.problem}{where}"
            print(f"{state}\t{finding.kind}\t{finding.entry_id}\t{finding.size} bytes{problem}")
    return 0 if all(f.ok for f in findings) else FOUND_UNREADABLE


def run_remove(args: argparse.Namespace) -> int:
    redis_url = args.target.get(settings.REDIS_URL, args.redis_url)
    if not redis_url and not args.skip_cache:
        # Checked before anything is changed: removing only the durable copy looks like a
        # fix while every sync still serves the cached one.
        raise ValueError(
            f"set {settings.REDIS_URL} or --redis-url to purge the scene's cache, or pass --skip-cache "
            "(the cache then serves the bad update until its keys expire)"
        )
    log, dynamodb, table, blobs = _durable_log(args)
    removal = remove_update(log, dynamodb, table, blobs, args.scene, args.entry, args.force)
    if removal.kind == "log":
        print(f"removed log entry {removal.entry_id} of {args.scene}")
    else:
        clients = ", ".join(map(str, removal.dropped_clients)) or "none"
        print(
            f"rewrote snapshot {removal.entry_id} of {args.scene} as {removal.new_snapshot_id} "
            f"without client groups: {clients}"
        )
    if redis_url and not args.skip_cache:
        cluster = args.redis_cluster or args.target.get(settings.REDIS_CLUSTER).strip().lower() in {
            "1",
            "true",
            "yes",
        }
        try:
            purge_cache(redis_url, cluster, args.scene)
        except CacheUnavailable as error:
            print(f"collabctl: error: the cache of {args.scene} was not purged: {error}", file=sys.stderr)
            return 1
        print(f"purged the cache of {args.scene}")
    else:
        print(
            f"cache not purged: it serves the old content of {args.scene} until its keys expire",
            file=sys.stderr,
        )
    remaining = [f for f in check_scene(log, args.scene) if not f.ok]
    for finding in remaining:
        print(f"still BAD\t{finding.kind}\t{finding.entry_id}: {finding.problem}")
    return 0 if not remaining else FOUND_UNREADABLE


def _durable_log(args: argparse.Namespace) -> tuple[DurableLog, Any, str, BlobStore]:
    target = args.target  # collabctl/target.py: flags, the environment or the local stack
    table = target.required(settings.DOCUMENTS_TABLE, args.documents_table, "--documents-table")
    bucket = target.get(settings.SNAPSHOT_BUCKET, args.snapshot_bucket) or None
    dynamodb = target.client("dynamodb")
    blobs = BlobStore(target.client("s3"), bucket)
    return DurableLog(dynamodb, table, blobs), dynamodb, table, blobs
