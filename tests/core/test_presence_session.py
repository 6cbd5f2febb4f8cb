"""Presence through the handlers (invariants 6, 7 and 9): caps answer `too_large` naming
the action, a reconnect of the same user takes its cursor back at once though the old
connection's $disconnect was lost, and with the cache unavailable an awareness update is
dropped quietly while edits still travel. Moto and each stage shape (real Redis standalone
and cluster, and no cache, where presence lives in DynamoDB), recording Management API."""

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
    update_frame,
)


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


def cursors_seen(messages: list[dict[str, Any]]) -> dict[int, str]:
    seen: dict[int, str] = {}
    for message in messages:
        if message["type"] == "awareness":
            raw = protocol.decode_awareness_message(protocol.decode_base64(message["data"]))
            seen.update({e.client_id: e.state for e in awareness_codec.decode_update(raw)})
    return seen


def test_presence_caps_answer_too_large_for_the_action(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "vic", "viewer")
    vic = caller(scene, "vic=", "vic", role="viewer")  # viewers count too
    session.handle_message(rt, vic, sync_frame())
    session.handle_message(rt, vic, awareness_frame(*[(100 + i, 1, {"i": i}) for i in range(9)]))
    session.handle_message(rt, vic, awareness_frame(*[(200 + i, 1, {"i": i}) for i in range(5)]))
    errors = [m for m in recorder.sent["vic="] if m["type"] == "error"]
    assert [(e["code"], e["action"]) for e in errors] == [("too_large", "awareness")] * 2
    assert rt.awareness.current(scene) == []  # refused whole


def test_a_reconnect_of_the_same_user_takes_its_cursor_back_at_once(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user in ("zoe", "bob"):
        rt.access.grant(scene, user, "editor")
    old, bob = caller(scene, "zoe-old=", "zoe"), caller(scene, "bob=", "bob")
    for who in (old, bob):
        session.handle_message(rt, who, sync_frame())
    session.handle_message(rt, old, awareness_frame((7, 1, {"cursor": 1})))
    # Zoe's socket dropped and its $disconnect never came; her page reconnects with the
    # same Yjs client id and a higher clock.
    new = caller(scene, "zoe-new=", "zoe")
    session.handle_message(rt, new, sync_frame())
    session.handle_message(rt, new, awareness_frame((7, 2, {"cursor": 42})))
    assert cursors_seen(recorder.sent["bob="])[7] == json.dumps({"cursor": 42})


# Without a cache there is none to go down: presence lives in DynamoDB, and edits travel
# without a cache in every other no-cache variant.
@pytest.mark.needs_cache("the subject is the cache going down under presence")
def test_with_the_cache_down_awareness_is_dropped_and_edits_still_travel(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user in ("ann", "bob"):
        rt.access.grant(scene, user, "editor")
    ann, bob = caller(scene, "ann=", "ann"), caller(scene, "bob=", "bob")
    for who in (ann, bob):
        session.handle_message(rt, who, sync_frame())
    assert rt.cache is not None
    rt.cache._skip_until = float("inf")  # the breaker is open: every cache call fails at once
    session.handle_message(rt, ann, awareness_frame((9, 1, {"cursor": 3})))
    session.handle_message(rt, ann, update_frame(an_update("INT. KITCHEN")))
    assert not [m for m in recorder.sent["ann="] if m["type"] == "error"]
    assert 9 not in cursors_seen(recorder.sent["bob="])
    assert text_seen_by(recorder.sent["bob="]) == "INT. KITCHEN"
    late = caller(scene, "late=", "ann")
    session.handle_message(rt, late, sync_frame())
    assert text_seen_by(recorder.sent["late="]) == "INT. KITCHEN"  # served from DynamoDB
