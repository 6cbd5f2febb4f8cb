"""$connect: the REQUEST authorizer, the $connect handler's answer, the event shapes and the
410 a connection gets while its $connect runs."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from emulator import Emulator, run_in_thread
from tests.emulator.support import app_config, open_ws, recv_json, send_json, wait_for_record, whoami

CONNECTION_ID = re.compile(r"^[A-Za-z0-9]{15}=$")


def rejected_status(url: str, query: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as rejected:
        open_ws(url, query, **kwargs)
    return rejected.value.response.status_code


def connect_records(record_dir: Path) -> set[str]:
    return {p.name for p in record_dir.glob("connect-*.json")}


def test_connect_event_is_shaped_like_api_gateways(emulator: Emulator, record_dir: Path) -> None:
    with open_ws(emulator.ws_url, "token=allow&sceneId=s1&x=1&x=2", user_agent_header="emu-test/1") as ws:
        connection_id = whoami(ws)["event"]["requestContext"]["connectionId"]
        recorded = wait_for_record(record_dir, f"connect-{connection_id}")

    event = recorded["event"]
    ctx = event["requestContext"]
    assert CONNECTION_ID.match(connection_id)
    assert ctx["routeKey"] == "$connect"
    assert ctx["eventType"] == "CONNECT"
    assert ctx["messageDirection"] == "IN"
    assert ctx["stage"] == "local"
    assert ctx["apiId"] == emulator.config.api_id
    assert ctx["domainName"] == f"127.0.0.1:{emulator.port}"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "emu-test/1"
    assert CONNECTION_ID.match(ctx["requestId"])
    assert ctx["connectedAt"] <= ctx["requestTimeEpoch"]
    assert re.match(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$", ctx["requestTime"])
    assert event["queryStringParameters"] == {"token": "allow", "sceneId": "s1", "x": "2"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["headers"]["Host"] == f"127.0.0.1:{emulator.port}"
    assert event["multiValueHeaders"]["Host"] == [f"127.0.0.1:{emulator.port}"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Forwarded-Port"] == str(emulator.port)
    assert event["isBase64Encoded"] is False
    assert recorded["function_name"] == "connect"
    assert 0 < recorded["remaining_ms"] <= 29_000


def test_authorizer_unauthorized_fails_the_upgrade_with_401(emulator: Emulator, record_dir: Path) -> None:
    before = connect_records(record_dir)
    assert rejected_status(emulator.ws_url, "token=nonsense") == 401
    assert rejected_status(emulator.ws_url, "") == 401
    assert connect_records(record_dir) == before  # $connect never ran


def test_authorizer_deny_fails_the_upgrade_with_403(emulator: Emulator, record_dir: Path) -> None:
    before = connect_records(record_dir)
    assert rejected_status(emulator.ws_url, "token=deny") == 403
    # An Allow for some other resource is no Allow for this $connect.
    assert rejected_status(emulator.ws_url, "token=elsewhere") == 403
    assert connect_records(record_dir) == before


def test_authorizer_context_reaches_every_event(emulator: Emulator, record_dir: Path) -> None:
    expected = {"userId": "u-1", "level": "3", "admin": "true", "principalId": "user-1"}
    with open_ws(emulator.ws_url) as ws:
        message_event = whoami(ws)["event"]
    connection_id = message_event["requestContext"]["connectionId"]
    connect_event = wait_for_record(record_dir, f"connect-{connection_id}")["event"]
    disconnect_event = wait_for_record(record_dir, f"disconnect-{connection_id}")
    for event in (connect_event, message_event, disconnect_event):
        authorizer = event["requestContext"]["authorizer"]
        # API Gateway hands context values over as strings.
        assert {k: authorizer[k] for k in expected} == expected


def test_wildcard_allow_admits(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url, "token=wildcard") as ws:
        assert whoami(ws)["authorizer"]["principalId"] == "user-1"


def test_connect_status_rejects_the_upgrade(emulator: Emulator, record_dir: Path) -> None:
    assert rejected_status(emulator.ws_url, "token=allow&reject=418") == 418
    assert rejected_status(emulator.ws_url, "token=allow&reject=403") == 403


def test_connect_handler_error_is_a_502_rejection(emulator: Emulator) -> None:
    assert rejected_status(emulator.ws_url, "token=allow&fail=1") == 502


def test_subprotocol_returned_by_connect_is_in_the_handshake(emulator: Emulator) -> None:
    offered = [Subprotocol("collab.v1"), Subprotocol("a-jwt")]
    with open_ws(emulator.ws_url, "token=allow", subprotocols=offered) as ws:
        assert ws.subprotocol == "collab.v1"
        assert whoami(ws)["event"]["requestContext"]["eventType"] == "MESSAGE"


def test_post_while_connect_runs_is_gone(emulator: Emulator, management: Any, record_dir: Path) -> None:
    with ThreadPoolExecutor(1) as pool:
        # $connect pauses until this test creates pause1.go.
        opening = pool.submit(open_ws, emulator.ws_url, "token=allow&pause=pause1")
        connection_id = wait_for_record(record_dir, "pause1.started")["connectionId"]
        with pytest.raises(management.exceptions.GoneException):
            management.post_to_connection(ConnectionId=connection_id, Data=b"too early")
        with pytest.raises(management.exceptions.GoneException):
            management.get_connection(ConnectionId=connection_id)
        (record_dir / "pause1.go").touch()
        with opening.result(timeout=15) as ws:
            management.post_to_connection(ConnectionId=connection_id, Data=b'{"now": "fine"}')
            assert recv_json(ws) == {"now": "fine"}
            send_json(ws, {"action": "echo", "n": 1})
            assert recv_json(ws)["echo"] == {"action": "echo", "n": 1}


def test_a_refused_upgrade_logs_one_line_and_a_handler_error_its_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # An emulator of its own, started under capfd, so its workers write into the capture.
    with run_in_thread(app_config(tmp_path, max_environments=1)) as emu:
        assert rejected_status(emu.ws_url, "token=nonsense") == 401
        ws = open_ws(emu.ws_url)
        send_json(ws, {"action": "boom"})
        assert recv_json(ws)["message"] == "Internal server error"
        ws.close()
    err = capfd.readouterr().err
    refusal, boom = err.split("[ERROR] RuntimeError: boom")
    assert "[ERROR] Exception: Unauthorized" in refusal
    assert "Traceback" not in refusal  # routine: the authorizer logs its reason itself
    assert "Traceback (most recent call last)" in boom  # a real error keeps its traceback
