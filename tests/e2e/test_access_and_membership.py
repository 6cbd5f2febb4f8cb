"""Authentication, scene access and room membership through the local stack with real
WebSocket clients (issue 3 item 6, second bullet; docs/design.md §2 "Connect", §3 on $disconnect
and 410): invalid tokens fail the upgrade, a token without access is told `forbidden` and
closed, viewers read but cannot write, participants join and leave, expired tokens and
revoked access end connections, and stale rows are ignored or evicted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from collab import protocol
from collab.awareness import decode_update
from collabctl.devtoken import mint_dev_token
from tests.e2e.conftest import Scene
from tests.e2e.wsclient import (
    Opener,
    WsClient,
    awareness_data,
    dynamodb,
    error,
    log_keys,
    of_type,
    participant,
    sync_kind,
    sync_step2_data,
    update_data,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_client(scene: Scene) -> Iterator[Opener]:
    opener = Opener(scene)
    yield opener
    opener.close_all()


def connection_row(scene: Scene, connection_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        dynamodb()
        .get_item(
            TableName=scene.stack.env["CONNECTIONS_TABLE"],
            Key={"sceneId": {"S": scene.scene_id}, "connectionId": {"S": connection_id}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return item


def put_connection_row(scene: Scene, connection_id: str, user_id: str, expires_at: int) -> None:
    """A row as the handlers write it, for a connection whose $disconnect never came."""
    dynamodb().put_item(
        TableName=scene.stack.env["CONNECTIONS_TABLE"],
        Item={
            "sceneId": {"S": scene.scene_id},
            "connectionId": {"S": connection_id},
            "userId": {"S": user_id},
            "userName": {"S": user_id.title()},
            "role": {"S": "editor"},
            "connectedAt": {"N": str(int(time.time() * 1000) - 3_600_000)},
            "expiresAt": {"N": str(expires_at)},
        },
    )


def connection_ids(connected: dict[str, Any]) -> set[str]:
    return {p["connectionId"] for p in connected["participants"]}


def rejected_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as rejected:
        WsClient.open(url, **kwargs).close()
    return rejected.value.response.status_code


# --------------------------------------------------------------------------- the upgrade


def test_invalid_tokens_fail_the_upgrade_with_401(scene: Scene) -> None:
    scene.grant("oscar", "editor")  # the user has access: only the token is wrong
    secret = scene.stack.jwt_secret
    long_ago = int(time.time()) - 3600  # far beyond the verifier's clock-skew leeway
    tokens = {
        "garbage": "not-a-jwt",
        "garbage with dots": "aaa.bbb.ccc",
        "wrong secret": mint_dev_token("w" * 48, "oscar", scene.scene_id, name="Oscar"),
        "expired": mint_dev_token(secret, "oscar", scene.scene_id, name="Oscar", ttl=60, now=long_ago),
        "another scene": mint_dev_token(secret, "oscar", "some-other-scene", name="Oscar"),
    }
    for what, token in tokens.items():
        assert rejected_status(scene.url(token)) == 401, what
    base = f"{scene.stack.ws_url}?sceneId={scene.scene_id}"
    assert rejected_status(base) == 401, "no token at all"
    assert rejected_status(base, subprotocols=["collab.v1", tokens["wrong secret"]]) == 401
    assert rejected_status(base, subprotocols=["collab.v1"]) == 401, "collab.v1 without a token"
    # The same user with a good token gets in.
    with WsClient.open(scene.url(scene.token("oscar"))) as oscar:
        assert oscar.synced()["user"]["userId"] == "oscar"


def test_subprotocol_token_is_admitted_and_collab_v1_selected(scene: Scene, open_client: Opener) -> None:
    token = scene.grant("sam", "editor")
    sam = open_client.url(f"{scene.stack.ws_url}?sceneId={scene.scene_id}", "sam", ["collab.v1", token])
    assert sam.ws.subprotocol == "collab.v1"
    connected = sam.synced()
    assert connected["user"] == {"userId": "sam", "userName": "Sam"}
    assert connected["role"] == "editor"
    sam.ping()


def test_token_without_access_is_told_forbidden_and_closed(scene: Scene, open_client: Opener) -> None:
    alice = open_client("alice")
    alice.synced()
    # Admitted at the upgrade (a browser could not read a 401), refused on the first message.
    mallory = open_client("mallory", role=None)
    mark = mallory.sync()
    answer = mallory.wait_error("forbidden", after=mark)
    assert mallory.wait_closed() == 1000
    eve = open_client("eve", role=None)
    eve.send("ping")
    eve.wait_error("forbidden")
    assert eve.wait_closed() == 1000
    assert not eve.find(of_type("pong"))
    # Neither became a member: nobody was told, nothing was registered.
    assert not mallory.find(of_type("connected"))
    alice.ping()
    assert not alice.find(of_type("participant-joined"))
    assert alice.synced()["participants"] == [
        {"connectionId": alice.connection_id, "userId": "alice", "userName": "Alice"}
    ]
    assert answer["code"] == "forbidden"


def test_viewer_reads_and_presents_but_cannot_change(scene: Scene, open_client: Opener) -> None:
    alice, bob = open_client("alice"), open_client("bob")
    alice.synced()
    bob.synced()
    alice.edit("written by alice")
    bob.wait_text("written by alice")
    mark = bob.mark()
    alice.send("awareness", data=awareness_data(1001, 1, {"user": {"name": "Alice"}}))
    bob.wait_for(of_type("awareness"), after=mark)  # stored before it was broadcast

    # An editor's sync reply holds the server's SyncStep1 (before the awareness states).
    mark = bob.sync()
    bob.wait_for(of_type("awareness"), after=mark)
    assert [m["type"] for m in bob.messages[mark:]][:4] == ["connected", "sync", "sync", "awareness"]
    assert bob.find(sync_kind(protocol.SYNC_STEP1), after=mark)

    vera = open_client("vera", role="viewer")
    mark = vera.sync()
    connected = vera.wait_for(of_type("connected"), after=mark)
    assert connected["role"] == "viewer"
    vera.connection_id = connected["connectionId"]
    # One invocation, in order: connected, SyncStep2, (no SyncStep1 for viewers), awareness.
    vera.wait_for(of_type("awareness"), after=mark)
    reply = vera.messages[mark:]
    assert [m["type"] for m in reply][:3] == ["connected", "sync", "awareness"], reply
    assert not vera.find(sync_kind(protocol.SYNC_STEP1))
    assert vera.current_text() == "written by alice"

    # Presence and ping work.
    alice_mark = alice.mark()
    vera.send("awareness", data=awareness_data(2002, 1, {"user": {"name": "Vera"}}))
    seen = alice.wait_for(of_type("awareness"), after=alice_mark)
    entries = decode_update(protocol.decode_awareness_message(protocol.decode_base64(seen["data"])))
    assert [(e.client_id, json.loads(e.state)) for e in entries] == [(2002, {"user": {"name": "Vera"}})]
    vera.ping()

    # A real change is refused, as an Update or as a SyncStep2; an empty SyncStep2 is not.
    logged = log_keys(scene)
    alice_mark, bob_mark = alice.mark(), bob.mark()
    change = vera.change(" and vera")
    refused = vera.mark()
    vera.send("update", data=update_data(change))
    vera.wait_error("forbidden", after=refused, action="update")
    refused = vera.mark()
    vera.send("update", data=sync_step2_data(change))
    vera.wait_error("forbidden", after=refused, action="update")
    refused = vera.mark()
    text = json.dumps({"action": "update", "data": update_data(change)})
    vera.send_json({"action": "chunk", "id": "v1", "seq": 0, "total": 1, "data": text})
    vera.wait_error("forbidden", after=refused, action="update", id="v1")
    quiet = vera.mark()
    vera.send("update", data=sync_step2_data(b"\x00\x00"))
    vera.assert_nothing(error(), after=quiet, within=0.5)
    assert log_keys(scene) == logged
    alice.assert_nothing(of_type("update"), after=alice_mark, within=0)
    bob.assert_nothing(of_type("update"), after=bob_mark, within=0)

    # The viewer is still connected and still follows the editors.
    vera.ping()
    alice.edit("!")
    bob.wait_text("written by alice!")
    assert not vera.closed
    vera.wait_for(of_type("update"), after=quiet)


# --------------------------------------------------------------------------- membership


def test_participants_join_once_per_connection_and_leave_on_close(scene: Scene, open_client: Opener) -> None:
    alice = open_client("alice")
    connected = alice.synced()
    assert connected["user"] == {"userId": "alice", "userName": "Alice"}
    assert connected["role"] == "editor"
    assert connected["sceneId"] == scene.scene_id
    assert connected["participants"] == [
        {"connectionId": alice.connection_id, "userId": "alice", "userName": "Alice"}
    ]

    bob = open_client("bob")
    first = bob.synced()
    assert connection_ids(first) == {alice.connection_id, bob.connection_id}
    assert bob.connection_id is not None
    joined = alice.wait_for(participant("participant-joined", bob.connection_id))
    assert joined["participant"] == {"connectionId": bob.connection_id, "userId": "bob", "userName": "Bob"}
    for _ in range(2):  # periodic resyncs: a `connected` each time, no new announcement
        assert connection_ids(bob.synced()) == {alice.connection_id, bob.connection_id}

    # A second connection of the same user is another participant; its first syncs are
    # sent at once (they run concurrently) and still announce it once.
    alice2 = open_client("alice")
    for _ in range(3):
        alice2.sync()
    replies = alice2.wait_count(of_type("connected"), 3)
    alice2.connection_id = replies[0]["connectionId"]
    for reply in replies:
        assert connection_ids(reply) == {alice.connection_id, bob.connection_id, alice2.connection_id}
    bob.wait_for(participant("participant-joined", alice2.connection_id))
    alice.wait_for(participant("participant-joined", alice2.connection_id))

    # A connection that never syncs is never a member: no join, no leave.
    lurker = open_client("lurker")
    lurker.ping()
    lurker.close()

    # Announcements precede the sync reply that follows them, and a pong follows both.
    alice.ping()
    bob.ping()
    assert len(alice.find(participant("participant-joined", bob.connection_id))) == 1
    # Concurrent first syncs: one conditional update wins in DynamoDB, so one announcement
    # (tests/core/test_membership.py checks the join's outcome). The local stack's moto
    # takes one request at a time (devstack/moto_server.py), so its conditions hold too.
    assert len(alice.find(participant("participant-joined", alice2.connection_id))) == 1
    assert len(bob.find(participant("participant-joined", alice2.connection_id))) == 1
    assert not bob.find(participant("participant-joined", bob.connection_id))
    assert not alice2.find(of_type("participant-joined"))

    bob.close()
    left = alice.wait_for(participant("participant-left", bob.connection_id))
    assert left["participant"] == {"connectionId": bob.connection_id, "userId": "bob", "userName": "Bob"}
    alice2.wait_for(participant("participant-left", bob.connection_id))

    # (the lurker closed before bob did; give its $disconnect time to show any mistake)
    def another_left(message: dict[str, Any]) -> bool:
        return message.get("type") == "participant-left" and message != left

    alice.assert_nothing(another_left, within=0.3)
    assert connection_row(scene, bob.connection_id) is None
    assert connection_ids(alice.synced()) == {alice.connection_id, alice2.connection_id}


def test_token_expiring_during_the_connection_ends_it(scene: Scene, open_client: Opener) -> None:
    alice = open_client("alice")
    alice.synced()
    scene.grant("erin", "editor")
    token = scene.token("erin", ttl=3)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    erin = open_client("erin", token=token)
    erin.synced()
    assert erin.connection_id is not None
    erin.ping()
    time.sleep(max(0.0, expires_at - time.time() + 0.05))  # wall-clock expiry, not an assertion
    mark = erin.mark()
    erin.send("ping")
    erin.wait_error("token_expired", after=mark)
    assert erin.wait_closed() == 1000
    assert not erin.find(of_type("pong"), after=mark)
    alice.wait_for(participant("participant-left", erin.connection_id))


def test_refusals_before_the_frame_is_read_echo_its_action(scene: Scene, open_client: Opener) -> None:
    """docs/design.md §2 / issue 3 item 4: an `error` names the `action` it answers. The access and
    expiry refusals come before the frame is parsed, and (at the time of writing) lose it."""
    answers = {}
    for action in ("ping", "sync"):
        mallory = open_client("mallory", role=None)
        mallory.send_json({"action": action, "data": "AAA="})
        answers[f"no access, {action}"] = mallory.wait_error("forbidden")
        mallory.wait_closed()
    # A token that expires while connected: its next message is refused.
    scene.grant("erin", "editor")
    issued = int(time.time())
    short = mint_dev_token(scene.stack.jwt_secret, "erin", scene.scene_id, ttl=2, now=issued)
    erin = open_client("erin", token=short)
    time.sleep(max(0.0, issued + 2.2 - time.time()))  # the clock must pass exp
    erin.send("ping")
    answers["expired, ping"] = erin.wait_error("token_expired")
    erin.wait_closed()
    missing = {what: answer for what, answer in answers.items() if answer.get("action") != what.split()[-1]}
    assert not missing, f"errors without the action they answer: {missing}"


def test_revoking_access_closes_the_users_connections(scene: Scene, open_client: Opener) -> None:
    carol = open_client("carol")
    carol.synced()
    dave1, dave2 = open_client("dave"), open_client("dave")
    dave1.synced()
    dave2.synced()
    assert dave1.connection_id is not None and dave2.connection_id is not None

    command = [sys.executable, "-m", "collabctl", "revoke", "--scene", scene.scene_id, "--user", "dave"]
    env = {**os.environ, **scene.stack.env, "MANAGEMENT_ENDPOINT": scene.stack.management_url}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "closed 2 open connections" in done.stdout

    assert dave1.wait_closed() == 1000
    assert dave2.wait_closed() == 1000
    for dave in (dave1, dave2):
        carol.wait_for(participant("participant-left", dave.connection_id))
        assert connection_row(scene, dave.connection_id) is None
    assert connection_ids(carol.synced()) == {carol.connection_id}

    # Dave's token is still valid, but it no longer opens the scene.
    dave3 = open_client("dave", role=None)
    dave3.send("sync", data="AAAA")
    dave3.wait_error("forbidden")
    dave3.wait_closed()


def test_stale_rows_are_ignored_and_gone_connections_evicted(scene: Scene, open_client: Opener) -> None:
    alice, bob = open_client("alice"), open_client("bob")
    alice.synced()
    bob.synced()

    # A row whose TTL has passed (DynamoDB deletes expired rows lazily) is not a member.
    expired = "YYYYYYYYYYYYYYY="
    put_connection_row(scene, expired, "ghost-old", expires_at=int(time.time()) - 60)
    carol = open_client("carol")
    assert connection_ids(carol.synced()) == {alice.connection_id, bob.connection_id, carol.connection_id}
    assert connection_ids(bob.synced()) == {alice.connection_id, bob.connection_id, carol.connection_id}

    # A live-looking row for a connection API Gateway no longer has: the next fan-out gets
    # 410, which evicts it at once, and the others are told it left.
    gone = "ZZZZZZZZZZZZZZZ="
    put_connection_row(scene, gone, "ghost", expires_at=int(time.time()) + 3600)
    assert gone in connection_ids(bob.synced())
    alice.edit("after the ghost")
    bob.wait_text("after the ghost")
    left = bob.wait_for(participant("participant-left", gone))
    assert left["participant"] == {"connectionId": gone, "userId": "ghost", "userName": "Ghost"}
    carol.wait_for(participant("participant-left", gone))
    alice.wait_for(participant("participant-left", gone))
    assert connection_row(scene, gone) is None
    assert connection_ids(bob.synced()) == {alice.connection_id, bob.connection_id, carol.connection_id}
    carol.wait_text("after the ghost")


# --------------------------------------------------------------- access follows the grants


def collabctl(scene: Scene, *argv: str) -> str:
    command = [sys.executable, "-m", "collabctl", *argv, "--scene", scene.scene_id]
    env = {**os.environ, **scene.stack.env, "MANAGEMENT_ENDPOINT": scene.stack.management_url}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_revoke_closes_a_connection_that_never_sent_sync(scene: Scene, open_client: Opener) -> None:
    """Review F4: `update` needs no membership, so a connection that never syncs used to
    keep writing after a revoke. `$connect` records it, so revoke finds and closes it."""
    carol = open_client("carol")
    carol.synced()
    dave = open_client("dave")
    dave.edit("EXT. ALLEY - NIGHT")  # written without ever sending sync
    carol.wait_text("EXT. ALLEY - NIGHT")
    assert "closed 1 open connection" in collabctl(scene, "revoke", "--user", "dave")
    assert dave.wait_closed() == 1000
    carol.synced()
    assert carol.current_text() == "EXT. ALLEY - NIGHT"


def test_lowering_a_role_closes_the_connection_and_the_reconnect_reads_only(
    scene: Scene, open_client: Opener
) -> None:
    """Review F6: a role travels in the connection's authorizer context, so a downgrade
    closes the user's connections; the client's reconnect gets the new role."""
    carol = open_client("carol")
    carol.synced()
    erin = open_client("erin")
    assert erin.synced()["role"] == "editor"
    erin.edit("INT. ")
    carol.wait_text("INT. ")
    assert "closed 1 open connection" in collabctl(scene, "grant", "--user", "erin", "--role", "viewer")
    assert erin.wait_closed() == 1000
    again = open_client("erin", role=None)  # the same user, reconnecting with her token
    assert again.synced()["role"] == "viewer"
    mark = again.mark()
    again.edit("vandalism")
    again.wait_error("forbidden", after=mark)
    # Raising a role closes nothing: the viewer stays until she reconnects.
    assert "closed" not in collabctl(scene, "grant", "--user", "erin", "--role", "editor")
    again.ping()
    assert carol.current_text() == "INT. "


def test_a_listener_whose_token_expires_gets_no_more_edits_and_is_closed(
    scene: Scene, open_client: Opener
) -> None:
    """Review F6: expiry used to be checked only on the client's own messages; a client that
    only listens kept receiving live edits. Fan-out skips and closes it."""
    alice = open_client("alice")
    alice.synced()
    scene.grant("erin", "editor")
    issued = int(time.time())
    erin = open_client(
        "erin", token=mint_dev_token(scene.stack.jwt_secret, "erin", scene.scene_id, ttl=2, now=issued)
    )
    erin.synced()
    assert erin.connection_id is not None
    time.sleep(max(0.0, issued + 2.2 - time.time()))  # the clock must pass exp
    mark = erin.mark()
    alice.edit("after expiry")
    erin.wait_error("token_expired", after=mark)
    assert erin.wait_closed() == 1000
    assert not erin.find(of_type("update"), after=mark)
    alice.wait_for(participant("participant-left", erin.connection_id))
