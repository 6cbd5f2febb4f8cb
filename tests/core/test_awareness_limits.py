"""Bounded presence work (review F7, docs/design.md §4 invariant 9): caps on entries and bytes per
awareness message, client ids per connection and states per scene, and a scene's stored
presence that stays within its cap however many ids come and go. Against real Redis,
standalone and as a one-node cluster."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from collab import protocol
from collab.awareness import AwarenessEntry, AwarenessStore, decode_update, encode_update
from collab.cache import Cache, scene_key
from collab.errors import BadRequest, TooLarge
from collab.lib0 import var_uint

NOW = 1_764_000_000_000


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


def frame_data(entries: list[AwarenessEntry]) -> str:
    """An `awareness` frame's `data`, as a y-protocols client sends it."""
    return base64.b64encode(protocol.awareness_message(encode_update(entries))).decode()


@pytest.fixture
def scene(cache: Cache) -> Iterator[str]:
    scene_id = f"s-{uuid.uuid4().hex}"
    yield scene_id
    for key in list(cache.scan_iter(match=scene_key(scene_id, "aw:*"))):
        cache.delete(key)


def tracked(cache: Cache, scene_id: str) -> int:
    """How many client ids the scene's presence holds, tombstones included."""
    sizes = {cache.hlen(scene_key(scene_id, f"aw:{part}")) for part in ("clock", "state", "conn", "user")}
    sizes.add(cache.zcard(scene_key(scene_id, "aw:seen")))
    assert len(sizes) == 1, "the per-id records disagree"
    return sizes.pop()


# ---------------------------------------------------------------------------- per message


def test_a_declared_count_over_the_cap_is_refused_before_any_entry_is_read() -> None:
    eight = [entry(i, 1, "{}") for i in range(1, 9)]
    assert decode_update(encode_update(eight)) == eight
    # Nine entries, then bytes that are no entry at all: refused on the count alone, so no
    # work is done for a count that lies (2**52 entries in eight bytes is the same answer).
    for count in (9, 2**52):
        with pytest.raises(TooLarge, match="at most 8 entries") as caught:
            decode_update(var_uint(count) + b"\xff\xff")
        assert caught.value.code == "too_large"
    assert decode_update(encode_update(eight[:2]), max_entries=2) == eight[:2]
    with pytest.raises(TooLarge):
        decode_update(encode_update(eight[:3]), max_entries=2)


def test_a_message_over_the_size_cap_is_refused_before_decoding(cache: Cache) -> None:
    store = AwarenessStore(cache, max_message_bytes=3000, max_state_bytes=4000)
    fits = frame_data([entry(1, 1, '"' + "x" * (3000 - 10) + '"')])
    assert len(base64.b64decode(fits)) <= 3000
    assert store.decode(fits) == [entry(1, 1, '"' + "x" * 2990 + '"')]
    over = frame_data([entry(1, 1, '"' + "x" * 3000 + '"')])
    with pytest.raises(TooLarge, match="at most 3000 bytes"):
        store.decode(over)
    # Not even base64 is looked at: text that would be a bad_request is too long first.
    with pytest.raises(TooLarge):
        store.decode("!" * 5000)
    with pytest.raises(BadRequest):
        store.decode("!" * 100)


def test_decode_reads_a_y_protocols_frame(cache: Cache) -> None:
    store = AwarenessStore(cache)
    entries = [entry(3141592653, 1, '{"user":{"name":"Zoë"}}'), entry(7, 2)]
    assert store.decode(frame_data(entries)) == entries
    sync = base64.b64encode(protocol.sync_step1(b"\x00")).decode()
    with pytest.raises(BadRequest, match="awareness message"):
        store.decode(sync)
    with pytest.raises(TooLarge):
        store.decode(frame_data([entry(i, 1, "{}") for i in range(1, 10)]))


def test_apply_refuses_more_entries_than_the_cap(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_entries=2)
    with pytest.raises(TooLarge):
        store.apply(scene, "A=", [entry(1, 1, "{}"), entry(2, 1, "{}"), entry(3, 1, "{}")], NOW)
    assert store.current(scene, NOW) == []


# ---------------------------------------------------------------------------- per connection


