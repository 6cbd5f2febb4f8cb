"""The local stack's HTTP API and its change-event path, on both shapes (with Redis, and
without a cache): HTTP_URL reaches the real http function, the handlers are told the bus,
and what is put on the bus reaches a test through a rule to an SQS queue in moto."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from devstack.event_bus import EVENT_BUS_NAME
from devstack.services import local_client
from devstack.stack import LocalStack


@pytest.fixture(scope="module")
def stack(each_shape_stack: LocalStack) -> LocalStack:
    return each_shape_stack


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def put_event(stack: LocalStack, detail_type: str, detail: dict[str, Any]) -> None:
    entry = {
        "EventBusName": stack.event_bus_name,
        "Source": "collab.test",
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
    }
    answer = local_client("events", stack.moto_url).put_events(Entries=[entry])
    assert answer["FailedEntryCount"] == 0, answer


def test_http_url_reaches_the_http_function(stack: LocalStack) -> None:
    assert stack.http_url.startswith("http://127.0.0.1:")
    status, headers, body = get(f"{stack.http_url}/scenes/s-http")
    assert headers["apigw-requestid"]
    # The function's own answer (it may refuse: no token), not API Gateway's 404 or 500.
    assert status < 500, body
    assert json.loads(body) != {"message": "Not Found"}
    status, _, body = get(f"{stack.http_url}/no/such/route")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_the_handlers_are_told_the_bus(stack: LocalStack) -> None:
    assert stack.event_bus_name == "collab-local-events"
    assert stack.env[EVENT_BUS_NAME] == stack.event_bus_name
    assert stack.env["AWS_ENDPOINT_URL_EVENTBRIDGE"] == stack.moto_url
    assert stack.env["AWS_ENDPOINT_URL_SQS"] == stack.moto_url


def test_a_rule_to_a_queue_receives_what_is_put_on_the_bus(stack: LocalStack) -> None:
    every = stack.subscribe_events()
    versions = stack.subscribe_events({"detail-type": ["Version Created"]})
    detail = {"sceneId": "s-events", "participants": 2, "bytes": 120}
    put_event(stack, "Scene Changed", detail)
    put_event(stack, "Something Else", {"sceneId": "s-events"})  # no rule matches it
    (event,) = every.receive(count=1)
    assert event["detail-type"] == "Scene Changed"
    assert event["source"] == "collab.test"
    assert event["detail"] == detail
    assert versions.receive(count=1, timeout=1.5) == []
    put_event(stack, "Version Created", {"sceneId": "s-events", "versionId": "v-1"})
    assert [e["detail"]["versionId"] for e in versions.receive(count=1)] == ["v-1"]
    # Each change event once, nothing else.
    assert [e["detail-type"] for e in every.receive(count=5, timeout=1.5)] == ["Version Created"]


def test_a_waiting_receive_holds_up_no_other_call_to_moto(stack: LocalStack) -> None:
    queue = stack.subscribe_events()
    received: list[list[dict[str, Any]]] = []
    waiting = threading.Thread(target=lambda: received.append(queue.receive(count=1, timeout=10)))
    waiting.start()
    try:
        time.sleep(0.5)  # the long poll is under way
        started = time.monotonic()
        local_client("dynamodb", stack.moto_url).list_tables()
        assert time.monotonic() - started < 2.0
        put_event(stack, "Version Restored", {"sceneId": "s-wait"})
    finally:
        waiting.join(15)
    assert [e["detail-type"] for e in received[0]] == ["Version Restored"]
