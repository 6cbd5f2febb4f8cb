"""Integrity of what the handlers store (invariants 4 and 9, review F1, M6, M8), through
session.handle_message on moto and each stage shape (real Redis, both kinds, and no
cache): structs forged under another user's Yjs client id are dropped and awareness claims
ids before they are public; a lying state vector is refused before it costs anything; a
scene whose stored state Yjs cannot read is never compacted into a snapshot, and the
operator is told."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from collab import compaction, runtime, session
from collab.durable_log import LOG_PREFIX
from tests.support.pause import PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    awareness_frame,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    typed,
    update_frame,
)

F1_UPDATE = bytes([0x01, 0x01, 0x2A, 0x00, 0x07, 0x01, 0x05]) + b"scene" + bytes([0x09, 0x00])


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


def test_structs_forged_under_another_users_client_id_are_dropped(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user in ("ann", "mal", "bob"):
        rt.access.grant(scene, user, "editor")
    ann, mal, bob = (caller(scene, f"{u}=", u) for u in ("ann", "mal", "bob"))
    for who in (ann, mal, bob):
        session.handle_message(rt, who, sync_frame())
    session.handle_message(rt, ann, update_frame(typed("abc", 4242)))
    # Mallory reuses Ann's client id and clocks with other content: merges would then
    # depend on their order, and replicas diverge for good.
    session.handle_message(rt, mal, update_frame(typed("xyz", 4242)))
    late = caller(scene, "late=", "bob")
    session.handle_message(rt, late, sync_frame())
    assert text_seen_by(recorder.sent["late="]) == "abc"
    assert text_seen_by(recorder.sent["bob="]) == "abc"  # the forgery was never broadcast
    assert not [m for m in recorder.sent["mal="] if m["type"] == "error"]


def test_awareness_claims_a_client_id_before_a_peer_can_learn_it(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user in ("ann", "mal"):
        rt.access.grant(scene, user, "editor")
    ann, mal = caller(scene, "ann=", "ann"), caller(scene, "mal=", "mal")
    for who in (ann, mal):
        session.handle_message(rt, who, sync_frame())
    session.handle_message(rt, ann, awareness_frame((777, 1, {"user": "Ann"})))  # on open
    # Mallory saw the id in the broadcast and writes with it before Ann types.
    session.handle_message(rt, mal, update_frame(typed("forged", 777)))
    session.handle_message(rt, mal, awareness_frame((777, 5, {"user": "not Ann"})))
    session.handle_message(rt, ann, update_frame(typed("mine", 777)))
    late = caller(scene, "late=", "ann")
    session.handle_message(rt, late, sync_frame())
    assert text_seen_by(recorder.sent["late="]) == "mine"
    assert [(e.client_id, e.state) for e in rt.awareness.current(scene)] == [(777, '{"user": "Ann"}')]


def test_a_state_vector_declaring_a_billion_entries_is_refused_at_once(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "ann", "editor")
    ann = caller(scene, "ann=", "ann")
    started = time.process_time()
    session.handle_message(rt, ann, sync_frame(bytes([0x80, 0x80, 0x80, 0x80, 0x04])))  # 2**30
    assert time.process_time() - started < 0.5  # yrs alone took a second and 1 GB (M6)
    [reply] = recorder.sent["ann="]
    assert (reply["code"], reply["action"]) == ("bad_request", "sync")
    assert rt.rooms.connections(scene) == []  # refused before it became a member


def test_an_unreadable_stored_state_is_never_compacted_and_is_reported(
    rig: tuple[runtime.Runtime, Recorder, PausePoints], caplog: pytest.LogCaptureFixture
) -> None:
    rt, _, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    good = typed("the real screenplay", 1)
    rt.documents.append(scene, good)
    # Stored before validation knew better (or by a bug): straight into the log.
    rt.documents._log.append(scene, F1_UPDATE)
    with caplog.at_level(logging.ERROR):
        compaction.compact(rt, scene, log=True)
    assert "collabctl scene check" in caplog.text
    assert rt.documents._log.read_head(scene).version == 0  # no snapshot holds it
    assert (
        len([e for e in rt.documents._log.read_log(scene) if e.item["sk"]["S"].startswith(LOG_PREFIX)]) == 2
    )
