"""One frame per keystroke and one answer per resync (docs/presence.md §2, §3), through
the handlers on moto and each stage shape: an `update` carrying `awareness` reaches the
others as one `update` frame with both; a malformed or oversized awareness part refuses
the frame whole, with nothing stored; one a presence cap refuses costs only itself; a
viewer's combined frame changes nothing; a `sync` with `combined: true` is answered by one
`synced` frame holding what the four would."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from collab import awareness as awareness_codec
from collab import protocol, runtime, session
from tests.support.pause import PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    an_update,
    awareness_frame,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
)


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


def combined(update: bytes, *entries: tuple[int, int, Any]) -> str:
    cursor = json.loads(awareness_frame(*entries))["data"]
    data = protocol.encode_base64(protocol.update_message(update))
    return json.dumps({"action": "update", "data": data, "awareness": cursor})


def states(data: str) -> dict[int, str]:
    raw = protocol.decode_awareness_message(protocol.decode_base64(data))
    return {entry.client_id: entry.state for entry in awareness_codec.decode_update(raw)}


def room(rt: runtime.Runtime, *users: tuple[str, str]) -> str:
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user, role in users:
        rt.access.grant(scene, user, role)
        session.handle_message(rt, caller(scene, f"{user}=", user, role=role), sync_frame())
    return scene


def test_an_edit_and_its_cursor_move_reach_the_others_as_one_frame(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ("ann", "editor"), ("bob", "editor"))
    before = len(recorder.sent["bob="])
    session.handle_message(
        rt, caller(scene, "ann=", "ann"), combined(an_update("FADE IN:"), (41, 1, {"cursor": 8}))
    )
    (frame,) = recorder.sent["bob="][before:]
    assert frame["type"] == "update"
    assert text_seen_by([frame]) == "FADE IN:"
    assert states(frame["awareness"]) == {41: '{"cursor": 8}'}
    assert [m for m in recorder.sent["ann="] if m["type"] == "error"] == []
    assert {e.client_id for e in rt.awareness.current(scene)} == {41}


@pytest.mark.parametrize(
    "awareness, code",
    [
        ("not base64!", "bad_request"),
        (protocol.encode_base64(b"\x00\x01\x02"), "bad_request"),  # a sync message, not awareness
        (json.loads(awareness_frame(*[(100 + i, 1, {"i": i}) for i in range(9)]))["data"], "too_large"),
        (
            json.loads(awareness_frame((7, 1, {"name": "x" * 70_000})))["data"],
            "too_large",
        ),  # a state over 64 KB
    ],
)
def test_a_bad_awareness_part_refuses_the_frame_whole(
    rig: tuple[runtime.Runtime, Recorder, PausePoints], awareness: str, code: str
) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ("ann", "editor"), ("bob", "editor"))
    data = protocol.encode_base64(protocol.update_message(an_update("INT. KITCHEN")))
    session.handle_message(
        rt,
        caller(scene, "ann=", "ann"),
        json.dumps({"action": "update", "data": data, "awareness": awareness}),
    )
    (error,) = [m for m in recorder.sent["ann="] if m["type"] == "error"]
    assert (error["code"], error["action"]) == (code, "update")
    assert text_seen_by(recorder.sent["bob="]) == ""
    assert rt.documents.load(scene).state in (b"\x00\x00", b"")  # nothing stored
    assert rt.awareness.current(scene) == []


def test_a_cursor_over_a_presence_cap_costs_only_itself(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ("ann", "editor"), ("bob", "editor"))
    ann = caller(scene, "ann=", "ann")
    five_ids = [(100 + i, 1, {"i": i}) for i in range(5)]  # a connection may hold 4
    session.handle_message(rt, ann, combined(an_update("INT. KITCHEN"), *five_ids))
    (error,) = [m for m in recorder.sent["ann="] if m["type"] == "error"]
    assert (error["code"], error["action"]) == ("too_large", "awareness")
    assert text_seen_by(recorder.sent["bob="]) == "INT. KITCHEN"  # stored and sent without it
    assert "awareness" not in recorder.sent["bob="][-1]
    assert rt.awareness.current(scene) == []


def test_a_viewers_combined_frame_changes_nothing(rig: tuple[runtime.Runtime, Recorder, PausePoints]) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ("vic", "viewer"), ("bob", "editor"))
    session.handle_message(
        rt,
        caller(scene, "vic=", "vic", role="viewer"),
        combined(an_update("a viewer types"), (7, 1, {"c": 1})),
    )
    (error,) = [m for m in recorder.sent["vic="] if m["type"] == "error"]
    assert error["code"] == "forbidden"
    assert text_seen_by(recorder.sent["bob="]) == ""
    assert rt.awareness.current(scene) == []


def test_a_combined_sync_is_answered_by_one_frame_with_every_part(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ("ann", "editor"), ("vic", "viewer"))
    ann = caller(scene, "ann=", "ann")
    session.handle_message(rt, ann, combined(an_update("EXT. ROOF"), (41, 1, {"cursor": 9})))
    for who, role in (("ann", "editor"), ("vic", "viewer")):
        before = len(recorder.sent[f"{who}="])
        frame = json.loads(sync_frame())
        session.handle_message(
            rt, caller(scene, f"{who}=", who, role=role), json.dumps({**frame, "combined": True})
        )
        (synced,) = recorder.sent[f"{who}="][before:]
        assert synced["type"] == "synced"
        assert synced["role"] == role and {p["userId"] for p in synced["participants"]} == {"ann", "vic"}
        assert text_seen_by([{"type": "sync", "data": synced["data"]}]) == "EXT. ROOF"
        assert ("stateVector" in synced) == (role != "viewer")  # as the four: no SyncStep1 to viewers
        assert states(synced["awareness"]) == {41: '{"cursor": 9}'}
        assert set(synced["ages"]) == {"41"} and synced["ages"]["41"] >= 0
    # Anything but `true` keeps the four frames.
    before = len(recorder.sent["ann="])
    session.handle_message(rt, ann, json.dumps({**json.loads(sync_frame()), "combined": "yes"}))
    assert [m["type"] for m in recorder.sent["ann="][before:]] == ["connected", "sync", "sync", "awareness"]