def test_client_ids_per_connection(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_ids_per_connection=3)
    for client_id in (1, 2, 3):
        assert store.apply(scene, "A=", [entry(client_id, 1, "{}")], NOW) == [entry(client_id, 1, "{}")]
    with pytest.raises(TooLarge, match="at most 3 awareness client ids") as caught:
        store.apply(scene, "A=", [entry(4, 1, "{}")], NOW)
    assert caught.value.code == "too_large"
    # An update that would pass the cap is refused whole: its renewal is not applied either.
    with pytest.raises(TooLarge):
        store.apply(scene, "A=", [entry(1, 2, '{"renewed":1}'), entry(5, 1, "{}")], NOW + 1)
    assert [e.client_id for e in store.current(scene, NOW + 1)] == [1, 2, 3]
    assert store.current(scene, NOW + 1)[0] == entry(1, 1, "{}")
    # Its own ids stay fully usable: renewals and removals.
    assert store.apply(scene, "A=", [entry(1, 2, '{"renewed":1}'), entry(2, 2)], NOW + 2) == [
        entry(1, 2, '{"renewed":1}'),
        entry(2, 2),
    ]
    # A removal of an id it never had, past the cap: not recorded, and not an error.
    assert store.apply(scene, "A=", [entry(9, 1)], NOW + 2) == []
    # Another connection has its own allowance.
    assert store.apply(scene, "B=", [entry(4, 1, "{}")], NOW + 3) == [entry(4, 1, "{}")]
    # Once a connection has ended, its ids are free for others and count for them.
    store.remove_connection(scene, "A=", NOW + 4)
    for clock, client_id in enumerate((1, 2), start=5):
        assert store.apply(scene, "B=", [entry(client_id, clock, "{}")], NOW + 5) != []
    with pytest.raises(TooLarge):
        store.apply(scene, "B=", [entry(3, 9, "{}")], NOW + 5)


# ---------------------------------------------------------------------------- per scene


def test_states_per_scene_every_connection_counts(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_states=5)
    for n in range(5):  # five connections (editors or viewers: the store does not care)
        store.apply(scene, f"c{n}=", [entry(100 + n, 1, "{}")], NOW)
    with pytest.raises(TooLarge, match=r"most awareness states allowed \(5\)") as caught:
        store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 1)
    assert caught.value.code == "too_large"
    assert len(store.current(scene, NOW + 1)) == 5
    # Present states are never pushed out, not even quiet ones (a background tab).
    with pytest.raises(TooLarge):
        store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 60_000)
    # A removal leaves a tombstone, which makes room for a newcomer.
    store.apply(scene, "c0=", [entry(100, 2)], NOW + 60_001)
    assert store.apply(scene, "late=", [entry(200, 1, "{}")], NOW + 60_002) == [entry(200, 1, "{}")]
    assert tracked(cache, scene) == 5
    # An ended connection's states become tombstones too.
    store.remove_connection(scene, "c1=", NOW + 60_003)
    assert store.apply(scene, "later=", [entry(201, 1, "{}")], NOW + 60_004) == [entry(201, 1, "{}")]
    assert tracked(cache, scene) == 5
    # Owners silent for 10 minutes are dead: their ids are forgotten and make room.
    assert store.apply(scene, "new=", [entry(300, 1, "{}")], NOW + 600_000) == [entry(300, 1, "{}")]
    assert tracked(cache, scene) == 3  # 200, 201 (written at NOW + 60 s) and 300


def test_removals_are_never_refused_in_a_full_scene(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_states=2)
    store.apply(scene, "A=", [entry(1, 1, "{}")], NOW)
    store.apply(scene, "B=", [entry(2, 1, "{}")], NOW)
    # A peer's provider removing a client this scene no longer knows: nothing to do.
    assert store.apply(scene, "C=", [entry(3, 4)], NOW + 1) == []
    assert tracked(cache, scene) == 2
    assert store.apply(scene, "A=", [entry(1, 2)], NOW + 2) == [entry(1, 2)]


def test_churn_keeps_the_scene_within_its_cap(cache: Cache, scene: str) -> None:
    # Page reloads: every load is a new Yjs client id on a new connection, and the old
    # connection ends, noticed a little late (its $disconnect, or a 410 on a broadcast).
    # 1,000 of them within two minutes leave at most the cap behind, so every sync's
    # `current` reads at most that many.
    store = AwarenessStore(cache, max_states=50)
    for n in range(1000):
        now = NOW + n * 100
        assert store.apply(scene, f"load{n}=", [entry(10_000 + n, 1, f'{{"n":{n}}}')], now) != []
        if n >= 3:
            store.remove_connection(scene, f"load{n - 3}=", now + 50)
        assert tracked(cache, scene) <= 50
    live = store.current(scene, NOW + 1000 * 100)
    assert [e.client_id for e in live] == [10_997, 10_998, 10_999]
    assert cache.zcard(scene_key(scene, "aw:gone")) <= store.max_gone


def test_gone_connections_are_remembered_within_a_bound(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_states=4)  # remembers 16 ended connections
    for n in range(40):
        store.remove_connection(scene, f"c{n}=", NOW + n)
    gone = [key.decode() for key in cache.zrange(scene_key(scene, "aw:gone"), 0, -1)]
    assert gone == [f"c{n}=" for n in range(24, 40)]  # the most recent ones


def test_current_forgets_ids_unwritten_for_ten_minutes(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache)
    for n in range(20):
        store.apply(scene, f"c{n}=", [entry(n + 1, 1, "{}")], NOW + n * 1000)
    assert tracked(cache, scene) == 20
    assert store.current(scene, NOW + 600_000 + 9_500) == []  # outdated, not yet all gone
    assert tracked(cache, scene) == 10
    assert store.current(scene, NOW + 700_000) == []
    assert tracked(cache, scene) == 0
    assert cache.hlen(scene_key(scene, "aw:owned")) == 0
