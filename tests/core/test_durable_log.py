"""The durable log under lost responses and racing compactions, on real Redis (both
shapes) and moto's server, with faults injected on the real boto3 clients (storage_rig):

- a head switch or an append that DynamoDB applied but whose response was lost is retried
  by botocore and recognised as ours: the scene stays loadable, nothing the head names is
  deleted, the append is acknowledged once (review F2, M1);
- a head naming a missing snapshot that does not move is served from what survives (F2);
- spilled (S3) log entries are fetched only when the cache lacks them, and a compaction
  deleting one under a reader does not fail the read (F9);
- the log is compacted by its inline bytes, not only by its count (review, cost section).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from collab import durable_log
from collab.blobs import INLINE_LIMIT
from collab.cache import scene_key
from tests.core.storage_rig import Calls, LoseResponse, Rig, editor_updates, text_of

PASTE = "P" * 400_000  # over the 350 KB item limit: lives in S3


@pytest.fixture
def rig(redis_url_and_mode: tuple[str, bool], aws_tables: dict[str, str]) -> Iterator[Rig]:
    url, cluster = redis_url_and_mode
    rig = Rig(url, cluster, aws_tables, cache_tail_limit=20, log_tail_limit=30)
    yield rig
    rig.flush_scene()


def rival_of(rig: Rig, aws_tables: dict[str, str], redis_url_and_mode: tuple[str, bool]) -> Rig:
    """Another Lambda working on the same scene, with clients of its own."""
    return Rig(*redis_url_and_mode, aws_tables, scene=rig.scene)


# ----------------------------------------------------------------------- lost responses (F2, M1)


def test_a_head_switch_whose_response_was_lost_is_recognised_as_ours(rig: Rig) -> None:
    pieces = [PASTE, *(f" w{i}" for i in range(25))]
    for update in editor_updates(pieces):
        rig.docs.append(rig.scene, update)
    lost = LoseResponse(rig.dynamodb, "head")
    assert rig.docs.compact_log(rig.scene) is True  # not "lost the race"
    assert lost.lost == 1
    head = rig.log.read_head(rig.scene)
    assert head.version == 1 and head.snapshot_id is not None
    # What the head names is there, item and S3 object; what it merged is gone.
    assert rig.sort_keys("snap#") == {f"snap#{head.snapshot_id}"}
    assert rig.objects() == {f"scenes/{rig.scene}/snap/{head.snapshot_id}"}
    assert rig.sort_keys("log#") == set()
    rig.flush_scene()  # every later load goes to DynamoDB
    assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)


def test_a_head_switch_retried_after_a_rival_moved_on_deletes_nothing_the_head_names(
    rig: Rig, aws_tables: dict[str, str], redis_url_and_mode: tuple[str, bool]
) -> None:
    pieces = [f"r{i} " for i in range(25)]
    for update in editor_updates(pieces):
        rig.docs.append(rig.scene, update)
    rival = rival_of(rig, aws_tables, redis_url_and_mode)

    def rival_compacts() -> None:  # between our applied head switch and botocore's retry
        rig.redis.delete(scene_key(rig.scene, "lease"))  # as if our lease ran out
        assert rival.docs.compact_log(rig.scene) is True

    lost = LoseResponse(rig.dynamodb, "head", meanwhile=rival_compacts)
    assert rig.docs.compact_log(rig.scene) is False  # the head is the rival's now
    assert lost.lost == 1
    head = rig.log.read_head(rig.scene)
    assert head.version == 2
    assert rig.sort_keys("snap#") == {f"snap#{head.snapshot_id}"}
    assert rig.log.read_snapshot(rig.scene, head) is not None
    rig.flush_scene()
    assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)


def test_an_append_whose_response_was_lost_is_acknowledged_once(rig: Rig) -> None:
    small, big = editor_updates(["INT. KITCHEN ", PASTE])
    for update in (small, big):  # inline, and with its S3 put before the item put
        lost = LoseResponse(rig.dynamodb, "log#")
        appended = rig.docs.append(rig.scene, update)
        assert lost.lost == 1
        assert appended.entry_id in rig.hot.read(rig.scene).tail  # went on to the cache
    assert len(rig.sort_keys("log#")) == 2
    rig.flush_scene()
    assert text_of(rig.docs.load(rig.scene).state) == "INT. KITCHEN " + PASTE


def test_an_entry_id_collision_is_an_error_not_an_acknowledgement(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The only way the item can be someone else's: force two appends onto one id.
    monkeypatch.setattr(durable_log, "new_entry_id", lambda: "00000000000000000001-000000000000")
    first, second = editor_updates(["one ", "two"])
    entry_id = rig.log.append(rig.scene, first)
    assert rig.log.append(rig.scene, first) == entry_id  # the same bytes: our own retry
    with pytest.raises(ClientError) as refused:
        rig.log.append(rig.scene, second)
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert text_of(rig.docs.load(rig.scene).state) == "one "


# ----------------------------------------------------------------------- a head naming a missing snapshot (F2)


def test_a_head_naming_a_missing_snapshot_still_loads(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    pieces = [f"s{i} " for i in range(40)]
    updates = editor_updates(pieces)
    for update in updates[:30]:
        rig.docs.append(rig.scene, update)
    assert rig.docs.compact_log(rig.scene)
    for update in updates[30:]:
        rig.docs.append(rig.scene, update)
    # What a retried head switch left before the fix: the head names a snapshot its own
    # compactor then deleted; the older snapshot and the log it merged are still there.
    rig.put_head(2, durable_log.new_entry_id())
    rig.flush_scene()
    with caplog.at_level(logging.ERROR, logger="collab.durable_log"):
        assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)
    assert [r.message for r in caplog.records if r.levelno == logging.ERROR] == [
        "the head names a snapshot that is missing; serving the surviving snapshots and the log, "
        "and the next log compaction writes a new head"
    ]
    # The next compaction writes a head that names a real snapshot again.
    assert rig.docs.compact_log(rig.scene)
    head = rig.log.read_head(rig.scene)
    assert head.version == 3 and rig.log.read_snapshot(rig.scene, head) is not None
    rig.flush_scene()
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="collab.durable_log"):
        assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)
    assert not caplog.records


# ----------------------------------------------------------------------- spilled entries (F9)


def test_spilled_entries_are_fetched_only_when_the_cache_lacks_them(rig: Rig) -> None:
    pieces = [PASTE, " and", " more"]
    for update in editor_updates(pieces):
        rig.docs.append(rig.scene, update)
    gets = Calls(rig.s3, "GetObject")
    assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)
    assert gets.count == 0  # the paste is in the Redis tail
    assert rig.docs.compact_cache(rig.scene)
    assert not rig.hot.read(rig.scene).tail
    assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)
    assert gets.count == 0  # merged into the Redis snapshot, which says so
    rig.flush_scene()
    assert text_of(rig.docs.load(rig.scene).state) == "".join(pieces)
    assert gets.count == 1  # only the cache had it: now it is needed


def test_a_compaction_during_a_readers_s3_fetch_does_not_fail_the_read(rig: Rig) -> None:
    pieces = [PASTE, " between ", PASTE.lower(), " after"]
    for update in editor_updates(pieces):
        rig.docs.append(rig.scene, update)
    rig.flush_scene()  # the reader has to fetch the spilled entries from S3
    rig.pause.arm("load:fetch-log")
    results: list[str] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(text_of(rig.docs.load(rig.scene).state))
        except BaseException as error:  # the test asserts there is none
            errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    rig.pause.wait_reached("load:fetch-log")  # it has read the log: four items, two in S3
    assert rig.docs.compact_log(rig.scene)  # deletes those items, then their objects
    assert rig.sort_keys("log#") == set()
    rig.pause.release("load:fetch-log")
    reader.join(60)
    assert not reader.is_alive()
    assert errors == []
    assert results == ["".join(pieces)]


# ----------------------------------------------------------------------- compaction by bytes (cost)


def test_the_log_is_compacted_by_its_bytes_too(rig: Rig) -> None:
    # log_tail_limit is 30: 5 KB updates weigh 20 each (one per entry, one per 256 bytes),
    # so the second passes it, long before thirty updates would.
    *blocks, small = editor_updates(["y" * 5_000, "z" * 5_000, "w" * 5_000, "."])
    due = [rig.docs.append(rig.scene, update).compact_log for update in blocks]
    assert due == [False, True, True]
    assert rig.docs.compact_log(rig.scene)
    assert rig.docs.append(rig.scene, small).compact_log is False  # the merged weight left
    assert durable_log.log_weight(rig.log.read_log(rig.scene)) == 1


def test_a_spilled_paste_weighs_its_bytes_and_is_compacted_at_once(rig: Rig) -> None:
    # A paste past the item limit lives in S3: its item is a pointer, but every sync that
    # does not find it in the cache fetches and merges its bytes, so it weighs them.
    (paste,) = editor_updates([PASTE])
    assert len(paste) > INLINE_LIMIT
    assert rig.docs.append(rig.scene, paste).compact_log is True
    assert durable_log.log_weight(rig.log.read_log(rig.scene)) > 30
