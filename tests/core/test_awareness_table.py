"""AwarenessTable in moto's DynamoDB, beyond the behaviours it shares with the Redis store
(test_awareness_stores.py): its items (where they live, their TTL, what a renewal costs),
the `renewal` flag, lost responses, and the races a Lua script excludes and a read-then-write store has to: each is driven with pause points between a
call's decision and its write."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from collab import client_ids, durable_chunks, durable_log
from collab.awareness import AwarenessEntry, AwarenessStore
from collab.awareness_table import (
    CONN_PREFIX,
    CONNECTION_SECONDS,
    HELD_ROSTER,
    ID_PREFIX,
    MAX_ATTEMPTS,
    SCENE,
    AwarenessContended,
    AwarenessTable,
)
from collab.blobs import BlobStore
from collab.cache import connect, scene_key
from collab.errors import TooLarge
from tests.core.test_awareness_rosters import room
from tests.support.faults import LoseResponses, on_call
from tests.support.pause import PausePoints

NOW = 1_764_000_000_000
MINUTE = 60_000
A, B = "connA=", "connB="
ZOE = "user-zoe"


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


@pytest.fixture
def db(aws_tables: dict[str, str]) -> Any:
    # As runtime.py configures it: botocore retries a call whose response was lost.
    return boto3.client(
        "dynamodb", region_name="us-east-1", config=Config(retries={"max_attempts": 3, "mode": "standard"})
    )


@pytest.fixture
def table(aws_tables: dict[str, str]) -> str:
    return aws_tables["DOCUMENTS_TABLE"]


@pytest.fixture
def store(db: Any, table: str) -> AwarenessTable:
    return AwarenessTable(db, table)


@pytest.fixture
def scene() -> str:
    return f"scene-{uuid.uuid4().hex[:8]}"


def items(db: Any, table: str, scene_id: str, prefix: str | None = None) -> dict[str, dict[str, Any]]:
    """The scene's items whose sort key begins with `prefix` (None: all of them)."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "sceneId = :s",
        "ExpressionAttributeValues": {":s": {"S": scene_id}},
        "ConsistentRead": True,
    }
    if prefix is not None:
        query["KeyConditionExpression"] += " AND begins_with(sk, :p)"
        query["ExpressionAttributeValues"][":p"] = {"S": prefix}
    return {item["sk"]["S"]: item for item in db.query(**query)["Items"]}


def scene_count(db: Any, table: str, scene_id: str) -> int:
    return int(items(db, table, scene_id, SCENE)[SCENE]["n"]["N"])


