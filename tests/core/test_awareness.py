"""Awareness codec (against bytes written by real y-protocols) and AwarenessStore against
real Redis, standalone and as a one-node cluster."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest

from collab.awareness import AwarenessEntry, AwarenessStore, decode_update, encode_update
from collab.cache import Cache, scene_key
from collab.errors import BadRequest, CollabError, TooLarge

# Written by y-protocols 1.0.7 (lib0 0.2.120, Node 20): clientID 3141592653 after
# `setLocalStateField('user', {name: 'Zoë 🎬', color: '#ff8800'})` (clock 1), then with a
# second client (7, clock 1) in one update, then after `setLocalState(null)` (clock 2).
ZOE_STATE = '{"user":{"name":"Zoë 🎬","color":"#ff8800"}}'
CURSOR_STATE = '{"cursor":{"anchor":1,"head":300}}'
VECTOR_ONE = bytes.fromhex(
    "01cdcc83da0b012f7b2275736572223a7b226e616d65223a225a6fc3ab20f09f8eac222c22636f6c6f72223a2223"
    "666638383030227d7d"
)
VECTOR_TWO = bytes.fromhex(
    "020701227b22637572736f72223a7b22616e63686f72223a312c2268656164223a3330307d7dcdcc83da0b012f7b"
    "2275736572223a7b226e616d65223a225a6fc3ab20f09f8eac222c22636f6c6f72223a2223666638383030227d7d"
)
VECTOR_REMOVAL = bytes.fromhex("01cdcc83da0b02046e756c6c")


# ---------------------------------------------------------------------------- codec


def test_decodes_y_protocols_vectors() -> None:
    assert decode_update(VECTOR_ONE) == [AwarenessEntry(3141592653, 1, ZOE_STATE)]
    assert decode_update(VECTOR_TWO) == [
        AwarenessEntry(7, 1, CURSOR_STATE),
        AwarenessEntry(3141592653, 1, ZOE_STATE),
    ]
    [removal] = decode_update(VECTOR_REMOVAL)
    assert removal == AwarenessEntry(3141592653, 2, "null")
    assert removal.removed
    assert decode_update(b"\x00") == []


def test_encodes_exactly_as_y_protocols() -> None:
    # The varString length is the UTF-8 byte count (47), not the code-point count (44).
    assert encode_update([AwarenessEntry(3141592653, 1, ZOE_STATE)]) == VECTOR_ONE
    assert encode_update(decode_update(VECTOR_TWO)) == VECTOR_TWO
    assert encode_update([AwarenessEntry(3141592653, 2, "null")]) == VECTOR_REMOVAL
    assert encode_update([]) == b"\x00"


def test_round_trip_random_entries() -> None:
    rng = random.Random(5)
    for _ in range(200):
        entries = [
            AwarenessEntry(
                rng.randrange(2**32), rng.randrange(2**53), f'{{"n":"{"é🎬x"[rng.randrange(3)] * i}"}}'
            )
            for i in range(rng.randrange(5))
        ]
        assert decode_update(encode_update(entries)) == entries


def test_json_null_in_any_spelling_is_a_removal() -> None:
    [entry] = decode_update(b"\x01\x05\x03\x06 null ")
    assert entry == AwarenessEntry(5, 3, "null")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x01", "truncated"),
        (b"\x01\x05", "truncated"),
        (b"\x01\x05\x01", "truncated"),
        (b"\x01\x05\x01\x05nul", "truncated"),
        (VECTOR_ONE[:-1], "truncated"),
        (b"\x02" + VECTOR_ONE[1:], "truncated"),  # count says two, one is there
        (VECTOR_ONE + b"\x00", "trailing"),
        (b"\x01\x05\x01\x02\xc3\x28", "UTF-8"),
        (b"\x01\x05\x01\x03{a}", "JSON"),
        (b"\x01\x05\x01\x03NaN", "JSON"),
        (b"\x01\x05\x01\x00", "JSON"),
        (b"\x01\x05\x01\x02" + b"[" * 2, "JSON"),
        (b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x04null", "out of range"),
        (b"\x01\x05\x80\x80\x80\x80\x80\x80\x80\x10\x04null", "out of range"),  # 2**53
    ],
)
def test_garbage_is_a_bad_request(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as caught:
        decode_update(data)
    assert caught.value.code == "bad_request"


def test_deeply_nested_json_is_a_bad_request() -> None:
    state = b"[" * 100_000 + b"]" * 100_000
    data = b"\x01\x05\x01" + bytes(_var_uint(len(state))) + state
    with pytest.raises(BadRequest, match="JSON"):
        decode_update(data)


def test_random_bytes_never_escape_as_anything_but_a_refusal() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(1, 40))
        try:
            decode_update(data)
        except CollabError as error:  # anything else fails the test
            # A random first byte often declares more entries than the cap: too_large.
            assert error.code in ("bad_request", "too_large")
    for cut in range(len(VECTOR_TWO)):
        with pytest.raises(BadRequest):
            decode_update(VECTOR_TWO[:cut])


def test_largest_safe_integers() -> None:
    entry = AwarenessEntry(2**53 - 1, 2**53 - 1, "{}")
    assert decode_update(encode_update([entry])) == [entry]


def _var_uint(value: int) -> bytearray:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return out


# ---------------------------------------------------------------------------- store

NOW = 1_764_000_000_000
A, B = "connA=", "connB="


@pytest.fixture
def scene(cache: Cache) -> Iterator[str]:
    """A fresh scene id; its keys are removed afterwards (the servers are shared)."""
    scene_id = f"s-{uuid.uuid4().hex}"
    yield scene_id
    for key in scene_keys(cache, scene_id):
        cache.delete(key)


def scene_keys(cache: Cache, scene_id: str) -> list[str]:
    return sorted(key.decode() for key in cache.scan_iter(match=scene_key(scene_id, "aw:*")))


@pytest.fixture
def store(cache: Cache) -> AwarenessStore:
    return AwarenessStore(cache)


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


def test_set_update_remove(store: AwarenessStore, scene: str) -> None:
    assert store.current(scene, NOW) == []
    assert store.apply(scene, A, [entry(1, 1, '{"n":"a"}')], NOW) == [entry(1, 1, '{"n":"a"}')]
    assert store.current(scene, NOW) == [entry(1, 1, '{"n":"a"}')]
    assert store.apply(scene, A, [entry(1, 2, '{"n":"b"}')], NOW + 1) == [entry(1, 2, '{"n":"b"}')]
    assert store.apply(scene, B, [entry(2, 1, ZOE_STATE)], NOW + 1) == [entry(2, 1, ZOE_STATE)]
    assert store.current(scene, NOW + 2) == [entry(1, 2, '{"n":"b"}'), entry(2, 1, ZOE_STATE)]
    assert store.apply(scene, A, [entry(1, 3)], NOW + 3) == [entry(1, 3)]
    assert store.current(scene, NOW + 4) == [entry(2, 1, ZOE_STATE)]


def test_several_entries_in_one_update(store: AwarenessStore, scene: str) -> None:
    accepted = store.apply(scene, A, decode_update(VECTOR_TWO), NOW)
    assert accepted == decode_update(VECTOR_TWO)
    assert encode_update(store.current(scene, NOW)) == VECTOR_TWO


def test_lower_clock_is_ignored(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW)
    assert store.apply(scene, A, [entry(1, 3, '{"v":3}')], NOW + 1) == []
    assert store.current(scene, NOW + 2) == [entry(1, 5, '{"v":5}')]


def test_equal_clock_only_removes(store: AwarenessStore, scene: str) -> None:
    # y-protocols: the same clock never replaces a state, but it may remove it, once.
    store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW)
    assert store.apply(scene, A, [entry(1, 5, '{"v":"other"}')], NOW) == []
    assert store.apply(scene, A, [entry(1, 5)], NOW) == [entry(1, 5)]
    assert store.apply(scene, A, [entry(1, 5)], NOW) == []
    assert store.current(scene, NOW) == []


def test_clock_zero_of_an_unknown_client_is_ignored(store: AwarenessStore, scene: str) -> None:
    # As in y-protocols, an unknown client counts as clock 0.
    assert store.apply(scene, A, [entry(1, 0, "{}")], NOW) == []
    assert store.apply(scene, A, [entry(1, 1, "{}")], NOW) == [entry(1, 1, "{}")]


def test_a_removal_keeps_a_tombstone(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW)
    store.apply(scene, A, [entry(1, 5)], NOW + 1)
    assert store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW + 2) == []
    assert store.apply(scene, A, [entry(1, 5, '{"v":5}')], NOW + 2) == []
    assert store.current(scene, NOW + 3) == []
    assert store.apply(scene, A, [entry(1, 6, '{"v":6}')], NOW + 3) == [entry(1, 6, '{"v":6}')]


def test_a_connection_cannot_touch_another_connections_client(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, '{"who":"a"}')], NOW)
    assert store.apply(scene, B, [entry(1, 2, '{"who":"b"}')], NOW + 1) == []  # overwrite
    assert store.apply(scene, B, [entry(1, 9)], NOW + 1) == []  # removal
    # The rest of B's update still counts.
    assert store.apply(scene, B, [entry(1, 10), entry(2, 1, "{}")], NOW + 1) == [entry(2, 1, "{}")]
    assert store.current(scene, NOW + 2) == [entry(1, 1, '{"who":"a"}'), entry(2, 1, "{}")]
    assert store.remove_connection(scene, B, NOW + 3) == [entry(2, 2)]
    assert store.current(scene, NOW + 4) == [entry(1, 1, '{"who":"a"}')]


def test_remove_connection(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 7, '{"a":1}'), entry(2, 3, '{"a":2}'), entry(3, 2, "{}")], NOW)
    store.apply(scene, A, [entry(3, 3)], NOW)  # already removed: nothing more to announce
    store.apply(scene, B, [entry(4, 1, '{"b":1}')], NOW)
    removals = store.remove_connection(scene, A, NOW + 1)
    assert sorted(removals, key=lambda e: e.client_id) == [entry(1, 8), entry(2, 4)]
    assert store.current(scene, NOW + 2) == [entry(4, 1, '{"b":1}')]
    # Late (reordered) invocations of the ended connection resurrect nothing, not even
    # with a clock above the removal's, nor introduce new clients.
    assert store.apply(scene, A, [entry(1, 7, '{"a":1}')], NOW + 3) == []
    assert store.apply(scene, A, [entry(1, 50, '{"a":1}'), entry(9, 1, "{}")], NOW + 3) == []
    assert store.current(scene, NOW + 4) == [entry(4, 1, '{"b":1}')]
    assert store.remove_connection(scene, A, NOW + 5) == []  # idempotent


def test_the_same_client_returns_on_a_new_connection(store: AwarenessStore, scene: str) -> None:
    # A reconnecting Yjs client keeps its client id; once its old connection has ended,
    # the new one may take the id over, with a clock above the removal's.
    store.apply(scene, A, [entry(1, 4, '{"v":4}')], NOW)
    assert store.remove_connection(scene, A, NOW + 1) == [entry(1, 5)]
    assert store.apply(scene, B, [entry(1, 5, '{"v":4}')], NOW + 2) == []
    assert store.apply(scene, B, [entry(1, 6, '{"v":6}')], NOW + 2) == [entry(1, 6, '{"v":6}')]
    assert store.remove_connection(scene, B, NOW + 3) == [entry(1, 7)]


def test_states_expire_after_30_seconds(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW + 20_000)
    assert store.current(scene, NOW + 29_999) == [entry(1, 1, "{}"), entry(2, 1, "{}")]
    assert store.current(scene, NOW + 30_000) == [entry(2, 1, "{}")]
    # Renewing (y-protocols renews every 15 s) keeps a state alive.
    store.apply(scene, A, [entry(1, 2, "{}")], NOW + 31_000)
    assert store.current(scene, NOW + 50_000) == [entry(1, 2, "{}")]
    # An outdated state keeps its clock: an older update still cannot win.
    assert store.apply(scene, A, [entry(1, 2, '{"old":1}')], NOW + 90_000) == []


def test_old_entries_are_pruned(cache: Cache, store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, A, [entry(2, 1, "{}")], NOW + 500_000)
    store.current(scene, NOW + 600_000)
    for part in ("clock", "state", "conn", "user"):
        assert cache.hkeys(scene_key(scene, f"aw:{part}")) == [b"2"]
    assert cache.zrange(scene_key(scene, "aw:seen"), 0, -1) == [b"2"]
    assert cache.hget(scene_key(scene, "aw:owned"), A) == b"2"


def test_keys_have_a_ttl(cache: Cache, store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")], NOW)
    store.apply(scene, B, [entry(2, 1, "{}")], NOW)
    store.remove_connection(scene, A, NOW)
    keys = scene_keys(cache, scene)
    parts = {key.split(":")[3] for key in keys}
    assert parts == {"clock", "state", "conn", "user", "told", "seen", "tomb", "owned", "gone", "reply"}
    for key in keys:
        limit = 30 if ":aw:reply:" in key else 600  # a kept answer waits for a retry only
        assert 0 < cache.ttl(key) <= limit, key


def test_large_state_is_refused(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache, max_state_bytes=100)
    with pytest.raises(TooLarge):
        store.apply(scene, A, [entry(1, 1, "{}"), entry(2, 1, '"' + "é" * 50 + '"')], NOW)
    assert store.current(scene, NOW) == []  # nothing of the update was applied


def test_empty_update(store: AwarenessStore, scene: str) -> None:
    assert store.apply(scene, A, [], NOW) == []


def test_default_clock_is_now(store: AwarenessStore, scene: str) -> None:
    store.apply(scene, A, [entry(1, 1, "{}")])
    assert store.current(scene) == [entry(1, 1, "{}")]
