"""End-to-end fixtures: the whole local stack (moto, Redis, the emulator running the real
handlers in worker processes), real WebSocket clients in Python, and real yjs clients in
Node (tests/e2e/scenarios)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collab.access import SceneAccess
from collab.settings import Settings
from collabctl.devtoken import mint_dev_token
from devstack.stack import LocalStack

E2E_DIR = Path(__file__).resolve().parent
TRACES_DIR = E2E_DIR.parent / "data" / "traces"

# Small thresholds so that end-to-end runs compact both levels many times.
STACK_ENV = {"CACHE_TAIL_LIMIT": "40", "LOG_TAIL_LIMIT": "80", "MAX_PENDING_CHUNKED": "4"}


@pytest.fixture(scope="session")
def redis_stack() -> Iterator[LocalStack]:
    """The local stack as `make dev` starts it, with its own Redis."""
    with LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False) as running:
        yield running


@pytest.fixture(scope="module")
def bare_stack() -> Iterator[LocalStack]:
    """The local stack without any cache (`python -m devstack --cache none`, a stage
    deployed with cacheKind none). One per module that uses it (it starts in about a
    second): the handlers' worker processes are then spawned under that module's tests and
    write to their output (tests/e2e/test_cache_none.py reads it with capfd), and no
    second stack stays up while the other modules run."""
    # A REDIS_URL in the environment (a developer's, or CI's) must not be picked up: the
    # port is one nobody listens on, so using it would show as cache failures.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
        bare = LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False, cache="none")
    with bare as running:
        yield running


@pytest.fixture(scope="session")
def stack(redis_stack: LocalStack) -> LocalStack:
    """The stack the `scene` of a test runs on. A module may override it (at module scope),
    with a stack of its own, or with `each_shape_stack` to run on both shapes."""
    return redis_stack


# The CACHE_KIND of each shape of the local stack, and the fixture that starts it.
STACK_SHAPES = {"redis": "redis_stack", "none": "bare_stack"}


@pytest.fixture(scope="module", params=list(STACK_SHAPES))
def each_shape_stack(request: pytest.FixtureRequest) -> LocalStack:
    """The local stack with Redis (the session's), then one without a cache: a module whose
    `stack` returns this runs every test on both."""
    running: LocalStack = request.getfixturevalue(STACK_SHAPES[request.param])
    return running


@pytest.fixture(autouse=True)
def stack_aws_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 in this process reads the stack's moto (to seed access, to compare with the
    server's state) for the duration of one test, never leaking into other test folders."""
    for key, value in stack.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)


@dataclass
class Scene:
    stack: LocalStack
    scene_id: str

    def token(self, user: str, name: str | None = None, ttl: int = 3600) -> str:
        return mint_dev_token(self.stack.jwt_secret, user, self.scene_id, name=name or user.title(), ttl=ttl)

    def grant(self, user: str, role: str) -> str:
        SceneAccess(self.stack.env["ACCESS_TABLE"]).grant(self.scene_id, user, role)
        return self.token(user)

    def url(self, token: str) -> str:
        return f"{self.stack.ws_url}?sceneId={self.scene_id}&token={token}"

    def settings(self) -> Settings:
        return Settings.from_env(self.stack.env)


@pytest.fixture
def scene(stack: LocalStack) -> Scene:
    return Scene(stack, f"scene-{uuid.uuid4().hex[:10]}")


def run_scenario(name: str, config: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run tests/e2e/scenarios/<name>.mjs with `config` and return its JSON report."""
    process = subprocess.run(
        ["node", str(E2E_DIR / "scenarios" / f"{name}.mjs"), json.dumps(config)],
        cwd=E2E_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if process.returncode != 0:
        raise AssertionError(f"scenario {name} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return result
