"""Documents against real Redis (standalone and one-node cluster) and moto's DynamoDB/S3:
every acknowledged update survives cache loss, crashes between the two writes, stale
caches, racing and frozen compactors, and out-of-order (pending) updates."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import boto3
import pytest
from pycrdt import Doc, Text, get_update, merge_updates

from collab import cache as cache_module
from collab.blobs import BlobStore
from collab.documents import Documents, validate_update
from collab.durable_log import DurableLog
from collab.errors import InvalidUpdate
from collab.hot_state import HotState
from tests.support.pause import Crash, PausePoints, crash


def text_of(state: bytes) -> str:
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


def typing_updates(words: list[str], client_id: int | None = None) -> list[bytes]:
    """One Yjs update per word, as an editor would send them."""
    doc = Doc(client_id=client_id) if client_id is not None else Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for word in words:
        text += word
    return updates


class Store:
    def __init__(self, redis_url: str, cluster: bool, tables: dict[str, str], **limits: int) -> None:
        self.pause = PausePoints()
        self.redis = cache_module.connect(redis_url, cluster)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        self.log = DurableLog(dynamodb, tables["DOCUMENTS_TABLE"], BlobStore(s3, tables["SNAPSHOT_BUCKET"]))
        self.hot = HotState(self.redis)
        self.docs = Documents(self.log, self.hot, pause=self.pause, **limits)
        self.scene = f"scene-{uuid.uuid4().hex[:8]}"

    def flush_scene(self) -> None:
        for key in self.redis.scan_iter(match=f"collab:{{{self.scene}}}:*"):
            self.redis.delete(key)


@pytest.fixture
def store(redis_url_and_mode: tuple[str, bool], aws_tables: dict[str, str]) -> Iterator[Store]:
    url, cluster = redis_url_and_mode
    yield Store(url, cluster, aws_tables, cache_tail_limit=20, log_tail_limit=30)


def test_validate_update_refuses_garbage_and_spots_empty_updates() -> None:
    (first,) = typing_updates(["hello"])
    assert validate_update(first) is True
    assert validate_update(b"\x00\x00") is False
    for bad in (b"", b"\x01", os.urandom(64), first[:-3]):
        with pytest.raises(InvalidUpdate):
            validate_update(bad)
    # A deletion alone has no new structs but still changes the document.
    doc = Doc()
    text = doc.get("t", type=Text)
    text += "abc"
    before = doc.get_state()
    del text[0:1]
    assert validate_update(doc.get_update(before)) is True


def test_load_serves_every_update_with_and_without_the_cache(store: Store) -> None:
    updates = typing_updates([f"w{i} " for i in range(50)])
    for update in updates:
        store.docs.append(store.scene, update)
    expected = "".join(f"w{i} " for i in range(50))
    assert text_of(store.docs.load(store.scene).state) == expected
    store.flush_scene()  # FLUSHALL of this scene's keys, mid-session
    assert text_of(store.docs.load(store.scene).state) == expected
    # The load refilled the cache; a cache-only read now holds everything too.
    cached = store.hot.read(store.scene)
    parts = [cached.snapshot or b"\x00\x00", *cached.tail.values()]
    assert text_of(merge_updates(*parts)) == expected


def test_crash_between_durable_and_cache_write_loses_nothing(store: Store) -> None:
    first, second, third = typing_updates(["one ", "two ", "three"])
    store.docs.append(store.scene, first)
    store.pause.on("append:durable-written", crash)
    with pytest.raises(Crash):
        store.docs.append(store.scene, second)  # acknowledged in DynamoDB, never cached
    store.pause.on("append:durable-written", lambda: None)
    store.docs.append(store.scene, third)
    assert len(store.hot.read(store.scene).tail) == 2
    assert text_of(store.docs.load(store.scene).state) == "one two three"


def test_stale_cache_after_failover_is_repaired_from_dynamodb(store: Store) -> None:
    updates = typing_updates([f"{i}," for i in range(80)])
    for update in updates[:10]:
        store.docs.append(store.scene, update)
    store.docs.load(store.scene)
    # What an asynchronously replicated replica would hold at this point.
    stale = {key: store.redis.dump(key) for key in store.redis.scan_iter(match=f"collab:{{{store.scene}}}:*")}
    for update in updates[10:]:
        store.docs.append(store.scene, update)
    assert store.docs.compact_log(store.scene)  # the durable log moved into a snapshot
    store.flush_scene()
    for key, value in stale.items():  # failover to the stale replica
        store.redis.restore(key, 0, value, replace=True)
    assert text_of(store.docs.load(store.scene).state) == "".join(f"{i}," for i in range(80))


def test_racing_log_compactions_lose_nothing(store: Store) -> None:
    updates = typing_updates([f"{i}." for i in range(60)])
    for update in updates[:40]:
        store.docs.append(store.scene, update)
    store.pause.arm("compact-log:merged")
    results: list[bool] = []
    first = threading.Thread(
        target=lambda: results.append(store.docs.compact_log(store.scene, lease_seconds=1))
    )
    first.start()
    store.pause.wait_reached("compact-log:merged")
    for update in updates[40:50]:  # written while the first compactor holds its merge
        store.docs.append(store.scene, update)
    store.redis.delete(cache_module.scene_key(store.scene, "lease"))  # its lease ran out
    assert store.docs.compact_log(store.scene) is True  # a second compactor commits
    for update in updates[50:]:
        store.docs.append(store.scene, update)
    store.pause.release("compact-log:merged")  # the frozen one wakes up
    first.join(10)
    assert results == [False]  # its compare-and-set failed: it deleted nothing
    remaining = {entry.entry_id for entry in store.log.read_log(store.scene)}
    assert len(remaining) == 10  # exactly the 10 written after the second compaction
    assert text_of(store.docs.load(store.scene).state) == "".join(f"{i}." for i in range(60))


def test_compactor_frozen_after_commit_deletes_only_what_it_merged(store: Store) -> None:
    updates = typing_updates([f"{i};" for i in range(30)])
    for update in updates[:20]:
        store.docs.append(store.scene, update)
    store.pause.arm("compact-log:merged")
    worker = threading.Thread(target=lambda: store.docs.compact_log(store.scene))
    worker.start()
    store.pause.wait_reached("compact-log:merged")
    for update in updates[20:]:
        store.docs.append(store.scene, update)
    store.pause.release("compact-log:merged")
    worker.join(10)
    assert len(store.log.read_log(store.scene)) == 10  # deleted by id, not by count
    assert text_of(store.docs.load(store.scene).state) == "".join(f"{i};" for i in range(30))


def test_racing_cache_compactions_keep_every_update(store: Store) -> None:
    updates = typing_updates([f"{i}-" for i in range(40)])
    for update in updates[:25]:
        store.docs.append(store.scene, update)
    store.docs.load(store.scene)  # the cache knows its DynamoDB base
    store.pause.arm("compact-cache:merged")
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(store.docs.compact_cache(store.scene)))
    worker.start()
    store.pause.wait_reached("compact-cache:merged")
    assert store.docs.compact_cache(store.scene) is True
    for update in updates[25:]:
        store.docs.append(store.scene, update)
    store.pause.release("compact-cache:merged")
    worker.join(10)
    assert outcome == [False]
    assert len(store.hot.read(store.scene).tail) == 15
    store.log.read_log(store.scene)
    cached = store.hot.read(store.scene)
    assert text_of(merge_updates(cached.snapshot or b"\x00\x00", *cached.tail.values())) == "".join(
        f"{i}-" for i in range(40)
    )


def test_update_whose_parent_arrives_later_survives_compaction(store: Store) -> None:
    first, second, third = typing_updates(["alpha ", "beta ", "gamma"])
    store.docs.append(store.scene, third)  # its parents have not arrived: pending in a Doc
    store.docs.append(store.scene, second)
    assert store.docs.compact_cache(store.scene)
    assert store.docs.compact_log(store.scene)
    store.flush_scene()
    store.docs.append(store.scene, first)
    state = store.docs.load(store.scene).state
    assert text_of(state) == "alpha beta gamma"
    # A client with nothing gets everything in its SyncStep2.
    assert text_of(get_update(state, b"\x00")) == "alpha beta gamma"


def test_five_megabyte_document_goes_through_s3(store: Store) -> None:
    big = ["x" * 1_000_000 + f"{i}" for i in range(5)]
    for update in typing_updates(big):
        store.docs.append(store.scene, update)  # each over the item limit: S3-backed log items
    assert store.docs.compact_log(store.scene)
    store.flush_scene()
    loaded = store.docs.load(store.scene)
    assert len(text_of(loaded.state)) == 5_000_005
    assert loaded.head.version == 1 and loaded.log == []
