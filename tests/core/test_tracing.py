"""Tracing without the X-Ray SDK (collab.tracing): what a sampled invocation sends to the
X-Ray daemon, received by a real UDP socket standing in for the daemon Lambda runs, with
Powertools' Tracer and real boto3 calls against moto; and that the handlers' import
brings no X-Ray SDK in, on Lambda or off it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Tracer
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from collab import aws_clients, tracing
from collab.tracing import XRayProvider, daemon_address

ROOT = Path(__file__).resolve().parents[2]
TRACE_ROOT = "1-67891233-abcdef012345678912345678"
FUNCTION_SEGMENT = "53995c3f42cd8ad8"  # the segment Lambda's active tracing made for this invocation


class Daemon:
    """A UDP socket where the X-Ray daemon would listen."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(30)  # only bounds a broken run: documents are sent synchronously
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def receive(self) -> dict[str, Any]:
        datagram = self.socket.recv(65536)
        header, _, body = datagram.partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        return dict(json.loads(body))

    def receive_until(self, name: str) -> list[dict[str, Any]]:
        documents = [self.receive()]
        while documents[-1]["name"] != name:
            documents.append(self.receive())
        return documents


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    daemon = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", daemon.address)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={FUNCTION_SEGMENT};Sampled=1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    yield daemon
    daemon.socket.close()


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[XRayProvider]:
    # botocore is patched per process: put it back for the tests that follow, and
    # Powertools' Tracer keeps its configuration on the class.
    monkeypatch.setattr(BaseClient, "_make_api_call", BaseClient._make_api_call)
    monkeypatch.setattr(tracing, "_aws_provider", None)
    provider = XRayProvider()
    provider.patch_all()  # what the Tracer does on Lambda with tracing on
    yield provider
    Tracer._reset_config()


def sampled_marker(provider: XRayProvider) -> None:
    with provider.in_subsegment("## marker"):
        pass


@pytest.fixture(params=["botocore", "aws_json"])
def dynamodb(request: pytest.FixtureRequest) -> Any:
    """Both clients the handlers use: botocore's (S3 is one) and the lean JSON one."""
    return boto3.client("dynamodb") if request.param == "botocore" else aws_clients.json_client("dynamodb")


def test_a_sampled_invocation_sends_its_subsegments_under_lambdas_segment(
    aws_tables: dict[str, str], daemon: Daemon, provider: XRayProvider, dynamodb: Any
) -> None:
    tracer = Tracer(service="collab-test", provider=provider, disabled=False, auto_patch=False)
    table = aws_tables["CONNECTIONS_TABLE"]

    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        with tracer.provider.in_subsegment("## fanout") as fanout:
            fanout.put_annotation("room size", "small")
            dynamodb.put_item(TableName=table, Item={"sceneId": {"S": "s"}, "connectionId": {"S": "c"}})
        return {"statusCode": 200}

    assert handler({}, None) == {"statusCode": 200}
    documents = {d["name"]: d for d in daemon.receive_until("## handler")}
    call, fanout, outer = documents["DynamoDB"], documents["## fanout"], documents["## handler"]
    assert outer["parent_id"] == FUNCTION_SEGMENT
    assert fanout["parent_id"] == outer["id"] and call["parent_id"] == fanout["id"]
    for document in (call, fanout, outer):
        assert document["type"] == "subsegment" and document["trace_id"] == TRACE_ROOT
        assert len(document["id"]) == 16 and int(document["id"], 16) >= 0
        assert document["start_time"] <= document["end_time"]
    # ColdStart is True in a process's first invocation only (Powertools keeps it per process).
    assert outer["annotations"] == {"ColdStart": outer["annotations"]["ColdStart"], "Service": "collab-test"}
    assert fanout["annotations"] == {"room_size": "small"}  # X-Ray keys: letters, digits, _
    assert call["namespace"] == "aws"
    assert call["aws"]["operation"] == "PutItem" and call["aws"]["table_name"] == table
    assert call["aws"]["request_id"] and call["http"] == {"response": {"status": 200}}
    assert not {"error", "fault", "throttle"} & set(call)


