"""Membership and access while connected (docs/design.md §4 invariants 8 and 9, review F4-F6, F8,
M1, M10), on moto and each stage shape (real Redis, both kinds, and no cache) with a
recording Management API:

- `$connect` records every connection and re-reads the role after the write, so a revoke
  either finds the row or is seen by `$connect` (F4, F5);
- a row `$connect` did not record is checked at every sync until a check passes, so
  neither a crash between join and check nor concurrent first syncs skip it (F5);
- a member whose token has expired gets nothing more and is closed (F6);
- a join whose response was lost still announces (M1);
- evicting K gone members of a room of N costs posts per member, not per pair (F8).
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config

from collab import runtime, session
from collab.access import SceneAccess
from collab.admission import admit
from collab.rooms import Member, Rooms
from collabctl.connections import stale_connections
from tests.support.faults import LoseResponses
from tests.support.pause import PausePoints
from tests.support.rig import Recorder, Shape, an_update, build_rig, caller, sync_frame, update_frame


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    return build_rig(shape, aws_tables)


def new_scene() -> str:
    return f"scene-{uuid.uuid4().hex[:8]}"


def retrying_dynamodb() -> Any:
    # As the handlers build it (collab.runtime): botocore's standard retries.
    return boto3.client("dynamodb", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


# ----------------------------------------------------------------------- $connect (F4, F5)


def test_connect_records_the_connection_so_revoke_finds_one_that_never_synced(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, _recorder, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "dave", "editor")
    dave = caller(scene, "dave=", "dave")
    assert admit(rt.rooms, rt.access, dave)
    # Dave writes without ever sending sync; the row is there for revoke all the same.
    session.handle_message(rt, dave, update_frame(an_update("vandalism")))
    assert stale_connections(rt.rooms, scene, "dave") == ["dave="]
    assert rt.rooms.members(scene) == []  # recorded, not a member: fan-out skips it


def test_a_revoke_before_the_connect_row_is_seen_by_connect(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, _, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "dave", "editor")
    dave = caller(scene, "dave=", "dave")  # the authorizer read "editor"
    rt.access.revoke(scene, "dave")  # revoke lists the rows: there is none yet
    assert stale_connections(rt.rooms, scene, "dave") == []
    assert not admit(rt.rooms, rt.access, dave)  # $connect refuses: 403
    assert rt.rooms.connections(scene) == []


def test_a_revoke_after_the_connect_row_finds_it(rig: tuple[runtime.Runtime, Recorder, PausePoints]) -> None:
    rt, _, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "dave", "editor")
    dave = caller(scene, "dave=", "dave")
    found: list[str] = []

    class RevokeAfterWrite(Rooms):
        def admit(self, scene_id: str, member: Member, now: float | None = None) -> None:
            super().admit(scene_id, member, now)
            # Between $connect's write and its re-read, collabctl revokes and looks.
            rt.access.revoke(scene_id, "dave")
            found.extend(stale_connections(self, scene_id, "dave"))

    rooms = RevokeAfterWrite(retrying_dynamodb(), rt.settings.connections_table, 7800)
    assert not admit(rooms, rt.access, dave)
    assert found == ["dave="]  # revoke would have closed it; $connect refuses it anyway


def test_a_lowered_role_between_authorizer_and_connect_refuses_the_upgrade(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, _, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "erin", "editor")
    erin = caller(scene, "erin=", "erin")  # the authorizer read "editor"
    rt.access.grant(scene, "erin", "viewer")
    assert not admit(rt.rooms, rt.access, erin)  # the client reconnects and is a viewer


def test_an_unrecorded_connection_is_checked_at_every_sync_until_a_check_passes(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    """F5: a join that won (or lost) the race and then crashed before the role check leaves
    a member row that $connect never recorded; the next sync checks again."""
    rt, recorder, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "dave", "editor")
    dave = caller(scene, "dave=", "dave")
    member = Member("dave=", "dave", "Dave", "editor")
    assert rt.rooms.join(scene, member).first  # a first sync that crashed right here
    assert not rt.rooms.join(scene, member).first  # a concurrent one that lost the race
    rt.access.revoke(scene, "dave")
    session.handle_message(rt, dave, sync_frame())
    sent = recorder.sent["dave="]
    assert types(sent) == ["error"] and sent[0]["code"] == "forbidden"
    assert recorder.closed == ["dave="]
    assert rt.rooms.connections(scene) == []


def test_a_recorded_connection_is_not_rechecked_and_a_periodic_sync_writes_nothing(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = new_scene()
    rt.access.grant(scene, "ann", "editor")
    ann = caller(scene, "ann=", "ann")
    assert admit(rt.rooms, rt.access, ann)
    session.handle_message(rt, ann, sync_frame())
    session.handle_message(rt, ann, sync_frame())
    assert types(recorder.sent["ann="]).count("connected") == 2
    assert [m.connection_id for m in rt.rooms.members(scene)] == ["ann="]


# ----------------------------------------------------------------------- expiry (F6)


def test_a_member_whose_token_expired_receives_nothing_more_and_is_closed(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = new_scene()
    for user in ("ann", "erin", "bob"):
        rt.access.grant(scene, user, "editor")
    ann, bob = caller(scene, "ann=", "ann"), caller(scene, "bob=", "bob")
    erin = caller(scene, "erin=", "erin", expires_at=4_000_000_000)
    for who in (ann, erin, bob):
        session.handle_message(rt, who, sync_frame())
    # Erin's token expires while she only listens (her row carries the token's exp).
    boto3.client("dynamodb").update_item(
        TableName=rt.settings.connections_table,
        Key={"sceneId": {"S": scene}, "connectionId": {"S": "erin="}},
        UpdateExpression="SET tokenExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    before = len(recorder.sent["erin="])
    session.handle_message(rt, ann, update_frame(an_update("EXT. ROOF")))
    erins = recorder.sent["erin="][before:]
    assert [m.get("code") for m in erins] == ["token_expired"]
    assert "erin=" in recorder.closed
    assert "update" in types(recorder.sent["bob="])
    left = [m for m in recorder.sent["bob="] if m["type"] == "participant-left"]
    assert [p["connectionId"] for p in left[-1]["participants"]] == ["erin="]
    assert [m.connection_id for m in rt.rooms.members(scene)] == ["ann=", "bob="]


# ----------------------------------------------------------------------- retried writes (M1)


def test_a_join_whose_response_was_lost_still_counts_as_the_first(aws_tables: dict[str, str]) -> None:
    client = retrying_dynamodb()
    rooms = Rooms(client, aws_tables["CONNECTIONS_TABLE"], 7800)
    lost = LoseResponses(client, "UpdateItem")
    member = Member("ann=", "ann", "Ann", "editor")
    assert rooms.join("scene-1", member).first  # botocore's retry found our own write
    assert lost.lost == 1
    assert not rooms.join("scene-1", member).first
    assert [m.connection_id for m in rooms.members("scene-1")] == ["ann="]


def test_an_admit_whose_response_was_lost_records_the_connection_once(aws_tables: dict[str, str]) -> None:
    client = retrying_dynamodb()
    rooms = Rooms(client, aws_tables["CONNECTIONS_TABLE"], 7800)
    LoseResponses(client, "PutItem")
    access = SceneAccess(aws_tables["ACCESS_TABLE"], client)
    access.grant("scene-1", "ann", "editor")
    assert admit(rooms, access, caller("scene-1", "ann=", "ann"))
    assert [c.connection_id for c in rooms.connections("scene-1")] == ["ann="]
    assert rooms.join("scene-1", Member("ann=", "ann", "Ann", "editor")).verified


def test_the_fan_out_read_finds_exactly_the_rosters_members(aws_tables: dict[str, str]) -> None:
    """`recipients` filters in DynamoDB what `roster` filters here: the same live members
    and the same expired tokens, whatever mix of rows the table holds."""
    client = boto3.client("dynamodb")
    table = aws_tables["CONNECTIONS_TABLE"]
    rooms = Rooms(client, table, 7800)
    now = 1_900_000_000.0
    scene = new_scene()
    rooms.join(scene, Member("live=", "ann", "Ann", "editor", token_expires_at=int(now) + 60), now=now)
    rooms.join(scene, Member("no-exp=", "bob", "Bob", "viewer"), now=now)
    rooms.join(scene, Member("tok-exp=", "cy", "Cy", "editor", token_expires_at=int(now) - 1), now=now)
    rooms.admit(scene, Member("admitted=", "dee", "Dee", "editor"), now=now)  # never synced
    Rooms(client, table, 10).join(scene, Member("ttl-gone=", "eve", "Eve", "editor"), now=now - 60)
    client.put_item(  # a row from before `$connect` admitted connections: a member
        TableName=table,
        Item={"sceneId": {"S": scene}, "connectionId": {"S": "legacy="}, "userId": {"S": "fay"}},
    )
    rooms.join(new_scene(), Member("elsewhere=", "gus", "Gus", "editor"), now=now)

    full, fanout = rooms.roster(scene, now=now), rooms.recipients(scene, now=now)

    def ids(members: list[Member]) -> list[str]:
        return sorted(m.connection_id for m in members)

    assert ids(full.members) == ["legacy=", "live=", "no-exp="]
    assert ids(fanout.members) == ids(full.members)
    assert ids(fanout.expired) == ids(full.expired) == ["tok-exp="]
    assert {m.connection_id: m.token_expires_at for m in fanout.members} == {
        m.connection_id: m.token_expires_at for m in full.members
    }


# ----------------------------------------------------------------------- eviction (F8)


def test_evicting_many_gone_members_costs_posts_per_member_not_per_pair(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = new_scene()
    n, k = 20, 8
    callers = [caller(scene, f"c{i:02d}=", f"user{i:02d}") for i in range(n)]
    for who in callers:
        rt.access.grant(scene, who.user_id, "editor")
        session.handle_message(rt, who, sync_frame())
    gone = {who.connection_id for who in callers[1 : k + 1]}  # their $disconnect never came
    recorder.gone |= gone
    recorder.posts = 0
    writer = callers[0]
    session.handle_message(rt, writer, update_frame(an_update("FADE IN:")))
    remaining = n - k  # the writer included
    # The broadcast (n - 1 posts), then one participant-left per remaining member: the
    # old eviction posted 2 messages per gone member to every member, 2 * k * n.
    assert recorder.posts == (n - 1) + remaining
    for who in [writer, *callers[k + 1 :]]:
        lefts = [m for m in recorder.sent[who.connection_id] if m["type"] == "participant-left"]
        assert len(lefts) == 1
        assert {p["connectionId"] for p in lefts[0]["participants"]} == gone
    assert {m.connection_id for m in rt.rooms.members(scene)} == {w.connection_id for w in callers} - gone


def test_members_found_gone_while_announcing_are_evicted_in_the_next_round(
    rig: tuple[runtime.Runtime, Recorder, PausePoints],
) -> None:
    rt, recorder, _ = rig
    scene = new_scene()
    callers = [caller(scene, f"c{i}=", f"user{i}") for i in range(4)]
    for who in callers:
        rt.access.grant(scene, who.user_id, "editor")
        session.handle_message(rt, who, sync_frame())
    writer, first_gone, later_gone, last = callers

    class GoneOnAnnouncement(Recorder):
        def send_all(self, connection_ids: list[str], text: str) -> list[str]:
            if '"participant-left"' in text:
                recorder.gone.add(later_gone.connection_id)
            return recorder.send_all(connection_ids, text)

    rt.outbox_factory = lambda endpoint: GoneOnAnnouncement()  # type: ignore[assignment,return-value]
    rt._outboxes.clear()
    recorder.gone.add(first_gone.connection_id)
    session.handle_message(rt, writer, update_frame(an_update("CUT TO:")))
    lefts = [m for m in recorder.sent[last.connection_id] if m["type"] == "participant-left"]
    assert [[p["connectionId"] for p in m["participants"]] for m in lefts] == [
        [first_gone.connection_id],
        [later_gone.connection_id],
    ]
    assert {m.connection_id for m in rt.rooms.members(scene)} == {writer.connection_id, last.connection_id}
