"""$connect answers the handshake, echoing collab.v1 (never the token) when offered, after
recording the connection and re-reading the role (collab.admission), against moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from authtest import LambdaContext

import entry.connect
from collab.access import SceneAccess

Event = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def tables(aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in aws_tables.items():
        monkeypatch.setenv(name, value)
    SceneAccess(aws_tables["ACCESS_TABLE"]).grant("scene-1", "user-ada", "editor")
    entry.connect._dependencies.cache_clear()
    yield aws_tables
    entry.connect._dependencies.cache_clear()


def rows(tables: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=tables["CONNECTIONS_TABLE"])[
        "Items"
    ]
    return items


def connect_route_event(connect_event: Event, **kwargs: Any) -> dict[str, Any]:
    """The $connect route's event: the authorizer event's request plus its context."""
    event = connect_event(**kwargs)
    for key in ("type", "methodArn"):
        event.pop(key)
    event["requestContext"]["authorizer"] = {
        "principalId": "user-ada",
        "userId": "user-ada",
        "userName": "Ada",
        "sceneId": "scene-1",
        "role": "editor",
        "exp": 4_000_000_000,
    }
    event["requestContext"].setdefault("connectionId", "ada-laptop=")
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


def test_records_the_connection_with_its_role_and_token_expiry(
    connect_event: Event, tables: dict[str, str]
) -> None:
    event = connect_route_event(connect_event, query={"sceneId": "scene-1", "token": "eyJh.eyJz.c2ln"})
    assert entry.connect.lambda_handler(event, LambdaContext()) == {"statusCode": 200}
    [row] = rows(tables)
    assert row["userId"] == {"S": "user-ada"} and row["role"] == {"S": "editor"}
    assert row["tokenExpiresAt"] == {"N": "4000000000"}
    assert "admittedAt" in row and "joinedAt" not in row  # recorded, not yet a member


@pytest.mark.parametrize("now", [None, "viewer"])
def test_a_role_changed_since_the_authorizer_read_it_is_refused(
    connect_event: Event, tables: dict[str, str], now: str | None
) -> None:
    access = SceneAccess(tables["ACCESS_TABLE"])
    if now is None:
        access.revoke("scene-1", "user-ada")
    else:
        access.grant("scene-1", "user-ada", now)
    event = connect_route_event(connect_event, query={"sceneId": "scene-1", "token": "eyJh.eyJz.c2ln"})
    assert entry.connect.lambda_handler(event, LambdaContext()) == {"statusCode": 403}
    assert rows(tables) == []


def test_a_token_without_access_records_nothing(connect_event: Event, tables: dict[str, str]) -> None:
    event = connect_route_event(connect_event, query={"sceneId": "scene-1", "token": "eyJh.eyJz.c2ln"})
    event["requestContext"]["authorizer"]["role"] = ""
    assert entry.connect.lambda_handler(event, LambdaContext()) == {"statusCode": 200}
    assert rows(tables) == []
