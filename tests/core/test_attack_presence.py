"""Attacks on presence as issue 11 changed it (docs/presence.md): held renewals and rosters,
an `update` that carries its `awareness`, combined sync answers. Each test is what a hostile
or unlucky client does, through the handlers (collab.session) on moto and each stage shape
(Redis standalone and cluster; no cache, where presence lives in DynamoDB), with the
Management API recorded (tests/support/rig.py).

The promises attacked: no live cursor is ever dropped, a gone one is dropped within ~30 s,
nothing typed is lost, bad input is bounded (docs/design.md §4, invariants 4, 5, 6, 9), a
viewer cannot change the scene, and clients that send update and awareness separately (or
read only what the protocol had before issue 11) keep working.

The five tests under "bugs found" failed when they were written and are fixed. The
store's clock is virtual where a test needs seconds to pass: it primes the scene's
presence through `rt.awareness` with explicit times relative to now, then acts through the
handlers, whose calls run at the real now."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from collab import protocol, runtime, session
from collab.awareness import AwarenessEntry, RosterPolicy, base64_length, encode_update
from collab.lib0 import MAX_SAFE_INTEGER, var_string, var_uint
from tests.support.faults import before_send
from tests.support.pause import PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    awareness_frame,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    typed,
)

Rig = tuple[runtime.Runtime, Recorder, PausePoints]


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str]) -> Rig:
    return build_rig(shape, aws_tables)


def now_ms() -> int:
    return int(time.time() * 1000)


def cursor(n: int) -> str:
    return json.dumps({"user": {"name": f"writer {n}"}, "cursor": {"anchor": n}})


def aw_data(*entries: tuple[int, int, str | None]) -> str:
    """The base64 `[1, update]` of (client id, clock, JSON state text or None to remove)."""
    update = encode_update(AwarenessEntry(c, k, "null" if s is None else s) for c, k, s in entries)
    return protocol.encode_base64(protocol.awareness_message(update))


def update_with(update: bytes, **fields: Any) -> str:
    """An `update` frame of `update` (a y-protocols Update), with extra fields as given."""
    data = protocol.encode_base64(protocol.update_message(update))
    return json.dumps({"action": "update", "data": data, **fields})


def _var_uint(raw: bytes, pos: int) -> tuple[int, int]:
    # Unbounded, as lib0's readVarUint reads what the server sends (2**53 included).
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def entries_of(field: str) -> list[tuple[int, int, str]]:
    """(client id, clock, state) of a base64 y-protocols awareness message, any size."""
    raw = protocol.decode_awareness_message(protocol.decode_base64(field))
    count, pos = _var_uint(raw, 0)
    found = []
    for _ in range(count):
        client, pos = _var_uint(raw, pos)
        clock, pos = _var_uint(raw, pos)
        length, pos = _var_uint(raw, pos)
        found.append((client, clock, raw[pos : pos + length].decode("utf-8")))
        pos += length
    return found


def cursors_read(
    messages: list[dict[str, Any]], *, old_client: bool = False
) -> Iterator[tuple[int, int, str]]:
    """Every awareness entry a client reads from its messages, in order. `old_client`: one
    from before issue 11, which reads `data` of `awareness` frames only (its parser kept
    just `data` of an `update`: git show b747e40^:client/src/framing.ts)."""
    for message in messages:
        if message["type"] == "awareness":
            yield from entries_of(message["data"])
        elif not old_client and message["type"] in ("update", "synced") and "awareness" in message:
            yield from entries_of(message["awareness"])


def errors(recorder: Recorder, connection: str) -> list[tuple[str, str | None]]:
    return [(m["code"], m.get("action")) for m in recorder.sent[connection] if m["type"] == "error"]


def scene_text(rt: runtime.Runtime, recorder: Recorder, scene: str) -> str:
    """What a late joiner is served: the stored scene."""
    late = caller(scene, f"late-{uuid.uuid4().hex[:6]}=", "ann")
    session.handle_message(rt, late, sync_frame())
    return text_seen_by(recorder.sent[late.connection_id])


def room(rt: runtime.Runtime, *people: tuple[str, str]) -> tuple[str, dict[str, Any]]:
    """A scene with these (user, role) members, each synced once; their callers by user."""
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    callers = {}
    for user, role in people:
        rt.access.grant(scene, user, role)
        callers[user] = caller(scene, f"{user}=", user, role=role)
        session.handle_message(rt, callers[user], sync_frame())
    return scene, callers


def prime(rt: runtime.Runtime, scene: str, user: str, at: int, *entries: tuple[int, int, str]) -> Any:
    """A write of `user`'s connection as the handlers make it, at virtual time `at`."""
    made = [AwarenessEntry(c, k, s) for c, k, s in entries]
    return rt.awareness.apply_holding_renewals(scene, f"{user}=", made, at, user_id=user)


