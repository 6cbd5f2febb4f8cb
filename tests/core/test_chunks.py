"""ChunkAssembler and split_message against real Redis, standalone and as a one-node cluster."""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections.abc import Iterator

import pytest

from collab.cache import Cache, connect
from collab.chunks import ChunkAssembler, split_message
from collab.errors import BadRequest, TooLarge


@pytest.fixture
def conn(cache: Cache) -> Iterator[str]:
    """A fresh connection id; its keys are removed afterwards (the servers are shared)."""
    connection_id = f"c{uuid.uuid4().hex}"
    yield connection_id
    for key in list(cache.scan_iter(match=f"collab:{{{connection_id}}}:*")):
        cache.delete(key)


def keys_of(cache: Cache, connection_id: str) -> list[str]:
    return sorted(key.decode() for key in cache.scan_iter(match=f"collab:{{{connection_id}}}:*"))


def slices(text: str, count: int) -> list[str]:
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_in_order(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    parts = slices("the quick brown fox jumps over the lazy dog", 5)
    results = [assembler.add(conn, "m1", seq, len(parts), part) for seq, part in enumerate(parts)]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == "the quick brown fox jumps over the lazy dog"
    # The end marker is left, the pending entry is gone, and the parts only wait a few
    # seconds for a retry of the completing call (test_script_retries.py).
    end, kept = f"collab:{{{conn}}}:chunk:end:m1", f"collab:{{{conn}}}:chunk:parts:m1"
    assert keys_of(cache, conn) == [end, kept]
    assert 0 < cache.ttl(kept) <= assembler.replay_seconds < cache.ttl(end)


def test_single_chunk_message(cache: Cache, conn: str) -> None:
    assert ChunkAssembler(cache).add(conn, "one", 0, 1, '{"action":"ping"}') == '{"action":"ping"}'


def test_out_of_order_and_non_ascii(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    text = "Zoë 🎬 " * 200
    parts = slices(text, 37)
    order = list(enumerate(parts))
    random.Random(7).shuffle(order)
    results = [assembler.add(conn, "x", seq, len(parts), part) for seq, part in order]
    assert [r for r in results if r is not None] == [text]
    assert results[-1] == text


def test_duplicates_first_write_wins_and_late_duplicates_dropped(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    assert assembler.add(conn, "d", 0, 3, "aa") is None
    assert assembler.add(conn, "d", 0, 3, "aa") is None
    assert assembler.add(conn, "d", 0, 3, "ZZ") is None  # different data: the first slice stays
    assert assembler.add(conn, "d", 2, 3, "cc") is None
    assert assembler.add(conn, "d", 1, 3, "bb") == "aabbcc"
    # Every chunk of the finished id, repeated, is dropped silently.
    for seq, part in enumerate(["aa", "bb", "cc"]):
        assert assembler.add(conn, "d", seq, 3, part) is None


def test_concurrent_distinct_chunks_complete_exactly_once(
    redis_url_and_mode: tuple[str, bool], conn: str
) -> None:
    text = "".join(random.Random(1).choice("abcdef") for _ in range(3000))
    parts = slices(text, 24)
    results = _race(
        redis_url_and_mode, [(conn, "race", seq, len(parts), part) for seq, part in enumerate(parts)]
    )
    assert sorted(r for r in results if r is not None) == [text]
    assert results.count(None) == len(parts) - 1


def test_concurrent_duplicates_of_the_last_chunk_complete_exactly_once(
    cache: Cache, redis_url_and_mode: tuple[str, bool], conn: str
) -> None:
    assembler = ChunkAssembler(cache)
    assembler.add(conn, "dup", 0, 2, "first half, ")
    results = _race(redis_url_and_mode, [(conn, "dup", 1, 2, "second half")] * 16)
    assert [r for r in results if r is not None] == ["first half, second half"]


def _race(
    redis_url_and_mode: tuple[str, bool], calls: list[tuple[str, str, int, int, str]]
) -> list[str | None]:
    """Each call in its own thread with its own client (like separate Lambdas), all
    released by one barrier, so they really hit Redis at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list[str | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client = connect(*redis_url_and_mode)
        assembler = ChunkAssembler(client)
        try:
            client.ping()  # connect before the barrier, so the race is on the script
            barrier.wait(timeout=10)
            results[index] = assembler.add(*calls[index])
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    return results


def test_conflicting_total_is_refused_and_the_id_stays_usable(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    assert assembler.add(conn, "t", 0, 3, "a") is None
    with pytest.raises(BadRequest, match="differs from the first chunk's total 3"):
        assembler.add(conn, "t", 1, 2, "b")
    assert assembler.add(conn, "t", 1, 3, "b") is None
    assert assembler.add(conn, "t", 2, 3, "c") == "abc"
    # The connection keeps working for other messages.
    assert assembler.add(conn, "u", 0, 1, "ok") == "ok"


@pytest.mark.parametrize(
    ("chunk_id", "seq", "total", "data", "message"),
    [
        ("", 0, 1, "x", "non-empty string"),
        ("i" * 129, 0, 1, "x", "non-empty string"),
        (7, 0, 1, "x", "non-empty string"),
        ("a", "0", 1, "x", "integers"),
        ("a", 0, 1.0, "x", "integers"),
        ("a", True, 2, "x", "integers"),
        ("a", 0, 0, "x", "at least 1"),
        ("a", 2, 2, "x", r"outside \[0, 2\)"),
        ("a", -1, 2, "x", "outside"),
        ("a", 0, 1, "", "'data'"),
        ("a", 0, 1, None, "'data'"),
        ("a", 0, 1, "\ud83c", "Unicode"),
    ],
)
def test_malformed_chunks_are_bad_requests(
    cache: Cache, conn: str, chunk_id: object, seq: object, total: object, data: object, message: str
) -> None:
    with pytest.raises(BadRequest, match=message) as caught:
        ChunkAssembler(cache).add(conn, chunk_id, seq, total, data)  # type: ignore[arg-type]
    assert caught.value.code == "bad_request"
    assert keys_of(cache, conn) == []


def test_too_large_once_per_id(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_bytes=1000)
    assert assembler.add(conn, "big", 0, 50, "x" * 400) is None
    assert assembler.add(conn, "big", 1, 50, "x" * 400) is None
    with pytest.raises(TooLarge) as caught:
        assembler.add(conn, "big", 2, 50, "x" * 400)
    assert caught.value.code == "too_large"
    # The parts are freed at once; every later chunk of the id is dropped without an error.
    assert keys_of(cache, conn) == [f"collab:{{{conn}}}:chunk:end:big"]
    for seq in range(50):
        assert assembler.add(conn, "big", seq, 50, "x" * 400) is None
    assert assembler.add(conn, "small", 0, 1, "fine") == "fine"


def test_size_counts_utf8_bytes(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_bytes=10)
    assert assembler.add(conn, "ok", 0, 1, "é" * 5) == "é" * 5  # 10 bytes: at the limit
    with pytest.raises(TooLarge):
        assembler.add(conn, "no", 0, 1, "é" * 5 + "!")


def test_too_many_chunks_is_too_large_from_the_first_chunk(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_chunks=100)
    with pytest.raises(TooLarge):
        assembler.add(conn, "many", 0, 101, "x")
    assert assembler.add(conn, "many", 1, 101, "x") is None


def test_pending_limit(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_pending=3)
    for i in range(3):
        assert assembler.add(conn, f"p{i}", 0, 2, "a") is None
    with pytest.raises(TooLarge, match="too many pending chunked messages"):
        assembler.add(conn, "p3", 0, 2, "a")
    assert assembler.add(conn, "p3", 1, 2, "b") is None  # refused once per id, then dropped
    # Chunks of pending ids still count; completing one frees a place.
    assert assembler.add(conn, "p0", 1, 2, "b") == "ab"
    assert assembler.add(conn, "p4", 0, 2, "a") is None
    with pytest.raises(TooLarge):
        assembler.add(conn, "p5", 0, 2, "a")
    # Another connection has its own limit.
    other = ChunkAssembler(cache, max_pending=3)
    other_conn = f"{conn}-other"
    try:
        assert other.add(other_conn, "p0", 0, 2, "a") is None
    finally:
        other.forget(other_conn)


def test_every_key_has_a_ttl(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, ttl_seconds=120)
    assembler.add(conn, "a", 0, 2, "x")  # pending: parts + pending index
    assembler.add(conn, "b", 0, 1, "y")  # done: end marker
    with pytest.raises(TooLarge):
        ChunkAssembler(cache, max_bytes=1, ttl_seconds=120).add(conn, "c", 0, 1, "zz")  # refused: end marker
    keys = keys_of(cache, conn)
    assert len(keys) == 5  # a's parts, pending, b's end marker and kept parts, c's end marker
    for key in keys:
        assert 0 < cache.ttl(key) <= 120, key


def test_expired_pending_messages_stop_counting(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_pending=1, ttl_seconds=1)
    assembler.add(conn, "old", 0, 2, "x")
    cache.pexpire(f"collab:{{{conn}}}:chunk:parts:old", 1)
    # Backdate the pending entry as the parts' own TTL would have: it no longer counts.
    cache.zadd(f"collab:{{{conn}}}:chunk:pending", {"old": 0})
    assert assembler.add(conn, "new", 0, 2, "x") is None


def test_forget_drops_everything_pending(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    assembler.add(conn, "a", 0, 2, "x")
    assembler.add(conn, "b", 0, 3, "y")
    assembler.add(conn, "done", 0, 1, "z")
    assembler.forget(conn)
    # What is left expires on its own: the end marker and, briefly, the completed parts.
    assert keys_of(cache, conn) == [
        f"collab:{{{conn}}}:chunk:end:done",
        f"collab:{{{conn}}}:chunk:parts:done",
    ]
    # A fresh start for the same (connection, id) pairs.
    assert assembler.add(conn, "a", 1, 2, "w") is None
    assert assembler.add(conn, "a", 0, 2, "v") == "vw"


def test_ids_cannot_collide_with_other_keys(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    assert assembler.add(conn, "x", 0, 2, "1") is None
    assert assembler.add(conn, "x:end", 0, 1, "2") == "2"
    assert assembler.add(conn, "{x}", 0, 1, "3") == "3"
    assert assembler.add(conn, "x", 1, 2, "1") == "11"


def _message(size: int) -> str:
    payload = random.Random(size).randbytes(size * 3 // 4)
    return json.dumps({"type": "sync", "data": base64.b64encode(payload).decode()})


@pytest.mark.parametrize("size", [1_000_000, 5_000_000])
def test_split_message_round_trip(cache: Cache, conn: str, size: int) -> None:
    text = _message(size)
    frames = split_message(text)
    assert len(frames) > 1
    assert all(len(frame.encode()) <= 120_000 for frame in frames)
    assert all(frame.isascii() for frame in frames)
    decoded = [json.loads(frame) for frame in frames]
    assert {frame["type"] for frame in decoded} == {"chunk"}
    assert len({frame["id"] for frame in decoded}) == 1
    assert [frame["seq"] for frame in decoded] == list(range(len(frames)))
    random.Random(3).shuffle(decoded)
    assembler = ChunkAssembler(cache)
    results = [assembler.add(conn, f["id"], f["seq"], f["total"], f["data"]) for f in decoded]
    assert [r for r in results if r is not None] == [text]


def test_split_message_small_text_is_one_frame() -> None:
    assert split_message('{"type":"pong"}') == ['{"type":"pong"}']
    text = "x" * 120_000
    assert split_message(text) == [text]


@pytest.mark.parametrize(
    "text",
    [
        'Zoë 🎬 "quoted" \\ back\nslash\t\x00 ' * 5000,  # every escape kind, astral characters
        "🎬" * 40_000,  # 12 escaped bytes per character
        '"' * 300_000,
    ],
)
def test_split_message_escapes_never_overflow_a_frame(text: str) -> None:
    frames = split_message(text, limit=30_000, new_id=lambda: "fixed-id")
    assert all(len(frame.encode()) <= 30_000 for frame in frames)
    decoded = [json.loads(frame) for frame in frames]
    assert {frame["id"] for frame in decoded} == {"fixed-id"}
    assert {frame["total"] for frame in decoded} == {len(frames)}
    assert "".join(frame["data"] for frame in decoded) == text
    # Frames are well filled: within a small factor of the ideal count.
    ideal = len(json.dumps(text)) / 30_000
    assert len(frames) <= ideal * 1.2 + 1


def test_split_message_limit_too_small() -> None:
    with pytest.raises(ValueError, match="no room"):
        split_message("x" * 200, limit=60)
