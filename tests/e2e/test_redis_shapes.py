"""The whole stack against the other Redis shapes: a one-node Redis Cluster (the shape of
ElastiCache Serverless: the handlers use the cluster client and every multi-key script
stays in its scene's slot, or it would fail with CROSSSLOT), and the in-process fakeredis
that `make dev` falls back to when no redis-server is installed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devstack import services
from devstack.stack import LocalStack
from tests.e2e.conftest import STACK_ENV, Scene, run_scenario


@pytest.fixture(scope="module")
def cluster_stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False, redis_cluster=True) as running:
        assert running.env["REDIS_CLUSTER"] == "true"
        yield running


def test_clients_converge_and_see_presence_on_a_redis_cluster(
    cluster_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cluster_stack.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    scene = Scene(cluster_stack, f"scene-{uuid.uuid4().hex[:10]}")
    tokens = [scene.grant(f"writer{i}", "editor") for i in range(3)]
    result = run_scenario(
        "converge",
        {"wsUrl": cluster_stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens, "durationMs": 2000},
    )
    assert result["errors"] == []
    assert len(set(result["texts"])) == 1 and len(result["texts"][0]) > 50
    tokens = [scene.grant(user, "editor") for user in ("alice", "bob", "carol", "dave")]
    presence = run_scenario(
        "presence", {"wsUrl": cluster_stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens}
    )
    assert presence["errors"] == []
    assert presence["daveSees"] == ["Alice", "Bob"]


def test_make_dev_works_without_redis_server(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(services, "redis_server_binary", lambda: None)  # a machine without it
    with LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False) as fallback:
        # The usual environments, not one per function: a scene's invocations must not
        # queue behind each other (on a loaded machine the queue outgrew the resync).
        assert fallback.max_environments == 4
        for key, value in fallback.env.items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        scene = Scene(fallback, f"scene-{uuid.uuid4().hex[:10]}")
        tokens = [scene.grant(f"writer{i}", "editor") for i in range(3)]
        config = {"wsUrl": fallback.ws_url, "sceneId": scene.scene_id, "tokens": tokens, "durationMs": 1500}
        result = run_scenario("converge", config)
    assert result["errors"] == []
    assert len(set(result["texts"])) == 1 and len(result["texts"][0]) > 30
    # The handlers' output (their workers write to this test's stdout): the cache never
    # failed, so no invocation fell back to serving a scene from DynamoDB alone.
    assert "Connection closed by server" not in capfd.readouterr().out


def test_the_fakeredis_fallback_keeps_a_connection_after_an_error_reply() -> None:
    """fakeredis's TCP server closed a connection after any error reply, and a script's
    first EVALSHA always gets one (NOSCRIPT): the handlers' client, which never retries,
    then failed and opened its breaker. devstack/fake_redis.py keeps the connection."""
    service = services.start_fake_redis()
    try:
        client = redis.Redis.from_url(service.url, single_connection_client=True, retry=Retry(NoBackoff(), 0))
        script = client.register_script("return redis.call('INCR', KEYS[1])")
        assert script(keys=["n"]) == 1  # EVALSHA: NOSCRIPT, then SCRIPT LOAD and EVALSHA
        with pytest.raises(redis.ResponseError):
            client.execute_command("NO-SUCH-COMMAND")
        assert script(keys=["n"]) == 2
        assert client.ping()
        client.close()
    finally:
        service.stop()
