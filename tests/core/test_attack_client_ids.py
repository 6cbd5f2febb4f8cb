"""Attacks on the client-id binding (review M8, issue 9 items 5 and 6), through
session.handle_message on moto, with real Redis and without a cache. Each test states the
behaviour docs/design.md §4 promises; each failed on the first build of the binding
(viewers bound ids from awareness, an offline doc with over 64 ids was refused whole)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pycrdt import Doc, Text

from collab import protocol, runtime, session
from collab.awareness import MAX_IDS_PER_CONNECTION, AwarenessEntry, encode_update
from collab.client_ids import CLIENT_PREFIX
from tests.support.pause import PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    typed,
    update_frame,
)

# One Redis shape, as before (the bindings are DynamoDB items), and no cache at all, where
# presence, through which ids are claimed, lives in DynamoDB too.
pytestmark = pytest.mark.parametrize("shape", ["standalone", "none"], indirect=True)


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


def awareness_frame(entries: list[tuple[int, int]]) -> str:
    update = encode_update([AwarenessEntry(c, clock, json.dumps({"user": "x"})) for c, clock in entries])
    return json.dumps(
        {"action": "awareness", "data": protocol.encode_base64(protocol.awareness_message(update))}
    )


def bindings(rt: runtime.Runtime, scene: str) -> list[dict[str, Any]]:
    db = rt.documents._log._db  # the runtime's own DynamoDB client
    table = rt.documents._log._table
    items: list[dict[str, Any]] = db.query(
        TableName=table,
        KeyConditionExpression="sceneId = :s AND begins_with(sk, :p)",
        ExpressionAttributeValues={":s": {"S": scene}, ":p": {"S": CLIENT_PREFIX}},
        ConsistentRead=True,
    )["Items"]
    return items


def test_a_viewer_cannot_write_unbounded_permanent_client_id_bindings(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, _, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "vic", "viewer")
    viewer = caller(scene, "vic=", "vic", role="viewer")
    session.handle_message(rt, viewer, sync_frame())
    for message in range(10):  # 8 fresh ids a message, each message a few ms of work
        ids = [10_000 + message * 8 + i for i in range(8)]
        session.handle_message(rt, viewer, awareness_frame([(c, 1) for c in ids]))
    # A viewer never writes to the scene; at most the ids presence lets a connection own.
    assert len(bindings(rt, scene)) <= MAX_IDS_PER_CONNECTION


def test_offline_edits_of_many_sessions_get_in_eventually(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "ann", "editor")
    ann = caller(scene, "ann=", "ann")
    session.handle_message(rt, ann, sync_frame())
    # One offline doc (y-indexeddb keeps it across page loads; each load is a new Yjs
    # client id): 70 sessions' worth of edits, all Ann's, answered to the server's
    # SyncStep1 after she comes back online.
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    for session_number in range(70):
        page: Doc = Doc(client_id=50_000 + session_number)
        page.apply_update(doc.get_update())
        page.get("t", type=Text).insert(len(str(text)), f"<{session_number}>")
        doc.apply_update(page.get_update(doc.get_state()))
    offline = doc.get_update()
    for _attempt in range(5):  # the client resends at every resync (60 s)
        session.handle_message(rt, ann, update_frame(offline))
    late = caller(scene, "late=", "ann")
    session.handle_message(rt, late, sync_frame())
    assert text_seen_by(recorder.sent["late="]) == str(text)


def test_an_editor_whose_edits_are_dropped_is_told(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "vic", "viewer")
    rt.access.grant(scene, "bob", "editor")
    vic, bob = caller(scene, "vic=", "vic", role="viewer"), caller(scene, "bob=", "bob")
    for who in (vic, bob):
        session.handle_message(rt, who, sync_frame())
    # Months ago a viewer's tab announced presence under 31337, and the tab is long closed.
    session.handle_message(rt, vic, awareness_frame([(31337, 1)]))
    # Today Bob's page draws 31337 (uint32 ids: among n bound ids a load collides with
    # probability n / 2**32, so a busy scene sees it), and Bob types for an hour.
    session.handle_message(rt, bob, update_frame(typed("an hour of Bob's work", 31337)))
    stored = caller(scene, "check=", "bob")
    session.handle_message(rt, stored, sync_frame())
    told = [m for m in recorder.sent["bob="] if m["type"] == "error"]
    assert text_seen_by(recorder.sent["check="]) == "an hour of Bob's work" or told


def test_a_viewer_cannot_take_an_id_that_already_wrote_to_the_scene(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "ann", "editor")
    rt.access.grant(scene, "mal", "viewer")
    # Ann's tab typed before this release (no binding was written then) and is still open.
    ann_doc: Doc = Doc(client_id=4242)
    ann_text = ann_doc.get("t", type=Text)
    ann_text.insert(0, "Act one. ")
    rt.documents.append(scene, ann_doc.get_update())
    ann, mal = caller(scene, "ann=", "ann"), caller(scene, "mal=", "mal", role="viewer")
    session.handle_message(rt, mal, sync_frame())  # the SyncStep2 names client 4242
    session.handle_message(rt, mal, awareness_frame([(4242, 1)]))
    session.handle_message(rt, ann, sync_frame())
    before = ann_doc.get_state()
    ann_text.insert(len(ann_text), "Act two.")
    session.handle_message(rt, ann, update_frame(ann_doc.get_update(before)))
    late = caller(scene, "late=", "ann")
    session.handle_message(rt, late, sync_frame())
    assert text_seen_by(recorder.sent["late="]) == "Act one. Act two."
