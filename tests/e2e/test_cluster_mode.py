"""The whole stack against a one-node Redis Cluster, the shape of ElastiCache Serverless:
the handlers use the cluster client and every multi-key script stays in its scene's slot
(a cross-slot script would fail with CROSSSLOT here)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