# ------------------------------------------------------------------ bugs found (fixed)


def test_an_edit_is_stored_and_broadcast_when_its_cursor_meets_the_scene_cap(
    shape: Shape, aws_tables: dict[str, str]
) -> None:
    rt, recorder, _ = build_rig(shape, aws_tables, AWARENESS_MAX_STATES="2")
    scene, who = room(rt, ("vic", "viewer"), ("ann", "editor"), ("bob", "editor"))
    # An audience fills the scene's presence (the cap is 256 in production, 2 here).
    session.handle_message(rt, who["vic"], awareness_frame((901, 1, {"v": 1}), (902, 1, {"v": 2})))
    assert len(rt.awareness.current(scene)) == 2
    # Ann types; her provider sends the edit and her new cursor as one frame.
    session.handle_message(
        rt, who["ann"], update_with(typed("INT. HALL", 11), awareness=aw_data((11, 1, cursor(1))))
    )
    assert text_seen_by(recorder.sent["bob="]) == "INT. HALL"
    assert scene_text(rt, recorder, scene) == "INT. HALL"


def _hold_anns_renewal(rt: runtime.Runtime, scene: str) -> int:
    """Ann's renewal held at t - 5 s, her peers' deadline t + 8 s (told at t - 20 s: 30 s
    less the 2 s margin), with a roster due at the next write of anyone; returns t."""
    t = now_ms()
    for user, client in (("ann", 1), ("bob", 2), ("mal", 3)):
        prime(rt, scene, user, t - 20_000, (client, 1, cursor(client)))
    # Held: bob and mal are both due to write (t - 1.5 s) before ann's deadline...
    held = prime(rt, scene, "ann", t - 5_000, (1, 2, cursor(1)))
    assert held.roster is None and held.to_forward == []
    # ...and by t they are late for it, so the next write sends the roster.
    return t


def _anns_renewal_reaches_her_peers(rt: runtime.Runtime, recorder: Recorder, scene: str, t: int) -> bool:
    """Either the peers were told of ann's held renewal, or the store still holds it and
    sends it with the next write before the deadline (bob moves his cursor at t + 7 s)."""
    if (1, 2, cursor(1)) in list(cursors_read(recorder.sent["vic="])):
        return True
    later = rt.awareness.apply_holding_renewals(
        scene, "bob=", [AwarenessEntry(2, 2, cursor(22))], t + 7_000, user_id="bob", policy=RosterPolicy()
    )
    return later.roster is not None and any(e.client_id == 1 and e.clock == 2 for e in later.roster)


def test_a_roster_taken_by_an_update_of_foreign_structs_still_reaches_the_peers(rig: Rig) -> None:
    # The case 5c065b3 fixed (found here at the same time): the edit turned out empty, and
    # the roster its cursor took was never sent.
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"), ("mal", "editor"), ("vic", "viewer"))
    bobs_edit = typed("BOB TYPED THIS", 2)
    session.handle_message(rt, who["bob"], update_with(bobs_edit))  # binds Yjs client id 2 to bob
    t = _hold_anns_renewal(rt, scene)
    # Mal echoes bob's edit (all of it under bob's client id, so it is dropped whole) with a
    # cursor move of its own: the write after which the roster is due.
    session.handle_message(rt, who["mal"], update_with(bobs_edit, awareness=aw_data((3, 2, cursor(33)))))
    assert _anns_renewal_reaches_her_peers(rt, recorder, scene, t), "ann's cursor times out at t + 10 s"


