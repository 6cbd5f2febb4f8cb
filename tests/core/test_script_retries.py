"""The Lua scripts are safe to re-run on a client retry (review M2): a call whose reply was
lost, run again with the same arguments, gets the same answer. The chunk that completes a
message hands the text over again to its own retry (and to nobody else); an awareness
update's retry still returns what was accepted, so it is broadcast; a removal's retry
still returns the removals.

First each script is run twice with the same arguments, then a reply is really lost:
a TCP proxy between a redis-py client (its default retries) and the real Redis lets the
script run, drops its reply and the connection, and redis-py runs it again. Both shapes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest
import redis
from redis.cluster import RedisCluster

from collab.awareness import AwarenessEntry, AwarenessStore
from collab.cache import Cache, scene_key
from collab.chunks import ChunkAssembler
from collab.errors import TooLarge

NOW = 1_764_000_000_000


def entry(client_id: int, clock: int, state: str | None = None) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, "null" if state is None else state)


@pytest.fixture
def scene(cache: Cache) -> Iterator[str]:
    scene_id = f"s-{uuid.uuid4().hex}"
    yield scene_id
    for key in list(cache.scan_iter(match=scene_key(scene_id, "aw:*"))):
        cache.delete(key)


@pytest.fixture
def conn(cache: Cache) -> Iterator[str]:
    connection_id = f"c{uuid.uuid4().hex}"
    yield connection_id
    for key in list(cache.scan_iter(match=f"collab:{{{connection_id}}}:*")):
        cache.delete(key)


# ---------------------------------------------------------------------------- same arguments, twice


def test_apply_run_twice_returns_what_was_accepted(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache)
    update = [entry(1, 3, '{"cursor":7}'), entry(2, 1, "{}")]
    first = store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-1")
    assert first == update
    assert store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-1") == first
    # Any other call with the same content is a duplicate and adds nothing to broadcast.
    assert store.apply(scene, "A=", update, NOW, user_id="u", request_id="req-2") == []
    assert store.current(scene, NOW) == update


def test_remove_connection_run_twice_returns_the_removals(cache: Cache, scene: str) -> None:
    store = AwarenessStore(cache)
    store.apply(scene, "A=", [entry(1, 3, "{}"), entry(2, 8, "{}")], NOW)
    first = store.remove_connection(scene, "A=", NOW + 1, request_id="bye")
    assert sorted(first, key=lambda e: e.client_id) == [entry(1, 4), entry(2, 9)]
    assert store.remove_connection(scene, "A=", NOW + 1, request_id="bye") == first
    assert store.remove_connection(scene, "A=", NOW + 1, request_id="other") == []
    assert store.current(scene, NOW + 2) == []


def test_the_completing_chunk_run_twice_hands_the_text_to_that_call_only(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache)
    assert assembler.add(conn, "m", 0, 2, "hello, ", request_id="r0") is None
    assert assembler.add(conn, "m", 1, 2, "world", request_id="r1") == "hello, world"
    assert assembler.add(conn, "m", 1, 2, "world", request_id="r1") == "hello, world"
    # A duplicate frame (another invocation) gets nothing: the message is handled once.
    assert assembler.add(conn, "m", 1, 2, "world", request_id="r2") is None
    assert assembler.add(conn, "m", 0, 2, "hello, ", request_id="r0") is None


def test_a_refusal_run_twice_is_answered_twice(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, max_bytes=10)
    for _ in range(2):
        with pytest.raises(TooLarge):
            assembler.add(conn, "big", 0, 2, "x" * 11, request_id="r0")
    assert assembler.add(conn, "big", 1, 2, "x", request_id="r1") is None


def test_the_text_waits_for_a_retry_only_a_few_seconds(cache: Cache, conn: str) -> None:
    assembler = ChunkAssembler(cache, replay_seconds=1)
    assert assembler.add(conn, "m", 0, 1, "text", request_id="r0") == "text"
    parts = f"collab:{{{conn}}}:chunk:parts:m"
    assert 0 < cache.pttl(parts) <= 1000
    wait_until(lambda: not cache.exists(parts))
    # Past the window the retry gets nothing, and still nobody else gets the text.
    assert assembler.add(conn, "m", 0, 1, "text", request_id="r0") is None
    assert assembler.add(conn, "m", 0, 1, "text", request_id="r1") is None


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


# ---------------------------------------------------------------------------- a reply really lost


class LosingProxy:
    """A TCP proxy in front of Redis. Armed, it forwards the next EVALSHA, waits for
    Redis's reply (so the script has run), drops it and closes the client's connection:
    the client sees a connection error and, with redis-py's retries, runs it again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self.lost = 0  # replies dropped
        self.evalshas = 0  # EVALSHA commands forwarded
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self._armed.set()

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            losing = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, losing), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, losing), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, losing: threading.Event) -> None:
        try:
            while data := client.recv(1 << 16):
                if b"\r\nEVALSHA\r\n" in data.upper():
                    with self._lock:
                        self.evalshas += 1
                    if self._armed.is_set():
                        self._armed.clear()
                        losing.set()  # before Redis can answer
                upstream.sendall(data)
        except OSError:
            pass
        _close(upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, losing: threading.Event) -> None:
        try:
            while data := upstream.recv(1 << 16):
                if losing.is_set():
                    if data.startswith(b"-NOSCRIPT"):  # not run: lose the next one instead
                        losing.clear()
                        self._armed.set()
                    else:
                        with self._lock:
                            self.lost += 1
                        break
                client.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxied(redis_url_and_mode: tuple[str, bool]) -> Iterator[tuple[LosingProxy, redis.Redis | RedisCluster]]:
    """A proxy to this shape's Redis and a redis-py client through it, with redis-py's
    default retry settings (what review M2 describes)."""
    url, cluster = redis_url_and_mode
    proxy = LosingProxy(urlparse(url).port or 6379)
    client: redis.Redis | RedisCluster
    if cluster:
        # The cluster tells its clients the node's real address; send them to the proxy.
        client = RedisCluster(
            host="127.0.0.1", port=proxy.port, address_remap=lambda _address: ("127.0.0.1", proxy.port)
        )
    else:
        client = redis.Redis(host="127.0.0.1", port=proxy.port)
    yield proxy, client
    client.close()
    proxy.close()


