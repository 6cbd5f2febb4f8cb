"""The SAM events of events/ (one per route of routes.json, and the authorizer's), invoked
in-process on the real handlers against moto's DynamoDB, a real Redis and a recording
Management API: the same files `sam local invoke -e events/<route>.json` uses.

The events carry an HS256 token signed with EVENTS_SECRET (events/README.md), valid until
2100, and the authorizer context that token yields.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

from infra.needs import MANAGE_CONNECTIONS, allowed
from infra.specs import load_routes, load_tables

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
EVENTS_SECRET = "sam-local-events-hs256-secret-not-for-production"
# Route key -> event file (the route keys that start with $ lose it).
ROUTE_EVENTS = {route: f"{route.lstrip('$')}.json" for route in load_routes().routes}
PEER = "Pb7qR2sXoAMCK1w="


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS_DIR / name).read_text()))


@dataclass
class FakeContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:collab-dev-test"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


class RecordingManagementApi(ThreadingHTTPServer):
    """POST/DELETE @connections, recorded: (connection id, JSON message) per post."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ManagementHandler)
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/dev"

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        return [message for target, message in self.posts if target == connection_id]


class _ManagementHandler(BaseHTTPRequestHandler):
    server: RecordingManagementApi

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append((self._connection_id(), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def do_DELETE(self) -> None:
        self.server.deleted.append(self._connection_id())
        self.send_response(204)
        self.end_headers()

    def _connection_id(self) -> str:
        return unquote(self.path.rsplit("/@connections/", 1)[1])

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def management() -> Iterator[RecordingManagementApi]:
    server = RecordingManagementApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Handlers:
    """The entry points of routes.json, and every AWS call each one made (as its IAM action
    and, for DynamoDB, the tables.json table), to hold against infra/needs.py."""

    def __init__(self, functions: dict[str, Any], tables: dict[str, str]) -> None:
        self.functions = functions
        self.calls: set[tuple[str, str, str | None]] = set()
        self._current = ""
        self._tables = tables  # physical name -> tables.json name

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        self._current = function
        try:
            return self.functions[function](copy.deepcopy(event), FakeContext(f"collab-dev-{function}"))
        finally:
            self._current = ""

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """botocore's before-parameter-build hook (S3): sees each call's own parameters."""
        self.record_call(model.service_model.service_name, model.name, params)

    def record_call(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if not self._current:
            return  # the test's own reads
        if service == "dynamodb":
            names = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
            names += [
                one["TableName"]
                for item in params.get("TransactItems", [])
                for one in item.values()
                if "TableName" in one
            ]
            for name in names:
                self.calls.add((self._current, f"dynamodb:{operation}", self._tables[name]))
            return
        if service == "apigatewaymanagementapi":
            action = MANAGE_CONNECTIONS
        elif service == "s3":
            action = S3_ACTIONS.get(operation, f"s3:{operation}")
        else:
            action = f"{service}:{operation}"
        self.calls.add((self._current, action, None))

    def assert_within_grants(self) -> None:
        beyond = {(f, action, table) for f, action, table in self.calls if (action, table) not in allowed(f)}
        assert not beyond, f"calls the stack grants no permission for: {sorted(beyond, key=str)}"


# S3 operations whose IAM action has another name.
S3_ACTIONS = {
    "DeleteObjects": "s3:DeleteObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
}


@pytest.fixture
def handlers(
    aws_tables: dict[str, str],
    redis_standalone: str,
    management: RecordingManagementApi,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Handlers]:
    """The entry points, configured as the stack configures them (hs256, a standalone
    Redis instead of the cluster), with fresh per-environment state and clients."""
    env = {
        **aws_tables,
        "REDIS_URL": redis_standalone,
        "REDIS_CLUSTER": "false",
        "MANAGEMENT_ENDPOINT": management.endpoint,
        "AUTH_MODE": "hs256",
        "JWT_SECRET": EVENTS_SECRET,
        "POWERTOOLS_SERVICE_NAME": "collab",
        "POWERTOOLS_METRICS_NAMESPACE": "Collab",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import redis

    from collab import runtime
    from entry import authorizer, connect, disconnect, messages

    redis.Redis.from_url(redis_standalone).flushall()
    authorizer._dependencies.cache_clear()
    monkeypatch.setattr(runtime, "_runtime", None)
    for user in ("user-alice", "user-bob"):
        boto3.client("dynamodb").put_item(
            TableName=aws_tables["ACCESS_TABLE"],
            Item={"sceneId": {"S": "demo-scene"}, "userId": {"S": user}, "role": {"S": "editor"}},
        )
    # The clients the handlers build from here on: botocore's (S3) come from this session,
    # which records (collab.aws_clients: one botocore session per process); the JSON
    # clients (DynamoDB, EventBridge, SSM, Secrets Manager) record each call as it starts.
    from collab import aws_clients, aws_json

    monkeypatch.setattr(aws_clients, "_session", None)
    session = aws_clients.session()
    physical = {aws_tables[spec.env]: name for name, spec in load_tables().items()}
    recorder = Handlers(
        {
            "authorizer": authorizer.lambda_handler,
            "connect": connect.lambda_handler,
            "disconnect": disconnect.lambda_handler,
            "messages": messages.lambda_handler,
        },
        physical,
    )
    session.register("before-parameter-build", recorder.record)
    call = aws_json.JsonClient.call

    def recorded(client: aws_json.JsonClient, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        recorder.record_call(client.service.signing_name, operation, params)
        return call(client, operation, params)

    monkeypatch.setattr(aws_json.JsonClient, "call", recorded)
    yield recorder
    runtime._runtime = None
    authorizer._dependencies.cache_clear()


def as_peer(event: dict[str, Any]) -> dict[str, Any]:
    """The same event from a second connection of another user in the scene."""
    peer = copy.deepcopy(event)
    peer["requestContext"]["connectionId"] = PEER
    peer["requestContext"]["authorizer"].update(principalId="user-bob", userId="user-bob", userName="Bob")
    return peer


def members(aws_tables: dict[str, str]) -> set[str]:
    items = boto3.client("dynamodb").query(
        TableName=aws_tables["CONNECTIONS_TABLE"],
        KeyConditionExpression="sceneId = :s",
        ExpressionAttributeValues={":s": {"S": "demo-scene"}},
        ConsistentRead=True,
    )["Items"]
    return {item["connectionId"]["S"] for item in items}


def log_entries(aws_tables: dict[str, str]) -> int:
    return int(
        boto3.client("dynamodb").query(
            TableName=aws_tables["DOCUMENTS_TABLE"],
            KeyConditionExpression="sceneId = :s AND begins_with(sk, :log)",
            ExpressionAttributeValues={":s": {"S": "demo-scene"}, ":log": {"S": "log#"}},
            ConsistentRead=True,
            Select="COUNT",
        )["Count"]
    )


def test_there_is_an_event_for_every_route_and_the_authorizer() -> None:
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted(
        {*ROUTE_EVENTS.values(), "authorizer.json", "chunk-last.json"}
    )
    for route, name in ROUTE_EVENTS.items():
        event = load(name)
        assert event["requestContext"]["routeKey"] == route, name
        if not route.startswith("$"):
            assert json.loads(event["body"])["action"] == route, name
    assert load("authorizer.json")["methodArn"].endswith("/dev/$connect")


def test_the_authorizer_admits_the_event_with_the_context_the_other_events_carry(
    handlers: Handlers,
) -> None:
    policy = handlers.invoke("authorizer", load("authorizer.json"))
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    carried = load("sync.json")["requestContext"]["authorizer"]
    for key, value in policy["context"].items():
        assert str(carried[key]) == str(value), key
    assert carried["principalId"] == policy["principalId"]
    handlers.assert_within_grants()


def test_connect_answers_the_subprotocol(handlers: Handlers) -> None:
    response = handlers.invoke("connect", load("connect.json"))
    assert response["statusCode"] == 200
    assert response["headers"]["Sec-WebSocket-Protocol"] == "collab.v1"
    handlers.assert_within_grants()


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_every_message_route_and_disconnect(
    handlers: Handlers, aws_tables: dict[str, str], management: RecordingManagementApi
) -> None:
    alice = load("sync.json")["requestContext"]["connectionId"]
    handlers.invoke("messages", as_peer(load("sync.json")))
    assert handlers.invoke("messages", load("sync.json")) == {"statusCode": 200}
    assert [m["type"] for m in management.to(alice)][:2] == ["connected", "sync"]
    assert members(aws_tables) == {alice, PEER}

    handlers.invoke("messages", load("update.json"))
    assert log_entries(aws_tables) == 1
    assert management.to(PEER)[-1]["type"] == "update"

    handlers.invoke("messages", load("awareness.json"))
    assert management.to(PEER)[-1]["type"] == "awareness"

    handlers.invoke("messages", load("ping.json"))
    assert management.to(alice)[-1]["type"] == "pong"

    before = len(management.to(PEER))
    handlers.invoke("messages", load("chunk.json"))
    assert len(management.to(PEER)) == before, "half a message is held back"
    handlers.invoke("messages", load("chunk-last.json"))
    # The two halves are a second edit (a paste): stored, then broadcast.
    assert log_entries(aws_tables) == 2
    assert management.to(PEER)[-1]["type"] == "update"

    handlers.invoke("messages", load("default.json"))
    assert management.to(alice)[-1]["type"] == "error"
    assert management.to(alice)[-1]["code"] == "bad_request"

    assert handlers.invoke("disconnect", load("disconnect.json")) == {"statusCode": 200}
    assert members(aws_tables) == {PEER}
    left = [m for m in management.to(PEER) if m["type"] == "participant-left"]
    assert left and left[-1]["participant"]["connectionId"] == alice
    handlers.assert_within_grants()
    made = {(function, action) for function, action, _ in handlers.calls}
    assert {("messages", "dynamodb:PutItem"), ("disconnect", "dynamodb:DeleteItem")} <= made


def test_the_update_event_carries_a_decodable_yjs_update() -> None:
    from pycrdt import Doc, Text

    body = json.loads(load("update.json")["body"])
    message = base64.b64decode(body["data"], validate=True)
    assert message[:2] == b"\x00\x02"
    doc: Doc = Doc()
    text = doc.get("content", type=Text)
    doc.apply_update(message[3:])  # type, kind, then a one-byte length (the update is short)
    assert str(text).startswith("INT. KITCHEN")