class Calls:
    """The DynamoDB operations a client makes."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        on_call(client, self.names.append)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `call` in a thread; its result (or exception) lands in the dict."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def paused(
    point: str, call: Callable[[PausePoints], Any]
) -> tuple[PausePoints, threading.Thread, dict[str, Any]]:
    """Start `call` with a store that stops at `point`; return once it is there."""
    pause = PausePoints()
    pause.arm(point)
    thread, result = in_thread(lambda: call(pause))
    pause.wait_reached(point)
    return pause, thread, result


def finish(pause: PausePoints, point: str, thread: threading.Thread, result: dict[str, Any]) -> Any:
    pause.release(point)
    thread.join(30)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    return result["value"]


# ---------------------------------------------------------------------------- items


def test_presence_is_invisible_to_every_other_reader_of_the_documents_table(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply_holding_renewals(scene, A, [entry(1, 1, "{}"), entry(2, 1)], NOW - 15_000, user_id=ZOE)
    # A held renewal with no other writer to count on: a roster is due, and recorded.
    assert store.apply_holding_renewals(scene, A, [entry(1, 2, "{}")], NOW, user_id=ZOE).roster
    store.remove_connection(scene, A, NOW + 1)
    sort_keys = set(items(db, table, scene))
    assert sort_keys == {SCENE, ID_PREFIX + "1", ID_PREFIX + "2", CONN_PREFIX + A, HELD_ROSTER}
    # What the other modules query or read by key in the same partition.
    others = (
        durable_log.LOG_PREFIX,
        durable_log.SNAP_PREFIX,
        durable_chunks.PREFIX,
        client_ids.CLIENT_PREFIX,
    )
    assert not any(sk.startswith(prefix) for sk in sort_keys for prefix in others)
    assert durable_log.HEAD not in sort_keys
    log = durable_log.DurableLog(db, table, BlobStore(None, None))
    assert log.read_log(scene) == []
    assert log.read_head(scene) == durable_log.Head(0, None)
    assert client_ids.ClientIds(db, table).owners(scene, [1, 2]) == {}


def test_every_item_expires(db: Any, table: str, store: AwarenessTable, scene: str) -> None:
    store.apply_holding_renewals(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply_holding_renewals(scene, B, [entry(2, 1, "{}")], NOW)
    # 1's renewal is held, and B's next write is the only one left to count on: a roster.
    assert store.apply_holding_renewals(scene, A, [entry(1, 2, "{}")], NOW + 15_000).roster
    store.remove_connection(scene, A, NOW + 15_000)
    found = items(db, table, scene)
    assert len(found) == 6  # the scene, two ids, two connections, the roster
    ttl = store.ttl_seconds
    written_late = {SCENE, ID_PREFIX + "1", CONN_PREFIX + A, HELD_ROSTER}  # at NOW + 15 s
    for sort_key, item in found.items():
        expires = int(item["expiresAt"]["N"])
        written_s = (NOW + (15_000 if sort_key in written_late else 0)) // 1000
        # The roster past the live states it told of and a retry of its call; ids past the
        # idle timeout (after which the store forgets them itself); the scene and
        # connections past a connection's longest life.
        if sort_key == HELD_ROSTER:
            assert expires == written_s + ttl
            continue
        limit = written_s + (2 * ttl if sort_key.startswith(ID_PREFIX) else CONNECTION_SECONDS + ttl)
        assert written_s + ttl < expires <= limit, sort_key


def test_a_renewal_is_one_read_and_one_conditional_put(db: Any, table: str, scene: str) -> None:
    store = AwarenessTable(db, table)
    store.apply(scene, A, [entry(1, 1, '{"cursor":1}')], NOW)
    calls = Calls(db)
    assert store.apply(scene, A, [entry(1, 2, '{"cursor":1}')], NOW + 15_000) != []
    assert calls.names == ["BatchGetItem", "PutItem"]
    calls.names.clear()
    assert store.apply(scene, A, [entry(1, 3, '{"cursor":2}')], NOW + 16_000) != []
    assert calls.names == ["BatchGetItem", "PutItem"]
    # A new id changes hands and the scene's count: read it, then one transaction.
    calls.names.clear()
    store.apply(scene, A, [entry(2, 1, "{}")], NOW + 16_000)
    assert calls.names == ["BatchGetItem", "BatchGetItem", "TransactWriteItems"]


def test_renewal_marks_an_accepted_entry_whose_state_did_not_change(
    store: AwarenessTable, scene: str
) -> None:
    [first] = store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW, user_id=ZOE)
    assert not first.renewal  # nothing was stored before
    [same] = store.apply(scene, A, [entry(1, 2, '{"c":1}')], NOW + 1, user_id=ZOE, request_id="r")
    assert same.renewal
    # A retry of that call answers the same, flag included.
    [again] = store.apply(scene, A, [entry(1, 2, '{"c":1}')], NOW + 1, user_id=ZOE, request_id="r")
    assert again.renewal
    [moved] = store.apply(scene, A, [entry(1, 3, '{"c":2}')], NOW + 2, user_id=ZOE)
    assert not moved.renewal
    # Another connection of the same user taking the id back is not a renewal either.
    [taken] = store.apply(scene, B, [entry(1, 4, '{"c":2}')], NOW + 3, user_id=ZOE)
    assert not taken.renewal
    [removed] = store.apply(scene, B, [entry(1, 5)], NOW + 4, user_id=ZOE)
    assert not removed.renewal
    [still_removed] = store.apply(scene, B, [entry(1, 6)], NOW + 5, user_id=ZOE)
    assert not still_removed.renewal  # as the Redis store: only a present state renews


def test_current_tells_each_states_age(store: AwarenessTable, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW + 4_000)
    assert [e.age_ms for e in store.current(scene, NOW + 5_000)] == [5_000, 1_000]


# ---------------------------------------------------------------------------- lost responses


def test_a_renewal_whose_response_was_lost(db: Any, table: str, store: AwarenessTable, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW)
    lose = LoseResponses(db, "PutItem")
    [accepted] = store.apply(scene, A, [entry(1, 2, '{"c":1}')], NOW + 1)
    assert lose.lost == 1
    assert accepted == entry(1, 2, '{"c":1}') and accepted.renewal


def test_a_new_id_whose_response_was_lost(db: Any, table: str, store: AwarenessTable, scene: str) -> None:
    lose = LoseResponses(db, "TransactWriteItems")
    update = [entry(1, 1, '{"c":1}'), entry(2, 3, "{}")]
    assert store.apply(scene, A, update, NOW) == update  # the retry failed on our own write
    assert lose.lost == 1
    assert store.current(scene, NOW) == update
    assert scene_count(db, table, scene) == 2


def test_a_removal_whose_response_was_lost(db: Any, table: str, store: AwarenessTable, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}"), entry(2, 5, "{}")], NOW)
    lose = LoseResponses(db, "TransactWriteItems")
    assert store.remove_connection(scene, A, NOW + 1) == [entry(1, 2), entry(2, 6)]
    assert lose.lost == 1


# ---------------------------------------------------------------------------- races


def test_reordered_invocations_of_one_connection(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW)
    # Clock 2 has decided to win and not written yet; clock 3, sent later, lands first.
    pause, thread, result = paused(
        "apply:decided",
        lambda p: AwarenessTable(db, table, pause=p).apply(scene, A, [entry(1, 2, '{"c":2}')], NOW + 1),
    )
    assert store.apply(scene, A, [entry(1, 3, '{"c":3}')], NOW + 2) == [entry(1, 3, '{"c":3}')]
    assert finish(pause, "apply:decided", thread, result) == []  # decided again: it lost
    assert store.current(scene, NOW + 3) == [entry(1, 3, '{"c":3}')]


def test_two_connections_of_one_user(db: Any, table: str, store: AwarenessTable, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW, user_id=ZOE)
    # The old connection's renewal decided; the reconnected page takes the id meanwhile.
    pause, thread, result = paused(
        "apply:decided",
        lambda p: AwarenessTable(db, table, pause=p).apply(
            scene, A, [entry(1, 2, '{"c":1}')], NOW + 1, user_id=ZOE
        ),
    )
    assert store.apply(scene, B, [entry(1, 3, '{"c":3}')], NOW + 2, user_id=ZOE) == [entry(1, 3, '{"c":3}')]
    assert finish(pause, "apply:decided", thread, result) == []
    assert store.current(scene, NOW + 3) == [entry(1, 3, '{"c":3}')]
    assert store.remove_connection(scene, A, NOW + 4) == []  # it owns nothing any more
    assert store.remove_connection(scene, B, NOW + 5) == [entry(1, 4)]


@pytest.mark.parametrize("first_write", ["new id", "renewal"])
def test_a_disconnect_landing_between_a_writes_decision_and_its_write(
    db: Any, table: str, store: AwarenessTable, scene: str, first_write: str
) -> None:
    if first_write == "renewal":  # the hot path: one conditional put of the id alone
        store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW)
    client = 2 if first_write == "new id" else 1
    pause, thread, result = paused(
        "apply:decided",
        lambda p: AwarenessTable(db, table, pause=p).apply(scene, A, [entry(client, 2, '{"c":2}')], NOW + 1),
    )
    removed = store.remove_connection(scene, A, NOW + 2)
    assert removed == ([] if first_write == "new id" else [entry(1, 2)])
    # Decided again, the write finds its connection gone: nothing comes back.
    assert finish(pause, "apply:decided", thread, result) == []
    assert store.current(scene, NOW + 3) == []


def test_a_write_landing_between_a_disconnects_decision_and_its_write(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply(scene, A, [entry(1, 1, '{"c":1}')], NOW)
    pause, thread, result = paused(
        "remove:decided", lambda p: AwarenessTable(db, table, pause=p).remove_connection(scene, A, NOW + 2)
    )
    assert store.apply(scene, A, [entry(1, 5, '{"c":5}'), entry(2, 1, "{}")], NOW + 1) != []
    # Decided again: it removes what is there now, above the clock that landed.
    assert finish(pause, "remove:decided", thread, result) == [entry(1, 6), entry(2, 2)]
    assert store.current(scene, NOW + 3) == []


def test_the_scene_cap_holds_for_newcomers_admitted_at_once(db: Any, table: str, scene: str) -> None:
    AwarenessTable(db, table, max_states=2).apply(scene, "first=", [entry(1, 1, "{}")], NOW)
    # Both read one state of two and decided to admit theirs; only one may.
    racers = [
        paused(
            "apply:decided",
            lambda p, n=n: AwarenessTable(db, table, max_states=2, pause=p).apply(  # type: ignore[misc]
                scene, f"new{n}=", [entry(10 + n, 1, "{}")], NOW + 1
            ),
        )
        for n in range(2)
    ]
    outcomes = []
    for pause, thread, result in racers:
        try:
            outcomes.append(finish(pause, "apply:decided", thread, result))
        except TooLarge as refused:
            outcomes.append(refused.code)
    assert sorted(map(str, outcomes)) == sorted(["too_large", str([entry(10, 1, "{}")])])
    assert len(AwarenessTable(db, table).current(scene, NOW + 2)) == 2
    assert scene_count(db, table, scene) == 2


def test_a_call_that_keeps_losing_its_race_gives_up(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    pause = PausePoints()

    def someone_else_writes() -> None:  # every time the call has decided
        db.update_item(
            TableName=table,
            Key={"sceneId": {"S": scene}, "sk": {"S": ID_PREFIX + "1"}},
            UpdateExpression="ADD ver :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    pause.on("apply:decided", someone_else_writes)
    with pytest.raises(AwarenessContended):
        AwarenessTable(db, table, pause=pause).apply(scene, A, [entry(1, 2, "{}")], NOW + 1)
    assert int(items(db, table, scene, ID_PREFIX)[ID_PREFIX + "1"]["ver"]["N"]) == 1 + MAX_ATTEMPTS
    assert store.current(scene, NOW + 1) == [entry(1, 1, "{}")]


# ---------------------------------------------------------------------------- the scene item


def test_current_repairs_the_scene_count_after_an_item_vanished(db: Any, table: str, scene: str) -> None:
    store = AwarenessTable(db, table, max_states=2)
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW)
    # DynamoDB's TTL deletes an item without telling the scene's count.
    db.delete_item(TableName=table, Key={"sceneId": {"S": scene}, "sk": {"S": ID_PREFIX + "2"}})
    with pytest.raises(TooLarge):
        store.apply(scene, "C=", [entry(3, 1, "{}")], NOW + 1)
    assert store.current(scene, NOW + 1) == [entry(1, 1, "{}")]
    assert scene_count(db, table, scene) == 1
    assert store.apply(scene, "C=", [entry(3, 1, "{}")], NOW + 2) == [entry(3, 1, "{}")]


def test_current_keeps_an_active_scenes_item_from_expiring(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    written = int(items(db, table, scene, SCENE)[SCENE]["expiresAt"]["N"])
    later = NOW + 11 * MINUTE  # renewals since, which do not write the scene item
    store.apply(scene, A, [entry(1, 2, "{}")], later - 1000)
    store.current(scene, later)
    assert int(items(db, table, scene, SCENE)[SCENE]["expiresAt"]["N"]) == written + 11 * 60
    store.current(scene, later + 1000)  # refreshed once, not on every call
    assert int(items(db, table, scene, SCENE)[SCENE]["expiresAt"]["N"]) == written + 11 * 60


def test_apply_reads_only_its_own_ids(db: Any, table: str, scene: str) -> None:
    # The script prunes the whole scene on every call; here `apply` stays within its own
    # ids (invariant 9), so silent owners' ids make room once a sync's `current` ran.
    store = AwarenessTable(db, table, max_states=2)
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW)
    with pytest.raises(TooLarge):
        store.apply(scene, "C=", [entry(3, 1, "{}")], NOW + 10 * MINUTE)
    assert store.current(scene, NOW + 10 * MINUTE) == []
    assert store.apply(scene, "C=", [entry(3, 1, "{}")], NOW + 10 * MINUTE) == [entry(3, 1, "{}")]


def test_rosters_are_decided_as_the_script_decides_them(
    db: Any, table: str, redis_standalone: str, scene: str
) -> None:
    # The same simulated room (test_awareness_rosters.py) on both stores: every message
    # the server would send, in order, is the same.
    cache = connect(redis_standalone, False)
    try:
        rng = random.Random(8)
        phases = [rng.randrange(0, 18_000, 100) for _ in range(8)]
        sent: dict[str, list[tuple[str, int, list[tuple[int, int, int | None]]]]] = {}
        for name, store in (("redis", AwarenessStore(cache)), ("dynamodb", AwarenessTable(db, table))):
            quiet = room(store, f"{scene}-{name}", phases)  # type: ignore[arg-type]
            quiet.clients[3].gone_at = 50_000
            log = sent[name] = []
            original = store.apply_holding_renewals

            def recording(*args: Any, original: Any = original, log: list[Any] = log, **kwargs: Any) -> Any:
                applied = original(*args, **kwargs)
                if applied.roster is not None:
                    log.append(
                        (
                            "roster" + ("+sender" if applied.roster_for_sender else ""),
                            args[3],
                            [(e.client_id, e.clock, e.age_ms) for e in applied.roster],
                        )
                    )
                log.append(("forward", args[3], [(e.client_id, e.clock, None) for e in applied.to_forward]))
                return applied

            store.apply_holding_renewals = recording  # type: ignore[method-assign]
            quiet.run(120_000)
            assert quiet.dropped_live == []
        assert sent["dynamodb"] == sent["redis"]
        assert any(kind.startswith("roster") for kind, _, _ in sent["redis"])
        assert any(kind == "roster+sender" for kind, _, _ in sent["redis"])
    finally:
        for key in list(cache.scan_iter(match=scene_key(f"{scene}-redis", "aw:*"))):
            cache.delete(key)
        cache.close()


def test_two_writers_due_a_roster_at_once_send_one(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply_holding_renewals(scene, A, [entry(1, 1, '{"c":1}')], 0)
    store.apply_holding_renewals(scene, B, [entry(2, 1, '{"c":2}')], 100)
    # Both renew at 15 s: each alone would find a roster due (one writer left to count on).
    pause, thread, result = paused(
        "roster:decided",
        lambda p: AwarenessTable(db, table, pause=p).apply_holding_renewals(
            scene, A, [entry(1, 2, '{"c":1}')], 15_000
        ),
    )
    other = store.apply_holding_renewals(scene, B, [entry(2, 2, '{"c":2}')], 15_000)
    assert other.roster is not None and [e.client_id for e in other.roster] == [1, 2]
    first = finish(pause, "roster:decided", thread, result)
    assert first.accepted == [entry(1, 2, '{"c":1}')] and first.roster is None  # told by the other's


def test_a_roster_whose_response_was_lost_is_still_sent(
    db: Any, table: str, store: AwarenessTable, scene: str
) -> None:
    store.apply_holding_renewals(scene, A, [entry(1, 1, '{"c":1}')], 0)
    lose = LoseResponses(db, "PutItem", times=2)  # the renewal's put, then the roster's
    applied = store.apply_holding_renewals(scene, A, [entry(1, 2, '{"c":1}')], 15_000)
    assert lose.lost == 2
    assert applied.to_forward == [] and applied.roster == [entry(1, 2, '{"c":1}')]
