"""Orphans of crashed compactions and failed appends are swept (review M5): `snap#` items
that are not the head and S3 objects without an item, once older than an hour, by the next
successful log compaction; nothing younger and nothing live is touched.

The crashes are caused on the real boto3 clients (storage_rig.CrashOn: the Lambda dies just
before a request goes out), against moto's server and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collab.durable_log import ORPHAN_AGE_SECONDS
from tests.core.storage_rig import CrashOn, Rig, editor_updates, text_of
from tests.support.pause import Crash

PASTE = "Q" * 400_000  # over the item limit: log entries and snapshots that include it are in S3


@pytest.fixture
def rig(redis_url_and_mode: tuple[str, bool], aws_tables: dict[str, str]) -> Iterator[Rig]:
    url, cluster = redis_url_and_mode
    rig = Rig(url, cluster, aws_tables)
    yield rig
    rig.flush_scene()


def test_a_crashed_compactors_orphans_are_swept_once_old(rig: Rig) -> None:
    pieces = [PASTE, *(f" {i}" for i in range(12))]
    updates = iter(editor_updates(pieces))
    scene = rig.scene

    def append(n: int) -> None:
        for _ in range(n):
            rig.docs.append(scene, next(updates))

    append(3)
    assert rig.docs.compact_log(scene)  # v1: snapshot S1, in S3 (it holds the paste)
    s1 = rig.log.read_head(scene).snapshot_id
    append(2)
    # 1. Dies between writing its snapshot and switching the head: that snapshot is an orphan.
    CrashOn(rig.dynamodb, "PutItem", prefix="head")
    with pytest.raises(Crash):
        rig.docs.compact_log(scene)
    # 2. Dies between switching the head (v2) and the deletes: S1 is never deleted.
    CrashOn(rig.dynamodb, "BatchWriteItem")
    with pytest.raises(Crash):
        rig.docs.compact_log(scene)
    assert rig.log.read_head(scene).version == 2
    # 3. An append whose item put fails after its S3 put (an update nobody acknowledged).
    (lost_paste,) = editor_updates(["never acknowledged" * 30_000])
    CrashOn(rig.dynamodb, "PutItem", prefix="log#")
    with pytest.raises(Crash):
        rig.docs.append(scene, lost_paste)
    orphans = {
        "items": rig.sort_keys("snap#") - {f"snap#{rig.log.read_head(scene).snapshot_id}"},
        "objects": set(rig.objects()),
    }
    assert f"snap#{s1}" in orphans["items"] and len(orphans["items"]) == 2

    append(1)
    assert rig.docs.compact_log(scene)  # v3, an hour has not passed: only its predecessor goes
    head = rig.log.read_head(scene)
    assert rig.sort_keys("snap#") == orphans["items"] | {f"snap#{head.snapshot_id}"}
    assert len(rig.objects()) == len(orphans["objects"])  # v2's object went, v3's came

    rig.later = ORPHAN_AGE_SECONDS + 60
    append(1)
    assert rig.docs.compact_log(scene)  # v4 sweeps what is an hour old
    head = rig.log.read_head(scene)
    assert rig.sort_keys("snap#") == {f"snap#{head.snapshot_id}"}
    assert rig.objects() == {f"scenes/{scene}/snap/{head.snapshot_id}"}
    rig.flush_scene()
    assert text_of(rig.docs.load(scene).state) == "".join(pieces[:7])


def test_the_sweep_keeps_live_items_and_objects_however_old(rig: Rig) -> None:
    paste, words = editor_updates([PASTE, " fade out"])
    rig.docs.append(rig.scene, paste)
    assert rig.docs.compact_log(rig.scene)
    rig.docs.append(rig.scene, words)
    (spilled,) = editor_updates(["a long paste " * 30_000])
    spilled_id = rig.docs.append(rig.scene, spilled).entry_id  # a live log entry in S3

    def stored() -> tuple[set[str], set[str]]:
        return rig.sort_keys("log#") | rig.sort_keys("snap#"), rig.objects()

    before = stored()
    rig.later = 10 * ORPHAN_AGE_SECONDS  # a quiet scene: everything is old
    head = rig.log.read_head(rig.scene)
    assert head.snapshot_id is not None
    assert rig.log.sweep(rig.scene, keep=head.snapshot_id) == 0
    assert stored() == before
    assert f"scenes/{rig.scene}/log/{spilled_id}" in before[1]
