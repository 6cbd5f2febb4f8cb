"""Collaboration through a cache outage (issue 9 item 2, review F3), with real yjs clients
(tests/e2e/scenarios/cache_outage.mjs) on a stack of its own per Redis shape, whose
redis-server this test crashes and restarts, empty, on the same port mid-session:

- environments that start while the cache is down serve (a cold start needs no cache);
- with the cache down, edits are stored and broadcast, a late joiner's sync gets the
  whole scene from DynamoDB, a leave removes the row and is announced;
- after an empty restart everyone carries on, a late joiner gets everything, the cache is
  used again (the scene's keys reappear) and cursors travel again;
- every replica ends identical, holds every marker typed in every phase, and equals what
  the server itself would serve.
"""

from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import redis

from collab.blobs import BlobStore
from collab.durable_log import DurableLog
from devstack import services
from devstack.stack import LocalStack
from tests.e2e.conftest import E2E_DIR, STACK_ENV, Scene
from tests.e2e.wsclient import Opener, dynamodb, error, server_text

USERS = ("alice", "bob", "carol", "dave")
# Per phase; a phase does a few dozen round trips through the emulator.
PHASE_TIMEOUT = 90.0


@dataclass
class Outage:
    """A stack of its own whose redis-server (on a fixed port) the test crashes and restarts."""

    cluster: bool
    port: int
    redis: services.Service | None = None
    stack: LocalStack | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}" + ("" if self.cluster else "/0")

    def crash(self) -> None:
        """SIGKILL, as a node crash; its data dir goes too, so a restart starts empty."""
        assert self.redis is not None and self.redis.process is not None
        self.redis.process.kill()
        self.redis.process.wait()
        self.redis.stop()
        self.redis = None

    def restart_empty(self) -> None:
        assert self.redis is None
        self.redis = services.start_redis(cluster=self.cluster, port=self.port)

    def scene_keys(self, scene_id: str) -> list[bytes]:
        """The scene's keys in the cache (a plain client of the one node, in both shapes)."""
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            return sorted(client.scan_iter(match=f"collab:{{{scene_id}}}:*"))
        finally:
            client.close()


@pytest.fixture(scope="module", params=["standalone", "cluster"])
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    cluster = request.param == "cluster"
    first = services.start_redis(cluster=cluster)
    state = Outage(cluster, int(first.url.split(":")[2].split("/")[0]), first)
    # Down before the stack starts: the handlers' first (cold) environments find no cache.
    state.crash()
    with pytest.MonkeyPatch.context() as env:
        # The stack uses a Redis it is given (REDIS_URL) and leaves it alone: ours to stop.
        env.setenv("REDIS_URL", state.url)
        env.setenv("REDIS_CLUSTER", "true" if cluster else "false")
        state.stack = LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False, max_environments=2).start()
    try:
        yield state
    finally:
        state.stack.stop()
        if state.redis is not None:
            state.redis.stop()


@pytest.fixture(scope="module")
def stack(outage: Outage) -> LocalStack:
    """This module's stack for tests/e2e/conftest.py's fixtures (scene, AWS endpoints), in
    place of the shared one: nobody else's test sees this Redis go down."""
    assert outage.stack is not None
    return outage.stack


