"""The periodic resync (Documents.answer_sync) on each stage shape (real Redis standalone
and cluster, and no cache at all) and moto: a client that lacks nothing is answered from the stored summaries, without reading the
snapshot, and every answer is the one the full load gives (what the client lacks, the
delete set included, and the state vector of what is durable), whatever happened to the
cache: warm, flushed, stale after a failover, down, written without a summary, or racing
a compaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from pycrdt import Doc, Text, get_state, get_update, merge_updates

from collab import cache as cache_module
from collab import session
from collab.documents import Documents, SyncAnswer
from collab.hot_state import HotState
from devstack import services
from tests.core.storage_rig import Calls, Rig, editor_updates, text_of
from tests.support.rig import Shape, build_rig, caller, sync_frame, update_frame

PASTE = "P" * 400_000  # over the item limit: the snapshot that holds it lives in S3


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> Rig:
    # No URL (the no-cache shape): collab.cache.connect gives the disabled cache.
    return Rig(shape.redis_url, shape.cluster, aws_tables, cache_tail_limit=20, log_tail_limit=30)


@pytest.fixture
def no_cache(rig: Rig) -> Iterator[Documents]:
    """The same store, as an environment whose cache is down sees it."""
    dead = cache_module.connect(f"redis://127.0.0.1:{services.free_port()}/0", False)
    yield Documents(rig.log, HotState(dead), cache_tail_limit=20, log_tail_limit=30)
    dead.close()


def full_answer(rig: Rig, state_vector: bytes) -> tuple[str, bytes]:
    """What the client would end with, and the server's state vector, from a full load."""
    state = rig.docs.load(rig.scene).state
    return text_of(state), get_state(state)


def seen(client: bytes, answer: SyncAnswer) -> str:
    return text_of(merge_updates(client, answer.missing))


def compacted_scene(rig: Rig, pieces: list[str]) -> tuple[Doc, bytes]:
    """A scene typed by one editor and compacted into a DynamoDB snapshot (and the cache);
    the editor's doc and what it holds."""
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for piece in pieces:
        text += piece
    for update in updates:
        rig.docs.append(rig.scene, update)
    assert rig.docs.compact_log(rig.scene)
    return doc, doc.get_update()


def test_an_up_to_date_client_is_answered_without_reading_the_snapshot(rig: Rig) -> None:
    _, client = compacted_scene(rig, [PASTE, " INT. KITCHEN"])
    assert rig.objects()  # the snapshot is in S3
    s3_gets = Calls(rig.s3, "GetObject")
    answer = rig.docs.answer_sync(rig.scene, get_state(client))
    assert not answer.loaded
    assert s3_gets.count == 0
    assert answer.state_vector == get_state(client)
    assert get_update(answer.missing, get_state(client)) == answer.missing  # nothing it has
    assert seen(client, answer) == PASTE + " INT. KITCHEN"
    assert (seen(client, answer), answer.state_vector) == full_answer(rig, get_state(client))


def test_a_client_that_missed_a_deletion_gets_it_though_its_vector_is_current(
    rig: Rig, no_cache: Documents
) -> None:
    doc, _ = compacted_scene(rig, ["INT. KITCHEN ", "- NIGHT"])
    client = doc.get_update()  # this client then misses the broadcast of a deletion
    before = doc.get_state()
    del doc.get("t", type=Text)[0:5]
    deletion = doc.get_update(before)
    assert get_state(client) == get_state(doc.get_update())
    rig.docs.append(rig.scene, deletion)
    for documents in (rig.docs, no_cache):
        answer = documents.answer_sync(rig.scene, get_state(client))
        assert not answer.loaded
        assert seen(client, answer) == "KITCHEN - NIGHT"
    assert rig.docs.compact_log(rig.scene)  # now the deletion is only in the snapshot
    for documents in (rig.docs, no_cache):
        answer = documents.answer_sync(rig.scene, get_state(client))
        assert not answer.loaded
        assert seen(client, answer) == "KITCHEN - NIGHT"


