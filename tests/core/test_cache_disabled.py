"""A stage without any cache (CACHE_KIND=none, infra cacheKind none): REDIS_URL is not
needed, the cache is `Cache.disabled()` and refuses every call at once, without a client,
a connection or a timeout, and the handlers' DynamoDB fallbacks serve everything (moto,
and the real session core with the Management API recorded)."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from collab import runtime, session
from collab.admission import admit
from collab.cache import Cache, CacheUnavailable
from collab.settings import CACHE_KIND, REDIS_URL, InvalidSetting, MissingSetting, Settings
from devstack import services
from tests.support.rig import Recorder, an_update, caller, sync_frame, text_seen_by, update_frame

TABLES = {"CONNECTIONS_TABLE": "c", "ACCESS_TABLE": "a", "DOCUMENTS_TABLE": "d", "SNAPSHOT_BUCKET": "b"}


class BlackHole:
    """A TCP listener on loopback that accepts and never answers: a Redis client that
    reached it would wait out its read timeout. It counts the connections it accepted."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.accepted: list[socket.socket] = []
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlackHole]:
    for key, value in services.LOCAL_AWS_ENV.items():  # a region and fake credentials
        monkeypatch.setenv(key, value)
    hole = BlackHole()
    yield hole
    hole.close()


def refused_at_once(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(CacheUnavailable, match="no cache"):
        call()
    return time.monotonic() - started


def test_without_a_cache_redis_url_is_neither_required_nor_read() -> None:
    settings = Settings.from_env({**TABLES, CACHE_KIND: "none"})
    assert (settings.cache_kind, settings.has_cache, settings.redis_url) == ("none", False, "")
    left_over = Settings.from_env({**TABLES, CACHE_KIND: "none", REDIS_URL: "redis://127.0.0.1:1/0"})
    assert left_over.redis_url == "" and not left_over.redis_cluster
    # The default is a cache, which then needs its URL; an unknown kind names the setting.
    assert Settings.from_env({**TABLES, REDIS_URL: "redis://h:1/0"}).has_cache
    with pytest.raises(MissingSetting, match=REDIS_URL):
        Settings.from_env({**TABLES, CACHE_KIND: "redis"})
    with pytest.raises(InvalidSetting, match=CACHE_KIND):
        Settings.from_env({**TABLES, CACHE_KIND: "memcached", REDIS_URL: "redis://h:1/0"})


def test_every_store_is_refused_at_once_and_nothing_connects(
    black_hole: BlackHole, caplog: pytest.LogCaptureFixture
) -> None:
    # A REDIS_URL at a listener that never answers: were it used, the first call would wait
    # for the client's 2 s read timeout, and the listener would count the connection.
    rt = runtime.build(Settings.from_env({**TABLES, CACHE_KIND: "none", REDIS_URL: black_hole.url}))
    assert rt.cache is not None and not rt.cache.enabled and not rt.cache.available
    hot = rt.documents._hot
    calls: list[Callable[[], object]] = [
        lambda: rt.cache.get("k") if rt.cache else None,
        lambda: rt.cache.register_script("return 1")() if rt.cache else None,
        lambda: hot.read("scene"),
        lambda: hot.append("scene", "e1", b"u"),
        lambda: hot.take_lease("scene", "me", 60),
        lambda: rt.chunks.add("conn=", "id", 0, 2, "half"),
    ]
    # Presence is not refused: it lives in the documents table (collab.awareness_table).
    assert type(rt.awareness).__name__ == "AwarenessTable"
    with caplog.at_level(logging.INFO, logger="collab.cache"):
        elapsed = [refused_at_once(call) for call in calls for _ in range(3)]
    assert max(elapsed) < 0.05, elapsed
    assert black_hole.accepted == []
    # No outage to report: the CacheUnavailable alarm (infra/monitoring.py) stays quiet.
    assert [r.getMessage() for r in caplog.records if r.name == "collab.cache"] == []


def test_the_black_hole_would_have_caught_a_cache_that_connects(black_hole: BlackHole) -> None:
    """The check above can fail: the same URL with a cache does reach the listener."""
    rt = runtime.build(Settings.from_env({**TABLES, REDIS_URL: black_hole.url}))
    assert rt.cache is not None and rt.cache.enabled
    with pytest.raises(CacheUnavailable):
        rt.cache.get("k")
    assert len(black_hole.accepted) == 1
    rt.cache.close()


def test_a_disabled_cache_never_builds_a_client() -> None:
    cache = Cache.disabled("no cache here")
    with pytest.raises(CacheUnavailable, match="no cache here"):
        cache.set("k", "v")
    assert cache._client is None
    cache.close()  # nothing to close, and no error


def test_members_converge_and_a_late_joiner_gets_everything_from_dynamodb(aws_tables: dict[str, str]) -> None:
    rt = runtime.build(Settings.from_env({**aws_tables, CACHE_KIND: "none"}))
    recorder = Recorder()
    rt.outbox_factory = lambda endpoint: recorder  # type: ignore[assignment,return-value]
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    alice, bob, carol = (caller(scene, f"{name}=", name) for name in ("alice", "bob", "carol"))
    for member in (alice, bob, carol):
        rt.access.grant(scene, member.user_id, "editor")
        assert admit(rt.rooms, rt.access, member)
    for member in (alice, bob):
        session.handle_message(rt, member, sync_frame())
    session.handle_message(rt, alice, update_frame(an_update("INT. KITCHEN - NIGHT")))
    assert text_seen_by(recorder.sent["bob="]) == "INT. KITCHEN - NIGHT"
    session.handle_message(rt, carol, sync_frame())
    assert text_seen_by(recorder.sent["carol="]) == "INT. KITCHEN - NIGHT"
    assert not any(m["type"] == "error" for sent in recorder.sent.values() for m in sent)