class PhasedScenario:
    """A Node scenario that prints {"phase": ...} lines and waits for "go" after each."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            ["node", str(E2E_DIR / "scenarios" / f"{name}.mjs"), json.dumps(config)],
            cwd=E2E_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        # Drained as it comes, so a chatty scenario never blocks on a full pipe.
        assert self.process.stderr is not None
        self._stderr.extend(self.process.stderr)

    def reached(self, phase: str, timeout: float = PHASE_TIMEOUT) -> dict[str, Any]:
        """Wait for the scenario to report `phase`; its message."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no phase {phase!r} within {timeout}s:\n{self._errors()}") from None
        if line is None:
            self.process.wait(timeout=10)
            raise AssertionError(
                f"scenario ended ({self.process.returncode}) before phase {phase!r}:\n{self._errors()}"
            )
        message: dict[str, Any] = json.loads(line)
        assert message["phase"] == phase, message
        return message

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def _errors(self) -> str:
        return "".join(self._stderr)[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def head_version(scene: Scene) -> int:
    blobs = BlobStore(boto3.client("s3"), scene.stack.env["SNAPSHOT_BUCKET"])
    return DurableLog(dynamodb(), scene.stack.env["DOCUMENTS_TABLE"], blobs).read_head(scene.scene_id).version


def connection_row(scene: Scene, connection_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        dynamodb()
        .get_item(
            TableName=scene.stack.env["CONNECTIONS_TABLE"],
            Key={"sceneId": {"S": scene.scene_id}, "connectionId": {"S": connection_id}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return item


def test_nothing_typed_is_lost_through_a_cache_outage_and_an_empty_restart(
    outage: Outage, scene: Scene
) -> None:
    tokens = {user: scene.grant(user, "editor") for user in USERS}
    config = {"wsUrl": scene.stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens}
    started = time.monotonic()
    scenario = PhasedScenario("cache_outage", config)
    try:
        scenario.reached("cold")  # alice synced and typed; no cache since the stack started
        assert outage.redis is None
        outage.restart_empty()
        scenario.go()

        scenario.reached("before")  # bob joined; both typed and saw each other's cursor
        assert outage.scene_keys(scene.scene_id), "the cache was in use before the outage"
        version_before = head_version(scene)
        outage.crash()
        scenario.go()

        left = scenario.reached("outage")  # typed, carol joined, bob left: all without cache
        assert connection_row(scene, left["bobConnectionId"]) is None  # $disconnect removed it
        version_after_outage = head_version(scene)
        outage.restart_empty()
        assert outage.scene_keys(scene.scene_id) == []  # empty: nothing to rely on
        scenario.go()

        result = scenario.reached("done")
        assert outage.scene_keys(scene.scene_id), "the cache is used again after the restart"
    finally:
        scenario.close()
    elapsed = time.monotonic() - started

    assert result["errors"] == []  # no `internal`, no refusal, in any phase
    texts = result["texts"]
    assert len(set(texts.values())) == 1, "every replica ends identical"
    final = texts["alice"]
    typed = result["typed"]
    assert [marker for marker in typed if marker not in final] == []
    phases = {marker.split(":")[1] for marker in typed}
    assert phases == {"cold", "before", "outage", "outage2", "offline", "after", "last"}
    assert server_text(scene) == final  # what a new client would be served

    carol, dave = result["lateJoiners"]["carol"], result["lateJoiners"]["dave"]
    assert carol["missingAtFirstSync"] == [] and carol["expectedAtFirstSync"] == 5 + 20 + 90
    assert carol["participantsAtJoin"] == ["Alice", "Bob", "Carol"]
    assert dave["missingAtFirstSync"] == [] and dave["expectedAtFirstSync"] == len(typed) - 4 * 5
    assert dave["participantsAtJoin"] == ["Alice", "Bob", "Carol", "Dave"]
    assert "Bob" in result["leftSeenBy"]["alice"] and "Bob" in result["leftSeenBy"]["carol"]
    # 90 updates reached the durable log without the cache: compacted (carol's sync, or by chance).
    assert version_after_outage > version_before
    print(
        f"{'cluster' if outage.cluster else 'standalone'}: {elapsed:.1f}s, {len(typed)} markers, "
        f"cursor moves until seen: {result['cursorMoves']}, head {version_before}->{version_after_outage}"
    )


def test_a_paste_too_big_for_one_frame_is_stored_and_broadcast_during_an_outage(
    outage: Outage, scene: Scene
) -> None:
    # Runs after the session test: the stack's environments are warm, the cache is up.
    if outage.redis is not None:
        outage.crash()
    opener = Opener(scene)
    try:
        alice, bob = opener("alice"), opener("bob")
        alice.synced(timeout=30)
        bob.synced(timeout=30)
        mark = alice.mark()
        paste = "INT. WRITERS ROOM - NIGHT\n" * 4000  # 104 KB: four client frames
        alice.edit(paste)
        # Whichever comes first: bob has the paste, or alice is told it failed.
        deadline = time.monotonic() + 30
        while paste not in bob.current_text() and not alice.find(error(), mark):
            assert time.monotonic() < deadline, "neither the paste nor an error within 30 s"
            time.sleep(0.1)
            alice.mark()  # takes in what has arrived
        assert alice.find(error(), mark) == []
        assert paste in bob.current_text()
        assert paste in server_text(scene)
    finally:
        opener.close_all()
        if outage.redis is None:
            outage.restart_empty()