def test_a_client_that_lacks_recent_updates_gets_exactly_those_without_a_load(rig: Rig) -> None:
    doc, client = compacted_scene(rig, ["FADE IN: "])
    text = doc.get("t", type=Text)
    for word in ["INT. ", "ROOM ", "- DAY"]:
        before = doc.get_state()
        text += word
        rig.docs.append(rig.scene, doc.get_update(before))
    answer = rig.docs.answer_sync(rig.scene, get_state(client))
    assert not answer.loaded
    assert seen(client, answer) == "FADE IN: INT. ROOM - DAY"
    assert answer.state_vector == get_state(doc.get_update())
    assert (seen(client, answer), answer.state_vector) == full_answer(rig, get_state(client))


def test_a_client_that_lacks_part_of_the_snapshot_gets_the_whole_state(rig: Rig) -> None:
    compacted_scene(rig, ["FADE IN: ", "INT. ROOM"])
    answer = rig.docs.answer_sync(rig.scene, b"\x00")
    assert answer.loaded
    assert seen(b"\x00\x00", answer) == "FADE IN: INT. ROOM"


# Each damage is done to the cache's keys; without a cache, every sync is the "down" case.
@pytest.mark.needs_cache("the subject is what was done to the cache's keys")
@pytest.mark.parametrize("damage", ["flushed", "down", "stale replica", "no summary"])
def test_every_cache_state_gives_the_full_loads_answer(rig: Rig, no_cache: Documents, damage: str) -> None:
    updates = editor_updates([f"{i}," for i in range(60)])
    for update in updates[:25]:
        rig.docs.append(rig.scene, update)
    rig.docs.answer_sync(rig.scene, b"\x00")  # a full load: the cache gets a summary
    stale = {key: rig.redis.dump(key) for key in rig.redis.scan_iter(match=f"collab:{{{rig.scene}}}:*")}
    for update in updates[25:]:
        rig.docs.append(rig.scene, update)
    assert rig.docs.compact_log(rig.scene)
    for update in editor_updates(["x"] * 3):
        rig.docs.append(rig.scene, update)  # another author, after the compaction
    documents = rig.docs
    if damage == "flushed":
        rig.flush_scene()
    elif damage == "down":
        documents = no_cache
    elif damage == "stale replica":
        rig.flush_scene()
        for key, value in stale.items():
            rig.redis.restore(key, 0, value, replace=True)
    else:  # written by code that keeps no summary: its commit retires the old one
        cached = rig.hot.read(rig.scene)
        assert cached.summary is not None
        assert rig.hot.commit(rig.scene, cached, cached.snapshot or b"\x00\x00", cached.base or 0)
        assert rig.hot.read(rig.scene).summary is None
    whole = merge_updates(*updates)  # a client with the first author's edits only
    answer = documents.answer_sync(rig.scene, get_state(whole))
    assert not answer.loaded  # DynamoDB's summary stands in when the cache's cannot
    assert sorted(seen(whole, answer)) == sorted("".join(f"{i}," for i in range(60)) + "xxx")
    rig.flush_scene()
    assert (seen(whole, answer), answer.state_vector) == full_answer(rig, get_state(whole))


