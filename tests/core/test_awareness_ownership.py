"""Who may write a Yjs client id's presence (review M7, docs/design.md §4 invariant 6): only the
connection that introduced it while that connection lives, however quiet it is; the same
user at once from a new connection (a reconnect keeps the client id, and the old
connection's $disconnect may be lost); anyone once the owner has ended or stayed silent
past API Gateway's 10-minute idle timeout. Against real Redis, both shapes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from collab.awareness import AwarenessEntry, AwarenessStore
from collab.cache import Cache, scene_key

NOW = 1_764_000_000_000
MINUTE = 60_000
TAB, OTHER, RECONNECTED = "tab=", "other=", "again="
ZOE, MALLORY = "user-zoe", "user-mallory"


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


@pytest.fixture
def scene(cache: Cache) -> Iterator[str]:
    scene_id = f"s-{uuid.uuid4().hex}"
    yield scene_id
    for key in list(cache.scan_iter(match=scene_key(scene_id, "aw:*"))):
        cache.delete(key)


@pytest.fixture
def store(cache: Cache) -> AwarenessStore:
    return AwarenessStore(cache)


def test_a_quiet_background_tab_keeps_its_client_id(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 1, '{"who":"zoe"}')], NOW, user_id=ZOE)
    # Throttled timers: the tab renews about once a minute, or misses a few minutes. Its
    # state is outdated for sync replies after 30 s, but nobody else may take the id.
    for late in (30 * 1000, 5 * MINUTE, 10 * MINUTE - 1):
        assert (
            store.apply(scene, OTHER, [entry(1, 50, '{"who":"mallory"}')], NOW + late, user_id=MALLORY) == []
        )
        assert store.apply(scene, OTHER, [entry(1, 51)], NOW + late, user_id=MALLORY) == []
    assert store.current(scene, NOW + 10 * MINUTE - 1) == []  # outdated, not taken
    # The tab comes back to the foreground and renews: it is still its own.
    assert store.apply(scene, TAB, [entry(1, 2, '{"who":"zoe"}')], NOW + 10 * MINUTE - 1, user_id=ZOE) == [
        entry(1, 2, '{"who":"zoe"}')
    ]
    assert store.current(scene, NOW + 10 * MINUTE) == [entry(1, 2, '{"who":"zoe"}')]


def test_an_owner_silent_past_the_idle_timeout_is_dead(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 4, '{"v":4}')], NOW, user_id=ZOE)
    assert store.apply(scene, OTHER, [entry(1, 5, '{"v":5}')], NOW + 10 * MINUTE, user_id=MALLORY) == [
        entry(1, 5, '{"v":5}')
    ]
    # The id now belongs to the other connection; the old one cannot write it back.
    assert store.apply(scene, TAB, [entry(1, 6, '{"v":"a"}')], NOW + 10 * MINUTE + 1, user_id=ZOE) == []


def test_the_same_user_takes_its_client_id_back_at_once(store: AwarenessStore, scene: str) -> None:
    # The tab's connection dropped; its $disconnect is lost, so the old connection looks
    # alive. The provider reconnects with the same Yjs client id, for the same user.
    store.apply(scene, TAB, [entry(1, 4, '{"cursor":1}')], NOW, user_id=ZOE)
    assert store.apply(scene, RECONNECTED, [entry(1, 5, '{"cursor":2}')], NOW + 1, user_id=ZOE) == [
        entry(1, 5, '{"cursor":2}')
    ]
    assert store.current(scene, NOW + 2) == [entry(1, 5, '{"cursor":2}')]
    # A late invocation of the old connection carries an older clock: nothing rolls back.
    assert store.apply(scene, TAB, [entry(1, 4, '{"cursor":1}')], NOW + 3, user_id=ZOE) == []
    # When the old connection is finally noticed as gone, it removes nothing of the new one.
    assert store.remove_connection(scene, TAB, NOW + 4) == []
    assert store.current(scene, NOW + 5) == [entry(1, 5, '{"cursor":2}')]
    assert store.remove_connection(scene, RECONNECTED, NOW + 6) == [entry(1, 6)]


def test_another_user_cannot_take_a_live_owners_id(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 1, '{"who":"zoe"}')], NOW, user_id=ZOE)
    assert store.apply(scene, OTHER, [entry(1, 2, '{"who":"mallory"}')], NOW + 1, user_id=MALLORY) == []
    # Nor can a connection whose user is unknown.
    assert store.apply(scene, OTHER, [entry(1, 3, '{"who":"?"}')], NOW + 1) == []
    # Nor can a caller without a user match a connection that had none.
    store.apply(scene, "anon=", [entry(2, 1, "{}")], NOW)
    assert store.apply(scene, OTHER, [entry(2, 2, '{"x":1}')], NOW + 1) == []
    assert store.current(scene, NOW + 2) == [entry(1, 1, '{"who":"zoe"}'), entry(2, 1, "{}")]


def test_a_taken_back_id_moves_to_the_new_connection(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_ids_per_connection=2)
    store.apply(scene, TAB, [entry(1, 1, "{}"), entry(2, 1, "{}")], NOW, user_id=ZOE)
    store.apply(scene, RECONNECTED, [entry(2, 2, "{}")], NOW + 1, user_id=ZOE)
    # The old connection has room for one id again; the new one holds one.
    assert store.apply(scene, TAB, [entry(3, 1, "{}")], NOW + 2, user_id=ZOE) == [entry(3, 1, "{}")]
    assert store.apply(scene, RECONNECTED, [entry(4, 1, "{}")], NOW + 2, user_id=ZOE) == [entry(4, 1, "{}")]
    owned = cache.hgetall(scene_key(scene, "aw:owned"))
    assert owned == {TAB.encode(): b"1,3", RECONNECTED.encode(): b"2,4"}


def test_an_ended_owners_ids_are_free_for_anyone(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, TAB, [entry(1, 4, '{"v":4}')], NOW, user_id=ZOE)
    assert store.remove_connection(scene, TAB, NOW + 1) == [entry(1, 5)]
    assert store.apply(scene, OTHER, [entry(1, 6, '{"v":6}')], NOW + 2, user_id=MALLORY) == [
        entry(1, 6, '{"v":6}')
    ]
