"""Messages: route selection, API Gateway's error messages, the message event, and
Lambda-like execution (concurrent environments, warm module state)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from emulator import Emulator, run_in_thread
from tests.emulator.support import app_config, open_ws, recv_json, send_json, whoami


def test_route_selection_by_action(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url) as ws:
        send_json(ws, {"action": "echo", "n": 1})
        assert recv_json(ws)["echo"] == {"action": "echo", "n": 1}


@pytest.mark.parametrize("body", ['{"action": "nope"}', '{"action": 5}', '{"other": 1}', "not json", "[1]"])
def test_unrouted_bodies_fall_back_to_default(emulator: Emulator, body: str) -> None:
    with open_ws(emulator.ws_url) as ws:
        ws.send(body)
        assert recv_json(ws) == {"default": body, "routeKey": "$default"}


def test_without_default_route_the_client_gets_forbidden(record_dir: Path) -> None:
    with (
        run_in_thread(app_config(record_dir, "routes_no_default.json")) as emu,
        open_ws(emu.ws_url, "") as ws,
    ):
        send_json(ws, {"action": "nope"})
        answer = recv_json(ws)
        assert answer["message"] == "Forbidden"
        assert set(answer) == {"message", "connectionId", "requestId"}
        send_json(ws, {"action": "echo"})
        assert recv_json(ws)["routeKey"] == "echo"


def test_handler_error_gives_internal_server_error(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url) as ws:
        connection_id = whoami(ws)["event"]["requestContext"]["connectionId"]
        send_json(ws, {"action": "boom"})
        answer = recv_json(ws)
        assert answer["message"] == "Internal server error"
        assert answer["connectionId"] == connection_id
        assert re.match(r"^[A-Za-z0-9]{15}=$", answer["requestId"])
        # The connection survives a failed invocation.
        send_json(ws, {"action": "echo"})
        assert "echo" in recv_json(ws)


def test_message_event_is_shaped_like_api_gateways(emulator: Emulator) -> None:
    with open_ws(emulator.ws_url) as ws:
        event = whoami(ws)["event"]
    ctx = event["requestContext"]
    assert event["body"] == json.dumps({"action": "whoami"})
    assert event["isBase64Encoded"] is False
    assert ctx["routeKey"] == "whoami"
    assert ctx["eventType"] == "MESSAGE"
    assert ctx["messageDirection"] == "IN"
    assert re.match(r"^[A-Za-z0-9]{15}=$", ctx["messageId"])
    assert ctx["messageId"] != ctx["requestId"]
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert "headers" not in event


def test_messages_of_one_connection_run_concurrently(emulator: Emulator, record_dir: Path) -> None:
    with open_ws(emulator.ws_url) as ws:
        # Each handler waits for the other's mark: they can only meet if both run at once.
        send_json(ws, {"action": "rendezvous", "me": "left", "peer": "right"})
        send_json(ws, {"action": "rendezvous", "me": "right", "peer": "left"})
        answers = {a["rendezvous"]: a for a in (recv_json(ws), recv_json(ws))}
    assert answers["left"]["met"] and answers["right"]["met"]
    assert answers["left"]["pid"] != answers["right"]["pid"]  # two execution environments


def test_warm_environment_keeps_module_state(record_dir: Path) -> None:
    # One environment per function, so consecutive messages must reuse it.
    with run_in_thread(app_config(record_dir, max_environments=1)) as emu, open_ws(emu.ws_url) as ws:
        answers = []
        for _ in range(3):
            send_json(ws, {"action": "count"})
            answers.append(recv_json(ws))
    assert [a["count"] for a in answers] == [1, 2, 3]
    assert len({a["pid"] for a in answers}) == 1


def test_one_log_line_per_invocation_and_handler_output_pass_through(
    record_dir: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator")
    with (
        run_in_thread(app_config(record_dir, "routes_no_default.json")) as emu,
        open_ws(emu.ws_url, "") as ws,
    ):
        send_json(ws, {"action": "echo", "mark": "xyzzy"})
        recv_json(ws)
    out, _ = capfd.readouterr()
    assert "fallback handler saw" in out and "xyzzy" in out  # the worker's own stdout
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "emulator"]
    echo = [line for line in lines if line.get("route") == "echo"]
    assert len(echo) == 1
    assert echo[0]["event"] == "invocation"
    assert echo[0]["function"] == "fallback"
    assert echo[0]["status"] == "ok"
    assert echo[0]["cold_start"] is True
    assert {"connectionId", "duration_ms", "environment", "awsRequestId", "gatewayRequestId"} <= set(echo[0])