@pytest.mark.parametrize("pause_at", ["answer:cache-read", "load:log-read"])
def test_a_compaction_during_the_answer_loses_nothing(rig: Rig, no_cache: Documents, pause_at: str) -> None:
    doc, _ = compacted_scene(rig, ["FADE IN: "])
    text = doc.get("t", type=Text)
    before = doc.get_state()
    text += "INT. ROOM"
    rig.docs.append(rig.scene, doc.get_update(before))
    client = doc.get_update()  # up to date, then misses the broadcast of a deletion
    before = doc.get_state()
    del text[0:9]
    no_cache.append(rig.scene, doc.get_update(before))  # durable, missed by the cache
    rig.pause.arm(pause_at)
    answers: list[SyncAnswer] = []
    reader = threading.Thread(
        target=lambda: answers.append(rig.docs.answer_sync(rig.scene, get_state(client)))
    )
    reader.start()
    rig.pause.wait_reached(pause_at)  # it has read the cache (and the log)
    # The log is folded into a new snapshot and deleted, the cache moves on: the reader
    # must see that the cache it read is behind the head and use the new snapshot's
    # summary (the deletion is in no cache it read, and maybe in no log it read).
    assert rig.docs.compact_log(rig.scene)
    rig.pause.release(pause_at)
    reader.join(30)
    (answer,) = answers
    assert not answer.loaded
    assert seen(client, answer) == "INT. ROOM"
    assert answer.state_vector == get_state(doc.get_update())


# Without a cache, such a snapshot is read by every sync until a log compaction replaces it.
@pytest.mark.needs_cache("the subject is the summary a load leaves in the cache")
def test_a_legacy_snapshot_without_a_summary_is_loaded_once_then_summarised(rig: Rig) -> None:
    _, client = compacted_scene(rig, ["FADE IN: ", "INT. ROOM"])
    head = rig.log.read_head(rig.scene)
    # What a snapshot written before summaries looks like: no `sv`, no `rest`.
    rig._reader.update_item(
        TableName=rig.table,
        Key={"sceneId": {"S": rig.scene}, "sk": {"S": f"snap#{head.snapshot_id}"}},
        UpdateExpression="REMOVE sv, #r",
        ExpressionAttributeNames={"#r": "rest"},
    )
    rig.flush_scene()
    first = rig.docs.answer_sync(rig.scene, get_state(client))
    assert first.loaded  # nothing to stand in for the snapshot: read it
    assert seen(client, first) == "FADE IN: INT. ROOM"
    second = rig.docs.answer_sync(rig.scene, get_state(client))
    assert not second.loaded  # the load left its summary in the cache
    assert seen(client, second) == "FADE IN: INT. ROOM"


def test_updates_the_cache_missed_are_still_served_and_counted(rig: Rig, no_cache: Documents) -> None:
    doc, client = compacted_scene(rig, ["FADE IN: "])
    text = doc.get("t", type=Text)
    before = doc.get_state()
    text += "INT. ROOM"
    no_cache.append(rig.scene, doc.get_update(before))  # durable, never cached
    answer = rig.docs.answer_sync(rig.scene, get_state(client))
    assert not answer.loaded
    assert seen(client, answer) == "FADE IN: INT. ROOM"
    assert answer.state_vector == get_state(doc.get_update())


# Without a cache, the log keeps the paste (and syncs merge it) until the log is compacted.
@pytest.mark.needs_cache("the subject is the fold into the cached snapshot")
def test_a_paste_is_folded_into_the_cache_once_not_by_every_sync(
    shape: Shape, aws_tables: dict[str, str]
) -> None:
    rt, recorder, _ = build_rig(shape, aws_tables)
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    writer = caller(scene, "writer=", "ann")
    rt.access.grant(scene, "ann", "editor")
    session.handle_message(rt, writer, sync_frame())
    (paste,) = editor_updates(["Q" * 100_000])  # 100 KB: under the log's compaction weight
    session.handle_message(rt, writer, update_frame(paste))
    vector = get_state(paste)
    first = rt.documents.answer_sync(scene, vector)
    assert first.compactable >= len(paste)  # in the tail, in no stored snapshot
    session.handle_message(rt, writer, sync_frame(vector))  # answers, then has it compacted
    later = rt.documents.answer_sync(scene, vector)
    assert not later.loaded
    assert later.compactable == 0  # now in the cached snapshot, marked: nothing to merge
    replies = [m for m in recorder.sent["writer="] if m["type"] == "sync"]
    assert len(replies) == 4  # two syncs, each SyncStep2 + SyncStep1
