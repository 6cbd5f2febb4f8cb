"""The Management API through the real boto3 client: POST, GET, DELETE, their modeled
errors (GoneException, PayloadTooLargeException, ForbiddenException), and $disconnect on
either side's close."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from emulator import Emulator
from emulator.config import MESSAGE_LIMIT
from tests.emulator.support import management_client, open_ws, recv_json, wait_for_record, whoami


def connection_id(ws: ClientConnection) -> str:
    return str(whoami(ws)["event"]["requestContext"]["connectionId"])


def assert_gone(management: Any, cid: str) -> None:
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=cid, Data=b"{}")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=cid)
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId=cid)


def test_post_delivers_a_text_frame(emulator: Emulator, management: Any) -> None:
    with open_ws(emulator.ws_url) as ws:
        management.post_to_connection(ConnectionId=connection_id(ws), Data=b'{"type": "pong"}')
        frame = ws.recv(timeout=5)
        assert isinstance(frame, str)
        assert frame == '{"type": "pong"}'


def test_post_without_stage_in_the_path(emulator: Emulator) -> None:
    root = management_client(f"http://127.0.0.1:{emulator.port}")
    with open_ws(emulator.ws_url) as ws:
        root.post_to_connection(ConnectionId=connection_id(ws), Data=b'"hello"')
        assert recv_json(ws) == "hello"


def test_wrong_stage_is_forbidden(emulator: Emulator) -> None:
    other = management_client(f"http://127.0.0.1:{emulator.port}/prod")
    with open_ws(emulator.ws_url) as ws, pytest.raises(other.exceptions.ForbiddenException):
        other.post_to_connection(ConnectionId=connection_id(ws), Data=b"{}")


def test_get_connection(emulator: Emulator, management: Any) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with open_ws(emulator.ws_url, user_agent_header="emu-test/2") as ws:
        info = management.get_connection(ConnectionId=connection_id(ws))
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "emu-test/2"}
    assert before <= info["ConnectedAt"] <= info["LastActiveAt"] <= dt.datetime.now(dt.UTC)


def test_post_over_128kb_is_payload_too_large(emulator: Emulator, management: Any) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        with pytest.raises(management.exceptions.PayloadTooLargeException):
            management.post_to_connection(ConnectionId=cid, Data=b"x" * (MESSAGE_LIMIT + 1))
        management.post_to_connection(ConnectionId=cid, Data=b"y" * MESSAGE_LIMIT)
        assert ws.recv(timeout=5) == "y" * MESSAGE_LIMIT


def test_unknown_connection_is_gone(management: Any) -> None:
    assert_gone(management, "AAAAAAAAAAAAAAA=")


def test_client_close_runs_disconnect_and_then_posts_are_gone(
    emulator: Emulator, management: Any, record_dir: Path
) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        ws.close(code=4000, reason="bye")
    ctx = wait_for_record(record_dir, f"disconnect-{cid}")["requestContext"]
    assert ctx["eventType"] == "DISCONNECT"
    assert ctx["routeKey"] == "$disconnect"
    assert (ctx["disconnectStatusCode"], ctx["disconnectReason"]) == (4000, "bye")
    assert_gone(management, cid)


def test_delete_closes_the_connection_and_runs_disconnect(
    emulator: Emulator, management: Any, record_dir: Path
) -> None:
    with open_ws(emulator.ws_url) as ws:
        cid = connection_id(ws)
        management.delete_connection(ConnectionId=cid)
        # Gone at once, before the closing handshake is over.
        with pytest.raises(management.exceptions.GoneException):
            management.post_to_connection(ConnectionId=cid, Data=b"{}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    ctx = wait_for_record(record_dir, f"disconnect-{cid}")["requestContext"]
    assert (ctx["disconnectStatusCode"], ctx["disconnectReason"]) == (1000, "Connection Closed Normally")
    assert_gone(management, cid)
