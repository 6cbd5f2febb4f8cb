"""The hot state's bookkeeping on real Redis, both shapes: the append script counts an entry
once however often it runs (review M2), the compaction counter never goes negative and never
lives without a TTL, so a flush does not delay the next compaction (M3), and a compactor
releases only its own lease (M4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from collab.cache import Cache, scene_key
from collab.durable_log import entry_weight
from collab.hot_state import HotState
from tests.core.storage_rig import Rig, editor_updates, text_of


@pytest.fixture
def scene(cache: Cache) -> Iterator[str]:
    scene_id = f"scene-{uuid.uuid4().hex[:8]}"
    yield scene_id
    for key in list(cache.scan_iter(match=f"collab:{{{scene_id}}}:*")):
        cache.delete(key)


def test_an_append_run_twice_is_counted_once(cache: Cache, scene: str) -> None:
    hot = HotState(cache)
    (update,) = editor_updates(["x" * 5_000])
    first = hot.append(scene, "e1", update)
    assert first == (1, entry_weight(len(update)))
    assert hot.append(scene, "e1", update) == first  # a retry of a script that had run
    assert hot.append(scene, "e2", b"\x00\x00") == (2, first[1] + 1)


def test_the_compaction_counter_never_goes_negative_nor_loses_its_ttl(cache: Cache, scene: str) -> None:
    hot = HotState(cache, ttl_seconds=600)
    logn = scene_key(scene, "logn")
    hot.log_compacted(scene, 40)
    assert not cache.exists(logn)  # a lost counter is not recreated by a compaction
    hot.append(scene, "e1", b"\x00\x00")
    hot.log_compacted(scene, 40)  # more than it counted: entries appended while it was gone
    assert int(cache.get(logn)) == 0
    assert 0 < cache.ttl(logn) <= 600


def test_after_a_flush_the_next_log_compaction_comes_on_time(
    redis_url_and_mode: tuple[str, bool], aws_tables: dict[str, str]
) -> None:
    rig = Rig(*redis_url_and_mode, aws_tables, log_tail_limit=10)
    pieces = [f"{i}," for i in range(30)]
    updates = iter(editor_updates(pieces))
    try:
        for _ in range(8):
            rig.docs.append(rig.scene, next(updates))
        rig.flush_scene()  # the counter restarts at 0; the log still holds 8 entries
        rig.docs.append(rig.scene, next(updates))
        assert rig.docs.compact_log(rig.scene)  # merges 9 entries, the counter knew of 1
        assert int(rig.redis.get(scene_key(rig.scene, "logn"))) == 0
        due = [rig.docs.append(rig.scene, next(updates)).compact_log for _ in range(12)]
        assert due.index(True) == 10  # the 11th append passes the limit of 10, not the 20th
        assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces[:21])
    finally:
        rig.flush_scene()


def test_a_compactor_releases_only_its_own_lease(cache: Cache, scene: str) -> None:
    hot = HotState(cache)
    assert hot.take_lease(scene, "first", 60)
    assert not hot.take_lease(scene, "second", 60)
    cache.set(scene_key(scene, "lease"), "second", ex=60)  # first's ran out; second took it
    hot.release_lease(scene, "first")  # the late first compactor finishes
    assert cache.get(scene_key(scene, "lease")) == b"second"
    hot.release_lease(scene, "second")
    assert not cache.exists(scene_key(scene, "lease"))
