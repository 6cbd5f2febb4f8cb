"""$connect answers the handshake, echoing collab.v1 (never the token) when offered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authtest import LambdaContext

import entry.connect

Event = Callable[..., dict[str, Any]]


def connect_route_event(connect_event: Event, **kwargs: Any) -> dict[str, Any]:
    """The $connect route's event: the authorizer event's request plus its context."""
    event = connect_event(**kwargs)
    for key in ("type", "methodArn"):
        event.pop(key)
    event["requestContext"]["authorizer"] = {
        "principalId": "user-ada",
        "userId": "user-ada",
        "role": "editor",
    }
    event["isBase64Encoded"] = False
    return event


def test_echoes_collab_v1_when_offered(connect_event: Event) -> None:
    event = connect_route_event(
        connect_event,
        query={"sceneId": "scene-1"},
        headers={"Sec-WebSocket-Protocol": "collab.v1, eyJh.eyJz.c2ln"},
    )
    assert entry.connect.lambda_handler(event, LambdaContext()) == {
        "statusCode": 200,
        "headers": {"Sec-WebSocket-Protocol": "collab.v1"},
    }


def test_echo_finds_a_lower_case_header(connect_event: Event) -> None:
    event = connect_route_event(
        connect_event,
        query={"sceneId": "scene-1"},
        headers={"sec-websocket-protocol": "collab.v1"},
        single_value_only=True,
    )
    assert entry.connect.lambda_handler(event, LambdaContext())["headers"] == {
        "Sec-WebSocket-Protocol": "collab.v1"
    }


def test_no_subprotocol_header_when_none_was_offered(connect_event: Event) -> None:
    event = connect_route_event(connect_event, query={"sceneId": "scene-1", "token": "eyJh.eyJz.c2ln"})
    assert entry.connect.lambda_handler(event, LambdaContext()) == {"statusCode": 200}
