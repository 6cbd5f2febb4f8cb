"""One set of presence behaviours (docs/design.md §4 invariants 6 and 9), run against both
stores: AwarenessStore in a real Redis and AwarenessTable in moto's DynamoDB. These are
the cases of test_awareness.py, test_awareness_limits.py, test_awareness_ownership.py and
test_script_retries.py that do not look inside Redis (those files stay as they are, and
keep checking the Redis layout and both Redis shapes). The scene's bookkeeping is
looked at through `Backend.tracked` and `Backend.owned`, which also check that each
store's records agree with each other."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from collab import protocol
from collab.awareness import AwarenessEntry, AwarenessStore, RosterPolicy, decode_update, encode_update
from collab.awareness_table import CONN_PREFIX, ID_PREFIX, SCENE, AwarenessTable
from collab.cache import Cache, connect, scene_key
from collab.errors import BadRequest, TooLarge
from tests.core.test_awareness_rosters import CHECK_MS, OUTDATED_MS, room, state

NOW = 1_764_000_000_000
MINUTE = 60_000
A, B = "connA=", "connB="
TAB, OTHER, RECONNECTED = "tab=", "other=", "again="
ZOE, MALLORY = "user-zoe", "user-mallory"
ZOE_STATE = '{"user":{"name":"Zoë 🎬","color":"#ff8800"}}'
# y-protocols 1.0.7: clients 7 and 3141592653 in one update (test_awareness.py).
VECTOR_TWO = bytes.fromhex(
    "020701227b22637572736f72223a7b22616e63686f72223a312c2268656164223a3330307d7dcdcc83da0b012f7b"
    "2275736572223a7b226e616d65223a225a6fc3ab20f09f8eac222c22636f6c6f72223a2223666638383030227d7d"
)

Store = AwarenessStore | AwarenessTable


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


def frame_data(entries: list[AwarenessEntry]) -> str:
    return base64.b64encode(protocol.awareness_message(encode_update(entries))).decode()


@dataclass
class Backend:
    make: Callable[..., Store]
    tracked: Callable[[str], int]  # client ids the scene holds, tombstones included
    owned: Callable[[str, str], list[int]]  # the ids a connection owns
    scenes: list[str] = field(default_factory=list)

    def scene(self) -> str:
        scene_id = f"s-{uuid.uuid4().hex}"
        self.scenes.append(scene_id)
        return scene_id


def redis_backend(cache: Cache) -> Backend:
    def tracked(scene_id: str) -> int:
        parts = ("clock", "state", "conn", "user")
        sizes = {cache.hlen(scene_key(scene_id, f"aw:{part}")) for part in parts}
        sizes.add(cache.zcard(scene_key(scene_id, "aw:seen")))
        assert len(sizes) == 1, "the per-id records disagree"
        return sizes.pop()

    def owned(scene_id: str, connection_id: str) -> list[int]:
        ids = cache.hget(scene_key(scene_id, "aw:owned"), connection_id) or b""
        return [int(i) for i in ids.decode().split(",") if i]

    return Backend(lambda **limits: AwarenessStore(cache, **limits), tracked, owned)


def table_backend(db: Any, table: str) -> Backend:
    def items(scene_id: str, prefix: str) -> list[dict[str, Any]]:
        return list(
            db.query(
                TableName=table,
                KeyConditionExpression="sceneId = :s AND begins_with(sk, :p)",
                ExpressionAttributeValues={":s": {"S": scene_id}, ":p": {"S": prefix}},
                ConsistentRead=True,
            )["Items"]
        )

    def tracked(scene_id: str) -> int:
        ids = items(scene_id, ID_PREFIX)
        scenes = [item for item in items(scene_id, SCENE) if item["sk"]["S"] == SCENE]
        # The scene item's count and tombstones are what the caps read: they must be exact.
        n = int(scenes[0]["n"]["N"]) if scenes else 0
        tombs = {p.split("@")[0] for p in scenes[0]["tombs"]["S"].split(",") if p} if scenes else set()
        assert n == len(ids), "the scene's count disagrees with its ids"
        assert tombs == {i["sk"]["S"][len(ID_PREFIX) :] for i in ids if i["state"]["S"] == "null"}
        return len(ids)

    def owned(scene_id: str, connection_id: str) -> list[int]:
        found = db.get_item(
            TableName=table,
            Key={"sceneId": {"S": scene_id}, "sk": {"S": CONN_PREFIX + connection_id}},
            ConsistentRead=True,
        ).get("Item")
        return [int(i) for i in found["ids"]["S"].split(",") if i] if found else []

    return Backend(lambda **limits: AwarenessTable(db, table, **limits), tracked, owned)


@pytest.fixture(params=["redis", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "dynamodb":
        tables = request.getfixturevalue("aws_tables")  # fresh tables: nothing to clean up
        yield table_backend(boto3.client("dynamodb", region_name="us-east-1"), tables["DOCUMENTS_TABLE"])
        return
    cache = connect(request.getfixturevalue("redis_standalone"), False)
    made = redis_backend(cache)
    yield made
    for scene_id in made.scenes:  # the server is shared by the whole session
        for key in list(cache.scan_iter(match=scene_key(scene_id, "aw:*"))):
            cache.delete(key)
    cache.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.make()


@pytest.fixture
def scene(backend: Backend) -> str:
    return backend.scene()


# ---------------------------------------------------------------------------- clocks and states


def test_set_update_remove(store: Store, scene: str) -> None:
    assert store.current(scene, NOW) == []
    assert store.apply(scene, A, [entry(1, 1, '{"n":"a"}')], NOW) == [entry(1, 1, '{"n":"a"}')]
    assert store.current(scene, NOW) == [entry(1, 1, '{"n":"a"}')]
    assert store.apply(scene, A, [entry(1, 2, '{"n":"b"}')], NOW + 1) == [entry(1, 2, '{"n":"b"}')]
    assert store.apply(scene, B, [entry(2, 1, ZOE_STATE)], NOW + 1) == [entry(2, 1, ZOE_STATE)]
    assert store.current(scene, NOW + 2) == [entry(1, 2, '{"n":"b"}'), entry(2, 1, ZOE_STATE)]
    assert store.apply(scene, A, [entry(1, 3)], NOW + 3) == [entry(1, 3)]
    assert store.current(scene, NOW + 4) == [entry(2, 1, ZOE_STATE)]


def test_several_entries_in_one_update(store: Store, scene: str) -> None:
    accepted = store.apply(scene, A, decode_update(VECTOR_TWO), NOW)
    assert accepted == decode_update(VECTOR_TWO)
    assert encode_update(store.current(scene, NOW)) == VECTOR_TWO


def test_the_same_client_twice_in_one_update(store: Store, scene: str) -> None:
    # Applied in order, as the script does: both win, the later one is what stays.
    assert store.apply(scene, A, [entry(1, 1, '{"v":1}'), entry(1, 2, '{"v":2}')], NOW) == [
        entry(1, 1, '{"v":1}'),
        entry(1, 2, '{"v":2}'),
    ]
    assert store.apply(scene, A, [entry(1, 3, '{"v":3}'), entry(1, 3, '{"v":"x"}')], NOW) == [
        entry(1, 3, '{"v":3}')
    ]
    assert store.current(scene, NOW) == [entry(1, 3, '{"v":3}')]


def test_lower_clock_is_ignored(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW)
    assert store.apply(scene, A, [entry(1, 3, '{"v":3}')], NOW + 1) == []
    assert store.current(scene, NOW + 2) == [entry(1, 5, '{"v":5}')]


def test_equal_clock_only_removes(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW)
    assert store.apply(scene, A, [entry(1, 5, '{"v":"other"}')], NOW) == []
    assert store.apply(scene, A, [entry(1, 5)], NOW) == [entry(1, 5)]
    assert store.apply(scene, A, [entry(1, 5)], NOW) == []
    assert store.current(scene, NOW) == []


def test_clock_zero_of_an_unknown_client_is_ignored(store: Store, scene: str) -> None:
    assert store.apply(scene, A, [entry(1, 0, "{}")], NOW) == []
    assert store.apply(scene, A, [entry(1, 1, "{}")], NOW) == [entry(1, 1, "{}")]


def test_a_removal_keeps_a_tombstone(backend: Backend, store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW)
    store.apply(scene, A, [entry(1, 5)], NOW + 1)
    assert store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW + 2) == []
    assert store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW + 2) == []
    assert store.current(scene, NOW + 3) == []
    assert backend.tracked(scene) == 1
    assert store.apply(scene, A, [entry(1, 6, '{"v":6}')], NOW + 3) == [entry(1, 6, '{"v":6}')]
    assert backend.tracked(scene) == 1


def test_states_expire_after_30_seconds(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW + 20_000)
    assert store.current(scene, NOW + 29_999) == [entry(1, 1, "{}"), entry(2, 1, "{}")]
    assert store.current(scene, NOW + 30_000) == [entry(2, 1, "{}")]
    store.apply(scene, A, [entry(1, 2, "{}")], NOW + 31_000)
    assert store.current(scene, NOW + 50_000) == [entry(1, 2, "{}")]
    assert store.apply(scene, A, [entry(1, 2, '{"old":1}')], NOW + 90_000) == []


def test_large_state_is_refused(backend: Backend, scene: str) -> None:
    store = backend.make(max_state_bytes=100)
    with pytest.raises(TooLarge):
        store.apply(scene, A, [entry(1, 1, "{}"), entry(2, 1, '"' + "é" * 50 + '"')], NOW)
    assert store.current(scene, NOW) == []


def test_empty_update_and_default_clock(store: Store, scene: str) -> None:
    assert store.apply(scene, A, [], NOW) == []
    store.apply(scene, A, [entry(1, 1, "{}")])
    assert store.current(scene) == [entry(1, 1, "{}")]


# ---------------------------------------------------------------------------- connections


def test_a_connection_cannot_touch_another_connections_client(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, '{"who":"a"}')], NOW)
    assert store.apply(scene, B, [entry(1, 2, '{"who":"b"}')], NOW + 1) == []
    assert store.apply(scene, B, [entry(1, 9)], NOW + 1) == []
    assert store.apply(scene, B, [entry(1, 10), entry(2, 1, "{}")], NOW + 1) == [entry(2, 1, "{}")]
    assert store.current(scene, NOW + 2) == [entry(1, 1, '{"who":"a"}'), entry(2, 1, "{}")]
    assert store.remove_connection(scene, B, NOW + 3) == [entry(2, 2)]
    assert store.current(scene, NOW + 4) == [entry(1, 1, '{"who":"a"}')]


def test_remove_connection(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 7, '{"a":1}'), entry(2, 3, '{"a":2}'), entry(3, 2, "{}")], NOW)
    store.apply(scene, A, [entry(3, 3)], NOW)
    store.apply(scene, B, [entry(4, 1, '{"b":1}')], NOW)
    removals = store.remove_connection(scene, A, NOW + 1)
    assert sorted(removals, key=lambda e: e.client_id) == [entry(1, 8), entry(2, 4)]
    assert store.current(scene, NOW + 2) == [entry(4, 1, '{"b":1}')]
    assert store.apply(scene, A, [entry(1, 7, '{"a":1}')], NOW + 3) == []
    assert store.apply(scene, A, [entry(1, 50, '{"a":1}'), entry(9, 1, "{}")], NOW + 3) == []
    assert store.current(scene, NOW + 4) == [entry(4, 1, '{"b":1}')]
    assert store.remove_connection(scene, A, NOW + 5) == []


def test_a_connection_that_never_wrote_stays_ended(store: Store, scene: str) -> None:
    assert store.remove_connection(scene, A, NOW) == []
    assert store.apply(scene, A, [entry(1, 1, "{}")], NOW + 1) == []
    assert store.current(scene, NOW + 2) == []


def test_the_same_client_returns_on_a_new_connection(store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW)
    assert store.remove_connection(scene, A, NOW + 1) == [entry(1, 5)]
    assert store.apply(scene, B, [entry(1, 5, '{"v":4}')], NOW + 2) == []
    assert store.apply(scene, B, [entry(1, 6, '{"v":6}')], NOW + 2) == [entry(1, 6, '{"v":6}')]
    assert store.remove_connection(scene, B, NOW + 3) == [entry(1, 7)]


def test_a_quiet_background_tab_keeps_its_client_id(store: Store, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 1, '{"who":"zoe"}')], NOW, user_id=ZOE)
    for late in (30 * 1000, 5 * MINUTE, 10 * MINUTE - 1):
        assert store.apply(scene, OTHER, [entry(1, 50, '{"who":"m"}')], NOW + late, user_id=MALLORY) == []
        assert store.apply(scene, OTHER, [entry(1, 51)], NOW + late, user_id=MALLORY) == []
    assert store.current(scene, NOW + 10 * MINUTE - 1) == []
    assert store.apply(scene, TAB, [entry(1, 2, '{"who":"zoe"}')], NOW + 10 * MINUTE - 1, user_id=ZOE) == [
        entry(1, 2, '{"who":"zoe"}')
    ]
    assert store.current(scene, NOW + 10 * MINUTE) == [entry(1, 2, '{"who":"zoe"}')]


def test_an_owner_silent_past_the_idle_timeout_is_dead(store: Store, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 4, '{"v":4}')], NOW, user_id=ZOE)
    assert store.apply(scene, OTHER, [entry(1, 5, '{"v":5}')], NOW + 10 * MINUTE, user_id=MALLORY) == [
        entry(1, 5, '{"v":5}')
    ]
    assert store.apply(scene, TAB, [entry(1, 6, '{"v":"a"}')], NOW + 10 * MINUTE + 1, user_id=ZOE) == []


def test_the_same_user_takes_its_client_id_back_at_once(store: Store, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 4, '{"cursor":1}')], NOW, user_id=ZOE)
    assert store.apply(scene, RECONNECTED, [entry(1, 5, '{"cursor":2}')], NOW + 1, user_id=ZOE) == [
        entry(1, 5, '{"cursor":2}')
    ]
    assert store.apply(scene, TAB, [entry(1, 4, '{"cursor":1}')], NOW + 3, user_id=ZOE) == []
    assert store.remove_connection(scene, TAB, NOW + 4) == []
    assert store.current(scene, NOW + 5) == [entry(1, 5, '{"cursor":2}')]
    assert store.remove_connection(scene, RECONNECTED, NOW + 6) == [entry(1, 6)]


def test_another_user_cannot_take_a_live_owners_id(store: Store, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 1, '{"who":"zoe"}')], NOW, user_id=ZOE)
    assert store.apply(scene, OTHER, [entry(1, 2, '{"who":"m"}')], NOW + 1, user_id=MALLORY) == []
    assert store.apply(scene, OTHER, [entry(1, 3, '{"who":"?"}')], NOW + 1) == []
    store.apply(scene, "anon=", [entry(2, 1, "{}")], NOW)
    assert store.apply(scene, OTHER, [entry(2, 2, '{"x":1}')], NOW + 1) == []
    assert store.current(scene, NOW + 2) == [entry(1, 1, '{"who":"zoe"}'), entry(2, 1, "{}")]


def test_a_taken_back_id_moves_to_the_new_connection(backend: Backend, scene: str) -> None:
    store = backend.make(max_ids_per_connection=2)
    store.apply(scene, TAB, [entry(1, 1, "{}"), entry(2, 1, "{}")], NOW, user_id=ZOE)
    store.apply(scene, RECONNECTED, [entry(2, 2, "{}")], NOW + 1, user_id=ZOE)
    assert store.apply(scene, TAB, [entry(3, 1, "{}")], NOW + 2, user_id=ZOE) == [entry(3, 1, "{}")]
    assert store.apply(scene, RECONNECTED, [entry(4, 1, "{}")], NOW + 2, user_id=ZOE) == [entry(4, 1, "{}")]
    assert backend.owned(scene, TAB) == [1, 3]
    assert backend.owned(scene, RECONNECTED) == [2, 4]


def test_an_ended_owners_ids_are_free_for_anyone(store: Store, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 4, '{"v":4}'), entry(2, 1)], NOW, user_id=ZOE)
    assert store.remove_connection(scene, TAB, NOW + 1) == [entry(1, 5)]
    assert store.apply(scene, OTHER, [entry(1, 6, '{"v":6}')], NOW + 2, user_id=MALLORY) == [
        entry(1, 6, '{"v":6}')
    ]
    # Its tombstone too (it was already removed when the connection ended).
    assert store.apply(scene, OTHER, [entry(2, 2, "{}")], NOW + 2, user_id=MALLORY) == [entry(2, 2, "{}")]


# ---------------------------------------------------------------------------- caps


def test_decode_is_the_codec_with_its_caps(backend: Backend) -> None:
    store = backend.make(max_message_bytes=3000, max_state_bytes=4000)
    entries = [entry(3141592653, 1, '{"user":{"name":"Zoë"}}'), entry(7, 2)]
    assert store.decode(frame_data(entries)) == entries
    with pytest.raises(TooLarge, match="at most 3000 bytes"):
        store.decode(frame_data([entry(1, 1, '"' + "x" * 3000 + '"')]))
    with pytest.raises(TooLarge):
        store.decode("!" * 5000)
    with pytest.raises(BadRequest):
        store.decode("!" * 100)
    with pytest.raises(BadRequest, match="awareness message"):
        store.decode(base64.b64encode(protocol.sync_step1(b"\x00")).decode())
    with pytest.raises(TooLarge):
        store.decode(frame_data([entry(i, 1, "{}") for i in range(1, 10)]))


def test_apply_refuses_more_entries_than_the_cap(backend: Backend, scene: str) -> None:
    store = backend.make(max_entries=2)
    with pytest.raises(TooLarge):
        store.apply(scene, "A=", [entry(1, 1, "{}"), entry(2, 1, "{}"), entry(3, 1, "{}")], NOW)
    assert store.current(scene, NOW) == []


def test_client_ids_per_connection(backend: Backend, scene: str) -> None:
    store = backend.make(max_ids_per_connection=3)
    for client_id in (1, 2, 3):
        assert store.apply(scene, "A=", [entry(client_id, 1, "{}")], NOW) == [entry(client_id, 1, "{}")]
    with pytest.raises(TooLarge, match="at most 3 awareness client ids"):
        store.apply(scene, "A=", [entry(4, 1, "{}")], NOW)
    with pytest.raises(TooLarge):
        store.apply(scene, "A=", [entry(1, 2, '{"renewed":1}'), entry(5, 1, "{}")], NOW + 1)
    assert [e.client_id for e in store.current(scene, NOW + 1)] == [1, 2, 3]
    assert store.current(scene, NOW + 1)[0] == entry(1, 1, "{}")
    assert store.apply(scene, "A=", [entry(1, 2, '{"renewed":1}'), entry(2, 2)], NOW + 2) == [
        entry(1, 2, '{"renewed":1}'),
        entry(2, 2),
    ]
    assert store.apply(scene, "A=", [entry(9, 1)], NOW + 2) == []
    assert store.apply(scene, "B=", [entry(4, 1, "{}")], NOW + 3) == [entry(4, 1, "{}")]
    store.remove_connection(scene, "A=", NOW + 4)
    for clock, client_id in enumerate((1, 2), start=5):
        assert store.apply(scene, "B=", [entry(client_id, clock, "{}")], NOW + 5) != []
    with pytest.raises(TooLarge):
        store.apply(scene, "B=", [entry(3, 9, "{}")], NOW + 5)


def test_states_per_scene_every_connection_counts(backend: Backend, scene: str) -> None:
    store = backend.make(max_states=5)
    for n in range(5):
        store.apply(scene, f"c{n}=", [entry(100 + n, 1, "{}")], NOW)
    with pytest.raises(TooLarge, match=r"most awareness states allowed \(5\)"):
        store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 1)
    assert len(store.current(scene, NOW + 1)) == 5
    with pytest.raises(TooLarge):
        store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 60_000)
    store.apply(scene, "c0=", [entry(100, 2)], NOW + 60_001)
    assert store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 60_002) == [entry(200, 1, "{}")]
    assert backend.tracked(scene) == 5
    store.remove_connection(scene, "c1=", NOW + 60_003)
    assert store.apply(scene, "later=", [entry(201, 1, "{}")], NOW + 60_004) == [entry(201, 1, "{}")]
    assert backend.tracked(scene) == 5
    # Owners silent for 10 minutes are dead: once a sync has read the scene (every
    # newcomer's first message), their ids are forgotten and make room.
    store.current(scene, NOW + 600_000)
    assert store.apply(scene, "new=", [entry(300, 1, "{}")], NOW + 600_000) == [entry(300, 1, "{}")]
    assert backend.tracked(scene) == 3


def test_removals_are_never_refused_in_a_full_scene(backend: Backend, scene: str) -> None:
    store = backend.make(max_states=2)
    store.apply(scene, "A=", [entry(1, 1, "{}")], NOW)
    store.apply(scene, "B=", [entry(2, 1, "{}")], NOW)
    assert store.apply(scene, "C=", [entry(3, 4)], NOW + 1) == []
    assert backend.tracked(scene) == 2
    assert store.apply(scene, "A=", [entry(1, 2)], NOW + 2) == [entry(1, 2)]


def test_churn_keeps_the_scene_within_its_cap(backend: Backend, scene: str) -> None:
    # Page reloads: a new Yjs client id on a new connection each time, the old connection's
    # end noticed a little late. (Fewer than test_awareness_limits' 1,000: moto is slower.)
    store = backend.make(max_states=20)
    for n in range(120):
        now = NOW + n * 100
        assert store.apply(scene, f"load{n}=", [entry(10_000 + n, 1, f'{{"n":{n}}}')], now) != []
        if n >= 3:
            store.remove_connection(scene, f"load{n - 3}=", now + 50)
        if n % 7 == 0:
            assert backend.tracked(scene) <= 20
    assert backend.tracked(scene) == 20
    assert [e.client_id for e in store.current(scene, NOW + 120 * 100)] == [10_117, 10_118, 10_119]


def test_old_entries_are_pruned(backend: Backend, store: Store, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, A, [entry(2, 1, "{}")], NOW + 500_000)
    store.current(scene, NOW + 600_000)
    assert backend.tracked(scene) == 1
    assert backend.owned(scene, A) == [2]


def test_current_forgets_ids_unwritten_for_ten_minutes(backend: Backend, store: Store, scene: str) -> None:
    for n in range(20):
        store.apply(scene, f"c{n}=", [entry(n + 1, 1, "{}")], NOW + n * 1000)
    assert backend.tracked(scene) == 20
    assert store.current(scene, NOW + 600_000 + 9_500) == []
    assert backend.tracked(scene) == 10
    assert store.current(scene, NOW + 700_000) == []
    assert backend.tracked(scene) == 0
    assert all(backend.owned(scene, f"c{n}=") == [] for n in range(20))


# ---------------------------------------------------------------------------- retries


def test_apply_run_twice_returns_what_was_accepted(store: Store, scene: str) -> None:
    update = [entry(1, 3, '{"cursor":7}'), entry(2, 1, "{}")]
    first = store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-1")
    assert first == update
    assert store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-1") == first
    assert store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-2") == []
    assert store.current(scene, NOW) == update


def test_remove_connection_run_twice_returns_the_removals(store: Store, scene: str) -> None:
    store.apply(scene, "A=", [entry(1, 3, "{}"), entry(2, 8, "{}")], NOW)
    first = store.remove_connection(scene, "A=", NOW + 1, request_id="bye")
    assert sorted(first, key=lambda e: e.client_id) == [entry(1, 4), entry(2, 9)]
    assert store.remove_connection(scene, "A=", NOW + 1, request_id="bye") == first
    assert store.remove_connection(scene, "A=", NOW + 1, request_id="other") == []
    assert store.current(scene, NOW + 2) == []


# ---------------------------------------------------------------------------- held renewals and rosters
# (docs/presence.md; the cases of test_awareness_rosters.py, and its simulated room)


def test_a_renewal_is_marked_and_held_a_change_is_not(store: Store, scene: str) -> None:
    policy = RosterPolicy()
    store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 1, state(1))], 0, policy=policy)
    store.apply_holding_renewals(scene, "c2", [AwarenessEntry(2, 1, state(2))], 1_000, policy=policy)
    store.apply_holding_renewals(scene, "c3", [AwarenessEntry(3, 1, state(3))], 2_000, policy=policy)
    renewed = store.apply_holding_renewals(
        scene, "c1", [AwarenessEntry(1, 2, state(1))], 3_000, policy=policy
    )
    assert [e.renewal for e in renewed.accepted] == [True]
    assert renewed.to_forward == []
    assert renewed.roster is None
    moved = store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 3, state(9))], 4_000, policy=policy)
    assert [e.renewal for e in moved.accepted] == [False]
    assert moved.to_forward == [AwarenessEntry(1, 3, state(9))]


def test_a_roster_carries_every_live_state_with_its_age_once(store: Store, scene: str) -> None:
    policy = RosterPolicy()
    for n in (1, 2, 3):
        store.apply_holding_renewals(scene, f"c{n}", [AwarenessEntry(n, 1, state(n))], n * 100, policy=policy)
    held = store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 2, state(1))], 15_100, policy=policy)
    assert held.roster is None
    retry_id = uuid.uuid4().hex
    last = store.apply_holding_renewals(
        scene, "c2", [AwarenessEntry(2, 2, state(2))], 15_200, policy=policy, request_id=retry_id
    )
    assert last.roster is not None
    assert [(e.client_id, e.clock, e.age_ms) for e in last.roster] == [(1, 2, 100), (2, 2, 0), (3, 1, 14_900)]
    replay = store.apply_holding_renewals(
        scene, "c2", [AwarenessEntry(2, 2, state(2))], 15_350, policy=policy, request_id=retry_id
    )
    assert replay == last and replay.roster == last.roster
    told = store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 3, state(1))], 16_000, policy=policy)
    assert told.roster is None


def test_the_only_writer_gets_its_renewal_out_before_the_deadline(store: Store, scene: str) -> None:
    policy = RosterPolicy()
    store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 1, state(1))], 0, policy=policy)
    renewed = store.apply_holding_renewals(
        scene, "c1", [AwarenessEntry(1, 2, state(1))], 15_000, policy=policy
    )
    assert renewed.roster is not None


def test_plain_apply_never_holds(store: Store, scene: str) -> None:
    store.apply(scene, "c1", [AwarenessEntry(1, 1, state(1))], 0)
    store.apply(scene, "c2", [AwarenessEntry(2, 1, state(2))], 0)
    [accepted] = store.apply(scene, "c1", [AwarenessEntry(1, 2, state(1))], 15_000)
    assert accepted == AwarenessEntry(1, 2, state(1)) and accepted.renewal
    # Told as it was forwarded: a held renewal of it later is due only 30 s after this.
    store.apply(scene, "c2", [AwarenessEntry(2, 2, state(2))], 15_000)
    later = store.apply_holding_renewals(scene, "c1", [AwarenessEntry(1, 3, state(1))], 16_000)
    assert later.roster is None and later.to_forward == []


@pytest.mark.parametrize("layout", ["random", "together"])
def test_a_quiet_room_never_drops_a_live_cursor(store: Store, scene: str, layout: str) -> None:
    rng = random.Random(5)
    phases = [rng.randrange(0, 1_000 if layout == "together" else 18_000, 100) for _ in range(5)]
    quiet = room(store, scene, phases)  # type: ignore[arg-type]
    quiet.count_from_ms = 60_000
    quiet.run(150_000)
    assert quiet.dropped_live == []
    assert quiet.messages_out / 90 < 5 * 4 / 15  # fewer than relaying every renewal


def test_a_gone_cursor_is_dropped_within_30_s_of_its_last_renewal(store: Store, scene: str) -> None:
    rng = random.Random(105)
    quiet = room(store, scene, [rng.randrange(0, 18_000, 100) for _ in range(5)])  # type: ignore[arg-type]
    gone = quiet.clients[0]
    gone.gone_at = 61_000
    quiet.run(130_000)
    assert quiet.dropped_live == []
    assert quiet.dropped_gone[gone.client_id] - gone.last_write <= OUTDATED_MS + CHECK_MS