def test_a_roster_taken_by_an_edit_whose_durable_write_fails_still_reaches_the_peers(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"), ("mal", "editor"), ("vic", "viewer"))
    t = _hold_anns_renewal(rt, scene)
    db = rt.documents._log._db

    def log_write_fails(operation: str, body: bytes) -> None:
        # The durable log's put fails (throttled past its retries, or a timeout): any
        # exception out of Documents.append. Presence items (`aw#`) still work.
        if b'"log#' in body:
            raise RuntimeError("the log put failed")

    remove = before_send(db, log_write_fails)
    try:
        session.handle_message(
            rt, who["mal"], update_with(typed("MAL", 3), awareness=aw_data((3, 2, cursor(33))))
        )
    finally:
        remove()
    assert errors(recorder, "mal=") == [("internal", "update")]  # mal's resync repairs his edit
    assert _anns_renewal_reaches_her_peers(rt, recorder, scene, t), "ann's cursor times out at t + 10 s"


def test_ages_are_never_negative_when_invocations_run_out_of_order(rig: Rig) -> None:
    rt, _, _ = rig
    scene, _ = room(rt, ("ann", "editor"), ("bob", "editor"))
    t = now_ms()
    prime(rt, scene, "ann", t - 15_000, (1, 1, cursor(1)))
    # Bob's invocation read the time 40 ms after ann's next one did, and ran first.
    prime(rt, scene, "bob", t + 40, (2, 1, cursor(2)))
    ages = {e.client_id: e.age_ms for e in rt.awareness.current(scene, t)}  # a sync's reply
    roster = prime(rt, scene, "ann", t, (1, 2, cursor(1))).roster  # the lone renewal: due
    assert roster is not None
    ages_in_roster = {e.client_id: e.age_ms for e in roster}
    assert min(a for a in ages.values() if a is not None) >= 0, ages
    assert min(a for a in ages_in_roster.values() if a is not None) >= 0, ages_in_roster


def test_a_client_from_before_issue_11_gets_the_roster_an_edit_carries(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("neo", "editor"), ("old", "editor"), ("quinn", "editor"))
    t = now_ms()
    for user, client in (("neo", 1), ("old", 2), ("quinn", 3)):
        prime(rt, scene, user, t - 20_000, (client, 1, cursor(client)))
    assert prime(rt, scene, "quinn", t - 5_000, (3, 2, cursor(3))).roster is None  # held
    # Neo types (a new provider: edit and cursor in one frame); the roster is due now.
    session.handle_message(
        rt, who["neo"], update_with(typed("FADE IN:", 1), awareness=aw_data((1, 2, cursor(11))))
    )
    read_by_new = list(cursors_read(recorder.sent["old="]))
    assert (3, 2, cursor(3)) in read_by_new  # the roster reached old's socket...
    assert (3, 2, cursor(3)) in list(cursors_read(recorder.sent["old="], old_client=True))  # ...readably


def test_one_connection_with_two_ids_is_not_two_writes_that_can_be_counted_on(rig: Rig) -> None:
    rt, _, _ = rig
    scene, _ = room(rt, ("ann", "editor"), ("bea", "editor"), ("cal", "editor"))
    t = now_ms()
    prime(rt, scene, "ann", t, (1, 1, cursor(1)))
    prime(rt, scene, "cal", t, (3, 1, cursor(3)))
    prime(rt, scene, "bea", t + 5_000, (21, 1, cursor(21)), (22, 1, cursor(22)))  # one tab, two docs
    assert prime(rt, scene, "ann", t + 15_000, (1, 2, cursor(1))).roster is None  # cal and bea
    # Cal renews too. Before the peers' deadline for both (t + 28 s) the only write due is
    # bea's (t + 23.5 s, for both of its ids at once); ann and cal renew next at t + 30 s.
    # If bea's tab freezes, nothing sends the held renewals in time: the roster is due now.
    renewed = prime(rt, scene, "cal", t + 15_100, (3, 2, cursor(3)))
    assert renewed.roster is not None


# ------------------------------------------------------------------ what held (regressions)


@pytest.mark.parametrize(
    "awareness",
    [
        "not base64!",
        protocol.encode_base64(protocol.update_message(b"\x00\x00")),  # a sync message
        protocol.encode_base64(protocol.awareness_message(b"\x01\x07\x01")),  # truncated entry
        protocol.encode_base64(
            protocol.awareness_message(var_uint(1) + var_uint(7) + var_uint(1) + var_string("{"))
        ),
        protocol.encode_base64(
            protocol.awareness_message(var_uint(1) + var_uint(7) + var_uint(1) + var_string("NaN"))
        ),
        protocol.encode_base64(protocol.awareness_message(b"\x00\xff")),  # trailing bytes
        "",
        None,
        5,
        {"data": "x"},
    ],
    ids=[
        "base64",
        "sync-kind",
        "truncated",
        "bad-json",
        "nan",
        "trailing",
        "empty",
        "null",
        "number",
        "object",
    ],
)
def test_a_malformed_awareness_part_refuses_the_frame_before_anything_is_stored(
    rig: Rig, awareness: Any
) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"))
    session.handle_message(rt, who["ann"], update_with(typed("LOST?", 11), awareness=awareness))
    assert errors(recorder, "ann=") == [("bad_request", "update")]
    assert not [m for m in recorder.sent["bob="] if m["type"] in ("update", "awareness")]
    # The connection and the scene keep working (invariant 5), and nothing half-applied
    # stays behind (invariant 4).
    session.handle_message(
        rt, who["ann"], update_with(typed("KEPT", 12), awareness=aw_data((12, 1, cursor(12))))
    )
    assert text_seen_by(recorder.sent["bob="]) == "KEPT"
    assert scene_text(rt, recorder, scene) == "KEPT"
    assert [e.client_id for e in rt.awareness.current(scene)] == [12]


def test_an_oversized_awareness_part_is_refused_by_size_before_it_is_decoded(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"))
    too_long = "A" * (base64_length(128 * 1024) + 4)  # valid base64, never decoded
    session.handle_message(rt, who["ann"], update_with(typed("X", 11), awareness=too_long))
    nine = aw_data(*[(100 + i, 1, cursor(i)) for i in range(9)])
    session.handle_message(rt, who["ann"], update_with(typed("Y", 12), awareness=nine))
    huge_state = aw_data((11, 1, json.dumps({"name": "z" * (64 * 1024)})))
    session.handle_message(rt, who["ann"], update_with(typed("Z", 13), awareness=huge_state))
    assert errors(recorder, "ann=") == [("too_large", "update")] * 3
    assert scene_text(rt, recorder, scene) == ""
    assert rt.awareness.current(scene) == []


def test_an_edit_that_removes_another_clients_cursor_keeps_the_edit_not_the_removal(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"), ("mal", "editor"))
    session.handle_message(rt, who["ann"], awareness_frame((1, 1, {"cursor": 1})))
    # Mal's edit carries a removal of ann's client id, with a clock that would win.
    session.handle_message(rt, who["mal"], update_with(typed("MAL", 3), awareness=aw_data((1, 99, None))))
    assert errors(recorder, "mal=") == []
    assert text_seen_by(recorder.sent["bob="]) == "MAL"
    assert (1, 99, "null") not in list(cursors_read(recorder.sent["bob="]))
    assert [(e.client_id, e.clock) for e in rt.awareness.current(scene)] == [(1, 1)]


def test_a_viewers_combined_frame_changes_nothing(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("vic", "viewer"), ("ann", "editor"))
    session.handle_message(
        rt, who["vic"], update_with(typed("I AM THE AUTHOR", 9), awareness=aw_data((9, 1, cursor(9))))
    )
    assert errors(recorder, "vic=") == [("forbidden", "update")]
    assert not [m for m in recorder.sent["ann="] if m["type"] == "update"]
    assert scene_text(rt, recorder, scene) == ""
    # An empty SyncStep2 (what a viewer's provider may answer) with a cursor is presence
    # only, which viewers may send: relayed, and still nothing stored.
    empty = json.dumps(
        {
            "action": "update",
            "data": protocol.encode_base64(protocol.sync_step2(b"\x00\x00")),
            "awareness": aw_data((9, 2, cursor(9))),
        }
    )
    session.handle_message(rt, who["vic"], empty)
    assert errors(recorder, "vic=") == [("forbidden", "update")]
    assert (9, 2, cursor(9)) in list(cursors_read(recorder.sent["ann="]))
    assert scene_text(rt, recorder, scene) == ""


def test_ages_sent_by_a_client_are_never_relayed(rig: Rig) -> None:
    rt, recorder, _ = rig
    _, who = room(rt, ("ann", "editor"), ("bob", "editor"))
    forged = {"2": -(2**60), "1": 10**30, **{str(i): 0 for i in range(1000)}}
    session.handle_message(
        rt, who["ann"], update_with(typed("HI", 1), awareness=aw_data((1, 1, cursor(1))), ages=forged)
    )
    aw = json.dumps({"action": "awareness", "data": aw_data((1, 2, cursor(7))), "ages": forged})
    session.handle_message(rt, who["ann"], aw)
    relayed = [m for m in recorder.sent["bob="] if m["type"] in ("update", "awareness")]
    assert len(relayed) == 2
    for message in relayed:  # the server's own ages only: non-negative, for states it holds
        assert set(message.get("ages", {})) <= {"1"}
        assert all(0 <= age <= 30_000 for age in message.get("ages", {}).values())


def test_clocks_at_the_edge_of_javascripts_safe_integers(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"))
    session.handle_message(rt, who["ann"], awareness_frame((1, MAX_SAFE_INTEGER, {"cursor": 1})))
    assert (1, MAX_SAFE_INTEGER, json.dumps({"cursor": 1})) in list(cursors_read(recorder.sent["bob="]))
    # One above is not a JavaScript safe integer: refused, and the connection keeps working.
    beyond = protocol.encode_base64(
        protocol.awareness_message(var_uint(1) + var_uint(1) + var_uint(2**53) + var_string("{}"))
    )
    session.handle_message(rt, who["ann"], json.dumps({"action": "awareness", "data": beyond}))
    session.handle_message(rt, who["ann"], update_with(typed("STILL HERE", 1), awareness=beyond))
    assert errors(recorder, "ann=") == [("bad_request", "awareness"), ("bad_request", "update")]
    # Ann leaves: the removal's clock is one above (2**53, which lib0 reads exactly), so
    # every peer drops her cursor.
    session.on_disconnect(rt, who["ann"])
    assert list(cursors_read(recorder.sent["bob="]))[-1] == (1, 2**53, "null")
    assert rt.awareness.current(scene) == []


def test_a_renewal_that_is_a_takeover_is_forwarded_at_once(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("zoe", "editor"), ("bob", "editor"))
    session.handle_message(rt, who["zoe"], awareness_frame((7, 1, {"cursor": 1})))
    # Zoe's socket dropped without a $disconnect; her page reconnects with the same Yjs
    # client id and the same state, one clock up: the same bytes as a renewal, but from a
    # new connection, which peers must hear of (it also moves the id's ownership).
    again = caller(scene, "zoe-again=", "zoe")
    session.handle_message(rt, again, sync_frame())
    session.handle_message(rt, again, awareness_frame((7, 2, {"cursor": 1})))
    assert (7, 2, json.dumps({"cursor": 1})) in list(cursors_read(recorder.sent["bob="]))
    assert [(e.client_id, e.clock) for e in rt.awareness.current(scene)] == [(7, 2)]


def test_the_only_member_renewing_costs_no_message(rig: Rig) -> None:
    rt, recorder, _ = rig
    _, who = room(rt, ("ann", "editor"))
    session.handle_message(rt, who["ann"], awareness_frame((1, 1, {"cursor": 1})))
    posts = recorder.posts
    for clock in range(2, 6):  # renewals, each followed by a roster for nobody
        session.handle_message(rt, who["ann"], awareness_frame((1, clock, {"cursor": 1})))
    assert recorder.posts == posts


def test_a_roster_to_a_gone_connection_evicts_it_and_still_reaches_the_rest(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene, who = room(rt, ("ann", "editor"), ("bob", "editor"), ("gus", "editor"))
    t = now_ms()
    for user, client in (("ann", 1), ("bob", 2), ("gus", 3)):
        prime(rt, scene, user, t - 20_000, (client, 1, cursor(client)))
    assert prime(rt, scene, "ann", t - 5_000, (1, 2, cursor(1))).roster is None  # held
    recorder.gone.add("gus=")  # gus's laptop lid closed: posts to it answer 410
    session.handle_message(rt, who["bob"], awareness_frame((2, 2, {"cursor": 22})))  # a roster is due
    for peer in ("ann=", "bob="):  # bob gets it too: it carries ann's held renewal
        read = list(cursors_read(recorder.sent[peer]))
        if peer == "bob=":
            assert (1, 2, cursor(1)) in read
        assert read[-1] == (3, 2, "null"), read  # gus's cursor removed once he was found gone
    assert "gus=" not in [m.connection_id for m in rt.rooms.members(scene)]
    assert sorted(e.client_id for e in rt.awareness.current(scene)) == [1, 2]


@pytest.mark.parametrize("combined", ["true", 1, "yes", None, False, [True], {"x": True}])
def test_combined_must_be_true_itself_else_the_answer_comes_in_four(rig: Rig, combined: Any) -> None:
    rt, recorder, _ = rig
    _, who = room(rt, ("ann", "editor"), ("bob", "editor"))
    session.handle_message(rt, who["bob"], awareness_frame((2, 1, {"cursor": 2})))
    frame = json.loads(sync_frame())
    frame["combined"] = combined
    recorder.sent["ann="].clear()
    session.handle_message(rt, who["ann"], json.dumps(frame))
    assert [m["type"] for m in recorder.sent["ann="]] == ["connected", "sync", "sync", "awareness"]


def test_a_combined_answer_has_every_part_and_a_viewer_gets_no_state_vector(rig: Rig) -> None:
    rt, recorder, _ = rig
    _, who = room(rt, ("ann", "editor"), ("vic", "viewer"))
    session.handle_message(
        rt, who["ann"], update_with(typed("INT.", 1), awareness=aw_data((1, 1, cursor(1))))
    )
    for user in ("ann", "vic"):
        recorder.sent[f"{user}="].clear()
        frame = json.loads(sync_frame())
        session.handle_message(rt, who[user], json.dumps({**frame, "combined": True}))
        (synced,) = recorder.sent[f"{user}="]
        assert synced["type"] == "synced" and synced["role"] == ("viewer" if user == "vic" else "editor")
        assert text_seen_by([{"type": "sync", "data": synced["data"]}]) == "INT."
        assert ("stateVector" in synced) == (user == "ann")
        assert list(cursors_read([synced])) == [(1, 1, cursor(1))]
        assert 0 <= synced["ages"]["1"] <= 30_000


def test_racing_writers_at_the_due_moment_send_a_held_renewal_once(rig: Rig) -> None:
    rt, _, _ = rig
    scene, _ = room(rt, ("ann", "editor"), ("bob", "editor"), ("cal", "editor"))
    t = now_ms()
    for user, client in (("ann", 1), ("bob", 2), ("cal", 3)):
        prime(rt, scene, user, t - 20_000, (client, 1, cursor(client)))
    assert prime(rt, scene, "ann", t - 5_000, (1, 2, cursor(1))).roster is None  # held
    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def move(user: str, client: int) -> None:
        start.wait()
        results[user] = prime(rt, scene, user, t, (client, 2, cursor(10 * client)))

    threads = [threading.Thread(target=move, args=args) for args in (("bob", 2), ("cal", 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rosters = [r.roster for r in results.values() if r.roster is not None]
    # Exactly one write takes the roster (both would be twice the messages; none would let
    # ann's cursor time out), and it carries ann's held renewal.
    assert len(rosters) == 1
    assert (1, 2) in [(e.client_id, e.clock) for e in rosters[0]]


def test_a_huge_frame_of_fields_the_protocol_does_not_have_costs_nothing_but_parsing(rig: Rig) -> None:
    rt, recorder, _ = rig
    _, who = room(rt, ("ann", "editor"), ("bob", "editor"))
    junk = base64.b64encode(b"\x00" * 20_000).decode()
    frame = update_with(
        typed("OK", 1), awareness=aw_data((1, 1, cursor(1))), ages=junk, combined=junk, extra=[junk]
    )
    session.handle_message(rt, who["ann"], frame)
    assert errors(recorder, "ann=") == []
    (relayed,) = [m for m in recorder.sent["bob="] if m["type"] == "update"]
    assert set(relayed) <= {"type", "data", "awareness", "ages"}
    assert len(json.dumps(relayed)) < 1_000
