"""The local stack without any cache (`python -m devstack --cache none`, the shape of a
stage deployed with `cacheKind: none`): no Redis is started or used, the handlers get
CACHE_KIND=none, and real yjs clients (tests/e2e/scenarios) still converge, a late joiner
gets everything in its first sync, and offline edits, a chunked 1 MB paste and a burst
all arrive, every replica equal to what the server itself serves from DynamoDB."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from devstack.__main__ import ready_info
from devstack.stack import LocalStack
from tests.e2e.conftest import Scene, run_scenario
from tests.e2e.wsclient import server_text


@pytest.fixture(scope="module")
def stack(bare_stack: LocalStack) -> LocalStack:
    """This module's stack for tests/e2e/conftest.py's fixtures (`scene`, boto3 aimed at
    its moto), in place of the session's: the stack without a cache (conftest.py)."""
    return bare_stack


@pytest.fixture
def bare_scene(scene: Scene) -> Scene:
    """A scene on the stack without a cache."""
    return scene


def test_the_stack_starts_without_redis_and_says_so(bare_stack: LocalStack) -> None:
    assert bare_stack.env["CACHE_KIND"] == "none"
    assert "REDIS_URL" not in bare_stack.env and bare_stack.redis_url == ""
    info = ready_info(bare_stack)
    assert info["CACHE_KIND"] == "none" and "REDIS_URL" not in info


def test_clients_converge_and_a_late_joiner_gets_everything_without_a_cache(
    bare_scene: Scene, capfd: pytest.CaptureFixture[str]
) -> None:
    tokens = [bare_scene.grant(f"writer{i}", "editor") for i in range(3)]
    config = {"wsUrl": bare_scene.stack.ws_url, "sceneId": bare_scene.scene_id, "tokens": tokens}
    converged = run_scenario("converge", {**config, "durationMs": 2000})
    assert converged["errors"] == []
    assert converged["edits"] > 50
    assert len(set(converged["texts"])) == 1, "replicas diverged"
    assert server_text(bare_scene) == converged["texts"][0]

    # A scene of its own: the late joiner's first sync must hold exactly what was typed.
    other = Scene(bare_scene.stack, f"scene-{uuid.uuid4().hex[:10]}")
    tokens = [other.grant(user, "editor") for user in ("alice", "bob", "carol")]
    lifecycle = run_scenario(
        "lifecycle", {"wsUrl": other.stack.ws_url, "sceneId": other.scene_id, "tokens": tokens}
    )
    assert lifecycle["errors"] == []
    assert lifecycle["lateJoinerFirstSync"] == lifecycle["expectedAtJoin"] != ""
    assert len(set(lifecycle["afterOffline"])) == 1
    assert lifecycle["afterPaste"][0] > 1_000_000 and len(set(lifecycle["afterPaste"])) == 1
    expected_burst = "".join(chr(65 + i % 26) for i in range(200))
    assert lifecycle["burst"] == [expected_burst] * 3
    assert len(set(lifecycle["final"])) == 1
    assert hashlib.sha256(server_text(other).encode()).hexdigest() == lifecycle["final"][0]
    # The handlers' output (their workers write to this test's stdout): the disabled cache
    # refused their calls, and no cache was ever tried, so none failed.
    out = capfd.readouterr().out
    assert "this stage has no cache" in out
    assert "cache unavailable" not in out


def test_presence_lives_in_dynamodb_without_a_cache(bare_scene: Scene) -> None:
    """The presence scenario (cursors appear for the others, a forged removal of another
    client's state is ignored, a killed client's cursor disappears, a late joiner sees
    the live cursors), with the awareness states in the documents table."""
    tokens = [bare_scene.grant(user, "editor") for user in ("alice", "bob", "carol", "dave")]
    result = run_scenario(
        "presence", {"wsUrl": bare_scene.stack.ws_url, "sceneId": bare_scene.scene_id, "tokens": tokens}
    )
    assert result["errors"] == []
    assert result["carolSeesAliceAfterForgery"] is True
    assert result["carolGoneForAlice"] and result["carolGoneForBob"]
    assert result["daveSees"] == ["Alice", "Bob"]
