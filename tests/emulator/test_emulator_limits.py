"""API Gateway's limits: binary frames (1003), frame and message sizes (1009), the idle
timeout and the maximum connection duration (1001), each followed by $disconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from emulator import Emulator, run_in_thread
from emulator.config import FRAME_LIMIT, MESSAGE_LIMIT
from tests.emulator.support import app_config, open_ws, recv_json, send_json, wait_for_record, whoami


def body_of_size(size: int) -> str:
    """A `size` action whose JSON text is exactly `size` bytes."""
    empty = json.dumps({"action": "size", "pad": ""})
    return json.dumps({"action": "size", "pad": "x" * (size - len(empty))})


def fragments(text: str, frame_size: int) -> list[str]:
    return [text[i : i + frame_size] for i in range(0, len(text), frame_size)]


def close_code(ws: ClientConnection, timeout: float = 10.0) -> int:
    """Wait for the server to close; the code of its close frame. Nothing may arrive
    before it (an oversized or binary message must never reach a handler)."""
    with pytest.raises(ConnectionClosed) as closed:
        unexpected = ws.recv(timeout=timeout)
        pytest.fail(f"a message arrived instead of the close: {unexpected[:80]!r}")
    assert closed.value.rcvd is not None, "the server dropped the connection without a close frame"
    return closed.value.rcvd.code


def connection_id(ws: ClientConnection) -> str:
    return str(whoami(ws)["event"]["requestContext"]["connectionId"])


def test_binary_frame_closes_with_1003(emulator: Emulator, record_dir: Path) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        ws.send(b"\x00\x01binary")
        assert close_code(ws) == 1003
    assert wait_for_record(record_dir, f"disconnect-{cid}")["requestContext"]["disconnectStatusCode"] == 1003


def test_frame_of_exactly_32kb_passes(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url) as ws:
        ws.send(body_of_size(FRAME_LIMIT))
        assert recv_json(ws) == {"size": FRAME_LIMIT}


def test_frame_over_32kb_closes_with_1009(emulator: Emulator, record_dir: Path) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        ws.send(body_of_size(FRAME_LIMIT + 1))
        assert close_code(ws) == 1009
    disconnect = wait_for_record(record_dir, f"disconnect-{cid}")
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1009


def test_fragmented_message_up_to_128kb_is_delivered(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url) as ws:
        ws.send(fragments(body_of_size(MESSAGE_LIMIT), 30_000))
        assert recv_json(ws) == {"size": MESSAGE_LIMIT}


def test_message_over_128kb_closes_with_1009_even_in_small_frames(
    emulator: Emulator, record_dir: Path
) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        # The server closes as soon as the frames add up to too much: the client may still
        # be sending the last one (as a browser may), and learns the code either way.
        try:
            ws.send(fragments(body_of_size(MESSAGE_LIMIT + 1), 30_000))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009
        else:
            assert close_code(ws) == 1009
    assert wait_for_record(record_dir, f"disconnect-{cid}")["requestContext"]["disconnectStatusCode"] == 1009


@pytest.fixture(scope="module")
def short_lived(record_dir: Path) -> Iterator[Emulator]:
    with run_in_thread(app_config(record_dir, idle_timeout=1.0, max_duration=2.5)) as emu:
        yield emu


def test_idle_timeout_closes_and_disconnects(short_lived: Emulator, record_dir: Path) -> None:
    with open_ws(short_lived.ws_url) as ws:
        last_message = time.monotonic()  # the client's last message is the whoami below
        cid = connection_id(ws)
        assert close_code(ws) == 1001
        idle = time.monotonic() - last_message
    assert 0.95 <= idle < 2.0
    disconnect = wait_for_record(record_dir, f"disconnect-{cid}")
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1001
    assert disconnect["requestContext"]["disconnectReason"] == "Going away"


def test_max_duration_closes_an_active_connection(short_lived: Emulator, record_dir: Path) -> None:
    opened = time.monotonic()
    with open_ws(short_lived.ws_url) as ws:
        cid = connection_id(ws)
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # busy enough that the idle timeout never fires
                send_json(ws, {"action": "size"})
                recv_json(ws, timeout=5)
                time.sleep(0.2)
        lifetime = time.monotonic() - opened
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert 2.4 <= lifetime < 4.0
    assert wait_for_record(record_dir, f"disconnect-{cid}")["requestContext"]["disconnectStatusCode"] == 1001
