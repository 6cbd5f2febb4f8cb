"""Invariant 2 (DESIGN §4): no member misses an update. A member is registered before its
sync loads state, and an update is durable before the member list for fan-out is read, so
whichever way a join and an update interleave, the joiner gets the update: in its sync
reply, in the broadcast, or both. Driven with pause points, against real Redis and moto;
the Management API is replaced by an in-memory recorder (what was posted to whom)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict

import pytest
from pycrdt import Doc, Text

from collab import protocol, runtime, session
from collab.caller import Caller
from collab.settings import Settings
from tests.support.pause import PausePoints


class Recorder:
    """Stands in for the Management API: keeps every message per connection."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict]] = defaultdict(list)
        self.lock = threading.Lock()

    def send(self, connection_id: str, text: str) -> bool:
        with self.lock:
            self.sent[connection_id].append(json.loads(text))
        return True

    def send_all(self, connection_ids: list[str], text: str) -> list[str]:
        for connection_id in connection_ids:
            self.send(connection_id, text)
        return []

    def close(self, connection_id: str) -> None:
        return None


@pytest.fixture
def rig(
    redis_url_and_mode: tuple[str, bool], aws_tables: dict[str, str]
) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    url, cluster = redis_url_and_mode
    env = {**aws_tables, "REDIS_URL": url, "REDIS_CLUSTER": "true" if cluster else "false"}
    pause = PausePoints()
    rt = runtime.build(Settings.from_env(env), pause=pause)
    recorder = Recorder()
    rt.outbox_factory = lambda endpoint: recorder  # type: ignore[assignment,return-value]
    return rt, recorder, pause


def caller(scene: str, connection: str, user: str) -> Caller:
    return Caller(connection, scene, user, user.title(), "editor", 4_000_000_000, "http://local")


def sync_frame() -> str:
    return json.dumps({"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(b"\x00"))})


def update_frame(update: bytes) -> str:
    return json.dumps({"action": "update", "data": protocol.encode_base64(protocol.update_message(update))})


def text_seen_by(messages: list[dict]) -> str:
    doc = Doc()
    for message in messages:
        if message["type"] in ("sync", "update"):
            decoded = protocol.decode_sync_message(protocol.decode_base64(message["data"]))
            if decoded.kind != protocol.SYNC_STEP1:
                doc.apply_update(decoded.payload)
    return str(doc.get("t", type=Text))


def an_update(text: str) -> bytes:
    doc = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


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