def test_a_failure_is_recorded_and_still_raised(
    aws_tables: dict[str, str], daemon: Daemon, provider: XRayProvider, dynamodb: Any
) -> None:
    table = aws_tables["CONNECTIONS_TABLE"]
    with pytest.raises(ClientError), provider.in_subsegment("## write"):
        dynamodb.put_item(
            TableName=table,
            Item={"sceneId": {"S": "s"}, "connectionId": {"S": "c"}},
            ConditionExpression="attribute_exists(sceneId)",
        )
    call, write = daemon.receive_until("## write")
    assert call["error"] is True and "fault" not in call  # a refused condition is the caller's, a 4xx
    assert call["http"] == {"response": {"status": 400}}
    assert call["cause"]["exceptions"][0]["type"] == "ConditionalCheckFailedException"
    assert write["fault"] is True  # it raised
    assert write["cause"]["exceptions"][0]["type"] == "ConditionalCheckFailedException"


def test_nothing_is_sent_when_lambda_did_not_sample_or_tracing_is_off(
    aws_tables: dict[str, str], daemon: Daemon, provider: XRayProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = boto3.client("dynamodb")
    for setting, value in (
        ("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={FUNCTION_SEGMENT};Sampled=0"),
        ("_X_AMZN_TRACE_ID", ""),  # outside Lambda: the emulator, tests
        ("POWERTOOLS_TRACE_DISABLED", "true"),
    ):
        with monkeypatch.context() as env:
            env.setenv(setting, value)
            with provider.in_subsegment("## quiet") as quiet:
                quiet.put_annotation("k", "v")
                dynamodb.describe_table(TableName=aws_tables["CONNECTIONS_TABLE"])
    sampled_marker(provider)
    assert daemon.receive()["name"] == "## marker"  # the first and only datagram


def test_a_subsegment_left_open_by_an_earlier_trace_is_not_a_parent(
    daemon: Daemon, provider: XRayProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm environment's next invocation has a new trace: its subsegments hang under
    its own function segment even if an earlier block is still on the context."""
    with provider.in_subsegment("## first"):
        monkeypatch.setenv(
            "_X_AMZN_TRACE_ID", "Root=1-00000002-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=1"
        )
        with provider.in_subsegment("## second"):
            pass
    second, first = daemon.receive(), daemon.receive()
    assert (second["trace_id"], second["parent_id"]) == (
        "1-00000002-aaaaaaaaaaaaaaaaaaaaaaaa",
        "1111111111111111",
    )
    assert first["parent_id"] == FUNCTION_SEGMENT


def test_a_lost_daemon_never_fails_the_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={FUNCTION_SEGMENT};Sampled=1")
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "203.0.113.1:2000 not-an-address:x")
    with XRayProvider().in_subsegment("## work") as work:
        work.put_metadata("big", "x" * 100_000)  # over a datagram: sent without its metadata


def test_the_daemon_address_forms_lambda_uses() -> None:
    assert daemon_address("169.254.79.129:2000") == ("169.254.79.129", 2000)
    assert daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001") == ("127.0.0.2", 2001)
    assert daemon_address("") == ("127.0.0.1", 2000)


@pytest.mark.parametrize("entry", ["messages", "disconnect"])
@pytest.mark.parametrize("where", ["lambda", "local"])
def test_the_entry_points_import_no_xray_sdk(entry: str, where: str) -> None:
    """The cold start: on Lambda with tracing on (Powertools instruments there) and off it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions")}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    if where == "lambda":
        env.update(LAMBDA_TASK_ROOT="/var/task", AWS_LAMBDA_FUNCTION_NAME="collab-messages")
    code = f"import sys, entry.{entry}; print(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk')))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "aws_xray_sdk.core" not in done.stdout, done.stdout
