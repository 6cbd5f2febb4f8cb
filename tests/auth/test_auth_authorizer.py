"""The $connect authorizer on API Gateway REQUEST events: where the token and the scene
come from, roles from the access table (moto), and what reaches later events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from authtest import SECRET, LambdaContext

import entry.authorizer
from collab.access import SceneAccess
from collab.auth.authorizer import Unauthorized, authorize
from collab.auth.config import AuthConfig
from collab.auth.tokens import TokenVerifier
from collab.caller import Caller
from collab.settings import MissingSetting

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/local/$connect"
Event = Callable[..., dict[str, Any]]


class Roles:
    """An in-memory access table."""

    def __init__(self, roles: dict[tuple[str, str], str] | None = None) -> None:
        self.roles = roles or {}

    def get_role(self, scene_id: str, user_id: str) -> Any:
        return self.roles.get((scene_id, user_id))


@pytest.fixture
def verifier(hs256_config: AuthConfig) -> TokenVerifier:
    return TokenVerifier(hs256_config)


def test_token_in_the_query_string(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    event = connect_event({"sceneId": "scene-1", "token": hs256_token()})
    policy = authorize(event, verifier, Roles({("scene-1", "user-ada"): "editor"}))
    assert policy["principalId"] == "user-ada"
    assert policy["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}],
    }
    assert policy["context"] == {
        "userId": "user-ada",
        "userName": "Ada Lovelace",
        "sceneId": "scene-1",
        "role": "editor",
        "exp": policy["context"]["exp"],
    }
    assert isinstance(policy["context"]["exp"], int)
    assert all(isinstance(value, str | int | bool) for value in policy["context"].values())


@pytest.mark.parametrize(
    ("header", "where"),
    [
        ("Sec-WebSocket-Protocol", {}),
        ("sec-websocket-protocol", {"single_value_only": True}),
        ("SEC-WEBSOCKET-PROTOCOL", {"multi_value_only": True}),
    ],
)
def test_token_as_a_subprotocol(
    connect_event: Event,
    hs256_token: Callable[..., str],
    verifier: TokenVerifier,
    header: str,
    where: dict[str, bool],
) -> None:
    event = connect_event({"sceneId": "scene-1"}, {header: f"collab.v1, {hs256_token()}"}, **where)
    policy = authorize(event, verifier, Roles({("scene-1", "user-ada"): "viewer"}))
    assert policy["context"]["role"] == "viewer"


def test_subprotocols_as_separate_multi_value_entries(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    event = connect_event({"sceneId": "scene-1"})
    event["multiValueHeaders"]["Sec-WebSocket-Protocol"] = ["collab.v1", hs256_token()]
    assert authorize(event, verifier, Roles())["principalId"] == "user-ada"


def test_the_query_string_wins_over_the_subprotocol(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    event = connect_event(
        {"sceneId": "scene-1", "token": hs256_token(sub="user-query")},
        {"Sec-WebSocket-Protocol": f"collab.v1, {hs256_token(sub='user-header')}"},
    )
    assert authorize(event, verifier, Roles())["principalId"] == "user-query"


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ({"token": "from-below"}, {}),  # no sceneId
        ({"sceneId": "{scene-1}", "token": "from-below"}, {}),  # not a plain id
        ({"sceneId": "s" * 129, "token": "from-below"}, {}),
        ({"sceneId": "scene-1"}, {}),  # no token anywhere
        ({"sceneId": "scene-1"}, {"Sec-WebSocket-Protocol": "collab.v1"}),
        ({"sceneId": "scene-1"}, {"Sec-WebSocket-Protocol": "graphql-ws, from-below"}),  # not our protocol
        ({"sceneId": "scene-1", "token": "not-a-jwt"}, {}),
    ],
)
def test_refused(
    connect_event: Event,
    hs256_token: Callable[..., str],
    verifier: TokenVerifier,
    query: dict[str, str],
    headers: dict[str, str],
) -> None:
    fill = hs256_token()
    event = connect_event(
        {k: fill if v == "from-below" else v for k, v in query.items()},
        {k: v.replace("from-below", fill) for k, v in headers.items()},
    )
    with pytest.raises(Unauthorized) as raised:
        authorize(event, verifier, Roles({("scene-1", "user-ada"): "owner"}))
    assert str(raised.value) == "Unauthorized"


def test_expired_token_is_refused(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    event = connect_event({"sceneId": "scene-1", "token": hs256_token(iat=1_000, exp=2_000)})
    with pytest.raises(Unauthorized, match="Unauthorized"):
        authorize(event, verifier, Roles({("scene-1", "user-ada"): "owner"}))


def test_a_token_for_one_scene_does_not_open_another(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    token = hs256_token(sceneId="scene-1")
    assert authorize(connect_event({"sceneId": "scene-1", "token": token}), verifier, Roles())
    with pytest.raises(Unauthorized):
        authorize(connect_event({"sceneId": "scene-2", "token": token}), verifier, Roles())


def test_roles_from_the_access_table(
    aws_tables: dict[str, str], connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    access = SceneAccess(aws_tables["ACCESS_TABLE"])
    access.grant("scene-1", "user-ada", "owner")
    access.grant("scene-1", "user-bob", "viewer")
    access.grant("scene-2", "user-ada", "viewer")

    def role(scene: str, user: str) -> str:
        event = connect_event({"sceneId": scene, "token": hs256_token(sub=user)})
        return str(authorize(event, verifier, access)["context"]["role"])

    assert role("scene-1", "user-ada") == "owner"
    assert role("scene-1", "user-bob") == "viewer"
    assert role("scene-2", "user-ada") == "viewer"
    # A valid token without access is admitted with no role: its first message gets
    # `forbidden` (a browser cannot read the status of a refused upgrade).
    assert role("scene-2", "user-bob") == ""
    access.revoke("scene-1", "user-ada")
    assert role("scene-1", "user-ada") == ""


def test_context_is_what_the_message_handlers_read(
    connect_event: Event, hs256_token: Callable[..., str], verifier: TokenVerifier
) -> None:
    event = connect_event({"sceneId": "scene-1", "token": hs256_token()})
    policy = authorize(event, verifier, Roles({("scene-1", "user-ada"): "viewer"}))
    # API Gateway adds principalId and may hand numbers on as strings.
    authorizer = {**policy["context"], "exp": str(policy["context"]["exp"]), "principalId": "user-ada"}
    later = {**event["requestContext"], "routeKey": "sync", "eventType": "MESSAGE", "authorizer": authorizer}
    caller = Caller.from_event({"requestContext": later})
    assert (caller.scene_id, caller.user_id, caller.user_name, caller.role) == (
        "scene-1",
        "user-ada",
        "Ada Lovelace",
        "viewer",
    )
    assert caller.expires_at == policy["context"]["exp"] and not caller.token_expired()


# --- the Lambda entry point ----------------------------------------------------------------


@pytest.fixture
def handler_env(aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SceneAccess]:
    for name, value in {**aws_tables, "AUTH_MODE": "hs256", "JWT_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)
    entry.authorizer._dependencies.cache_clear()
    yield SceneAccess(aws_tables["ACCESS_TABLE"])
    entry.authorizer._dependencies.cache_clear()


def test_handler_admits_and_refuses_without_logging_tokens(
    handler_env: SceneAccess,
    connect_event: Event,
    hs256_token: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    handler_env.grant("scene-1", "user-ada", "editor")
    good = hs256_token(iss=None, aud=None)
    policy = entry.authorizer.lambda_handler(
        connect_event({"sceneId": "scene-1", "token": good}), LambdaContext()
    )
    assert policy["context"]["role"] == "editor"

    bad = good[:-4] + "AAAA"
    with pytest.raises(Exception) as raised:
        entry.authorizer.lambda_handler(
            connect_event({"sceneId": "scene-1"}, {"Sec-WebSocket-Protocol": f"collab.v1, {bad}"}),
            LambdaContext(),
        )
    assert type(raised.value) is Exception
    assert str(raised.value) == "Unauthorized"

    messages = [record.getMessage() for record in caplog.records]
    assert "connection admitted" in messages and "connection refused" in messages
    # Every field of every record (message, extras such as the refusal's reason).
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    for token in (good, bad):
        for part in token.split("."):
            assert part not in logged


def test_handler_names_a_missing_setting(monkeypatch: pytest.MonkeyPatch, connect_event: Event) -> None:
    monkeypatch.delenv("AUTH_MODE", raising=False)
    entry.authorizer._dependencies.cache_clear()
    with pytest.raises(MissingSetting, match="AUTH_MODE"):
        entry.authorizer.lambda_handler(connect_event({"sceneId": "scene-1"}), LambdaContext())