def lose_one_reply(proxy: LosingProxy, call: Callable[[], object]) -> object:
    """Run `call` with the reply of its script lost once; check the script ran twice."""
    proxy.arm()
    before = proxy.evalshas
    result = call()
    assert proxy.lost == 1, "no reply was lost"
    assert proxy.evalshas - before == 2, "the script did not run again"
    return result


def test_a_lost_reply_of_the_completing_chunk(
    proxied: tuple[LosingProxy, redis.Redis | RedisCluster], conn: str
) -> None:
    proxy, client = proxied
    assembler = ChunkAssembler(client)  # type: ignore[arg-type]
    text = "Zoë 🎬 " * 20_000  # several TCP segments of reply
    half = len(text) // 2
    assert assembler.add(conn, "big", 0, 2, text[:half]) is None
    assert lose_one_reply(proxy, lambda: assembler.add(conn, "big", 1, 2, text[half:])) == text
    assert assembler.add(conn, "big", 1, 2, text[half:]) is None  # a duplicate frame


def test_a_lost_reply_of_an_awareness_update(
    proxied: tuple[LosingProxy, redis.Redis | RedisCluster], cache: Cache, scene: str
) -> None:
    proxy, client = proxied
    store = AwarenessStore(client)  # type: ignore[arg-type]
    store.current(scene, NOW)  # loads the scripts, so the lost reply is a script that ran
    update = [entry(1, 2, '{"cursor":{"anchor":1,"head":300}}')]
    assert lose_one_reply(proxy, lambda: store.apply(scene, "A=", update, NOW, user_id="u")) == update
    assert AwarenessStore(cache).current(scene, NOW) == update


def test_a_lost_reply_of_a_connection_removal(
    proxied: tuple[LosingProxy, redis.Redis | RedisCluster], scene: str
) -> None:
    proxy, client = proxied
    store = AwarenessStore(client)  # type: ignore[arg-type]
    store.apply(scene, "A=", [entry(1, 2, "{}")], NOW)
    store.remove_connection(scene, "warm=", NOW)
    assert lose_one_reply(proxy, lambda: store.remove_connection(scene, "A=", NOW + 1)) == [entry(1, 3)]
