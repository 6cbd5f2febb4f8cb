"""Invariant 2 (docs/design.md §4): no member misses an update. A member is registered before its
sync loads state, and an update is durable before the member list for fan-out is read, so
whichever way a join and an update interleave, the joiner gets the update: in its sync
reply, in the broadcast, or both. Driven with pause points, on moto and each stage shape
(real Redis standalone and cluster, and no cache); the Management API is replaced by an
in-memory recorder (what was posted to whom)."""

from __future__ import annotations

import threading
import uuid

import pytest

from collab import runtime, session
from tests.support.pause import PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    an_update,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    update_frame,
)


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


# Each pause sits between the two steps whose order the invariant depends on: had the
# member list been read before the append, or state loaded before the join, the joiner
# would miss the update in that interleaving.
@pytest.mark.parametrize("pause_at", ["append:start", "load:log-read"])
def test_a_peer_joining_while_another_types_misses_nothing(
    rig: tuple[runtime.Runtime, Recorder, PausePoints], pause_at: str
) -> None:
    rt, recorder, pause = rig
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    writer, joiner = caller(scene, "writer=", "ann"), caller(scene, "joiner=", "joe")
    for access in (writer, joiner):
        rt.access.grant(scene, access.user_id, "editor")
    session.handle_message(rt, writer, sync_frame())
    pause.arm(pause_at)
    if pause_at == "append:start":
        # The update is validated but not stored yet; the joiner syncs meanwhile.
        first = threading.Thread(
            target=session.handle_message, args=(rt, writer, update_frame(an_update("INT. ROOM")))
        )
        second = lambda: session.handle_message(rt, joiner, sync_frame())  # noqa: E731
    else:
        # The joiner is registered and has read the log; the update lands before it reads the rest.
        first = threading.Thread(target=session.handle_message, args=(rt, joiner, sync_frame()))
        second = lambda: session.handle_message(rt, writer, update_frame(an_update("INT. ROOM")))  # noqa: E731
    first.start()
    pause.wait_reached(pause_at)
    second()
    pause.release(pause_at)
    first.join(20)
    assert text_seen_by(recorder.sent[joiner.connection_id]) == "INT. ROOM"
    # A member may get a broadcast before its own sync reply: the client applies both.
    assert "connected" in [m["type"] for m in recorder.sent[joiner.connection_id]]
