"""The cache is optional at run time (issue 9 item 2, review F3), proved against a real
redis-server that each test starts, crashes, freezes and restarts itself, in both shapes
(standalone and a one-node cluster):

- a Cache built while the server is down starts, and every failure is CacheUnavailable
  (never redis-py's RedisClusterException or ConnectionError);
- while the breaker is open, calls fail at once and touch no socket;
- after the cooldown (a clock the test moves, no sleeps) it reconnects, and Lua scripts
  registered before the outage run on the new server;
- a server restarted empty, with or without a failed call in between, is served as empty.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import pytest
import redis
from redis.exceptions import RedisClusterException

from collab import runtime
from collab.cache import Cache, CacheUnavailable, Client, connect
from collab.hot_state import HotState
from collab.settings import Settings
from devstack import services

SCENE = "scene-cache"
COUNTER = "return redis.call('INCR', KEYS[1])"
COUNTER_KEY = "collab:{scene-cache}:counter"
# collab.cache.connect's read timeout: what one call costs against a frozen server.
SOCKET_TIMEOUT = 2.0


class Clock:
    """Monotonic time that moves only when the test says so (the breaker's cooldown)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Server:
    """One real redis-server on a fixed port, which the test crashes, freezes and restarts."""

    cluster: bool
    service: services.Service | None
    port: int
    url: str

    @classmethod
    def start(cls, cluster: bool) -> Server:
        service = services.start_redis(cluster=cluster)
        port = int(service.url.split(":")[2].split("/")[0])
        return cls(cluster, service, port, service.url)

    def crash(self) -> None:
        """SIGKILL: the node dies as in a crash, without closing its clients' sockets first."""
        assert self.service is not None and self.service.process is not None
        self.service.process.kill()
        self.service.process.wait()
        self.service.stop()  # removes its data dir: nothing survives into a restart
        self.service = None

    def restart_empty(self) -> None:
        assert self.service is None, "crash it first"
        self.service = services.start_redis(cluster=self.cluster, port=self.port)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers (a hung node)."""
        assert self.service is not None and self.service.process is not None
        os.kill(self.service.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.service is not None and self.service.process is not None
        os.kill(self.service.process.pid, signal.SIGCONT)

    def inspect(self) -> redis.Redis:
        """A plain client of the node, to look at what the cache left there."""
        return redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self.service is not None:
            self.thaw()  # a frozen process cannot act on SIGTERM
            self.service.stop()
            self.service = None


@pytest.fixture(params=["standalone", "cluster"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    running = Server.start(cluster=request.param == "cluster")
    yield running
    running.stop()


@dataclass
class Counted:
    """A client factory that counts its calls: building a client is the only way the
    cache reaches the network once the breaker has dropped the previous client."""

    factory: Callable[[], Client]
    built: int = 0
    clients: list[Client] = field(default_factory=list)

    def __call__(self) -> Client:
        self.built += 1
        client = self.factory()
        self.clients.append(client)
        return client


def production_cache(server: Server, clock: Clock) -> tuple[Cache, Counted]:
    """collab.cache.connect's cache (its timeouts, its retry policy, its cooldown), on a
    clock the test moves, with its client factory counted."""
    made = connect(server.url, server.cluster)
    # The factory connect() built holds the production options; counted here.
    counted = Counted(made._factory)
    return Cache(counted, cooldown=made.cooldown, clock=clock), counted


def unavailable(call: Callable[[], object]) -> CacheUnavailable:
    """The call's failure, which must be CacheUnavailable and nothing of redis-py's."""
    with pytest.raises(CacheUnavailable) as caught:
        call()
    assert type(caught.value) is CacheUnavailable
    assert not isinstance(caught.value, RedisClusterException | redis.RedisError | OSError)
    return caught.value


def test_a_cache_built_while_the_server_is_down_starts_and_fails_as_cache_unavailable(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.crash()
    clock = Clock()
    # The production constructors first: nothing connects, so nothing raises (a cluster
    # client built eagerly raised RedisClusterException here: a cold start failed).
    connect(server.url, server.cluster).close()
    cache, counted = production_cache(server, clock)
    hot = HotState(cache)  # registers its Lua scripts: no network either
    counter = cache.register_script(COUNTER)
    for key, value in services.LOCAL_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    cold = runtime.build(
        Settings(
            connections_table="c",
            access_table="a",
            documents_table="d",
            redis_url=server.url,
            redis_cluster=server.cluster,
            snapshot_bucket="b",
        )
    )
    assert counted.built == 0

    # Each kind of call, each reaching the dead server (the clock moves past the breaker).
    calls: list[Callable[[], object]] = [
        lambda: cache.get(COUNTER_KEY),
        lambda: counter(keys=[COUNTER_KEY]),
        lambda: hot.read(SCENE),
        lambda: hot.append(SCENE, "e1", b"u1"),
        lambda: cold.awareness.current(SCENE),
    ]
    for call in calls:
        clock.advance(cache.cooldown)
        failure = unavailable(call)
        raw = RedisClusterException if server.cluster else redis.ConnectionError
        assert isinstance(failure.__cause__, raw)  # what redis-py raised, kept as the cause

    # The server comes up: after the cooldown the same cache works, scripts included.
    server.restart_empty()
    clock.advance(cache.cooldown)
    assert counter(keys=[COUNTER_KEY]) == 1
    assert hot.append(SCENE, "e1", b"u1") == (1, 1)
    assert hot.read(SCENE).tail == {"e1": b"u1"}
    cache.close()


def test_while_the_breaker_is_open_calls_fail_at_once_without_touching_the_network(
    server: Server,
) -> None:
    clock = Clock()
    cache, counted = production_cache(server, clock)
    hot = HotState(cache)
    cache.set(COUNTER_KEY, "41")
    server.freeze()

    # The first call waits for the frozen server: one read timeout (two in cluster mode:
    # redis-py's cluster client refreshes its slot map after a timeout, and that waits too).
    started = time.monotonic()
    unavailable(lambda: cache.get(COUNTER_KEY))
    first_call = time.monotonic() - started
    assert first_call >= SOCKET_TIMEOUT / 2  # it did reach the (frozen) server
    built = counted.built

    # Meanwhile 100 calls, commands and scripts alike, fail at once: had any reached the
    # server, that one alone would have cost a timeout (2 s) and built a new client.
    started = time.monotonic()
    for i in range(50):
        unavailable(lambda: cache.incr(COUNTER_KEY))
        unavailable(partial(hot.append, SCENE, f"e{i}", b"u"))
        open_breaker = time.monotonic() - started
        # Checked as it goes: without a breaker, 100 calls would take over three minutes.
        assert open_breaker < 1.0, f"{2 * (i + 1)} calls took {open_breaker:.2f}s with the breaker open"
    assert counted.built == built

    # Not yet: a moment before the cooldown ends, still skipped.
    clock.advance(cache.cooldown - 0.01)
    unavailable(lambda: cache.get(COUNTER_KEY))
    assert counted.built == built

    # The server answers again; once the cooldown is over, the cache uses it (with the
    # data it kept: nothing was written while the breaker was open).
    server.thaw()
    clock.advance(0.01)
    assert cache.incr(COUNTER_KEY) == 42
    assert hot.append(SCENE, "e1", b"u1") == (1, 1)
    assert counted.built == built + 1
    print(
        f"first call against a frozen server: {first_call:.2f}s; 100 calls, breaker open: {open_breaker:.3f}s"
    )
    cache.close()


def test_after_the_cooldown_scripts_registered_before_the_outage_run_on_a_server_restarted_empty(
    server: Server,
) -> None:
    clock = Clock()
    cache, counted = production_cache(server, clock)
    hot = HotState(cache)
    counter = cache.register_script(COUNTER)
    assert hot.append(SCENE, "e1", b"u1") == (1, 1)
    assert counter(keys=[COUNTER_KEY]) == 1

    server.crash()
    unavailable(lambda: hot.append(SCENE, "e2", b"u2"))
    server.restart_empty()
    # Back already, but the breaker holds until the cooldown ends: no connection tried.
    built = counted.built
    unavailable(lambda: hot.read(SCENE))
    assert counted.built == built

    clock.advance(cache.cooldown)
    assert hot.read(SCENE).tail == {}  # empty: nothing stale survives a restart
    assert hot.append(SCENE, "e3", b"u3") == (1, 1)
    assert counter(keys=[COUNTER_KEY]) == 1
    assert counted.built == built + 1
    # The restarted server never saw those scripts before: they were loaded on it anew.
    sha = counted.clients[-1].register_script(COUNTER).sha
    assert server.inspect().script_exists(sha) == [True]

    # The server loses its script cache without an outage (SCRIPT FLUSH): scripts reload.
    server.inspect().script_flush()
    assert hot.append(SCENE, "e4", b"u4") == (2, 2)
    assert counter(keys=[COUNTER_KEY]) == 2
    assert cache.available
    cache.close()


def test_a_server_restarted_empty_between_two_calls_is_served_as_empty(server: Server) -> None:
    clock = Clock()
    cache, _ = production_cache(server, clock)
    hot = HotState(cache)
    assert hot.append(SCENE, "e1", b"u1") == (1, 1)
    assert hot.read(SCENE).tail == {"e1": b"u1"}

    # No call while it was down: the client's pooled socket is dead, the server is empty.
    server.crash()
    server.restart_empty()
    try:
        after = hot.read(SCENE)
    except CacheUnavailable:
        # Either outcome is the design's: one failed call (then the cooldown), or redis-py
        # replacing the dead socket on checkout. Stale content or a raw error would not be.
        clock.advance(cache.cooldown)
        after = hot.read(SCENE)
    assert after.tail == {} and after.version == 0 and after.base is None
    assert hot.append(SCENE, "e2", b"u2") == (1, 1)
    assert hot.read(SCENE).tail == {"e2": b"u2"}
    cache.close()
