"""Shared fixtures: real services on loopback, started once per test session.

- `redis_standalone`, `redis_cluster`: throwaway redis-server processes (the cluster one is
  a one-node Redis Cluster owning every slot, as ElastiCache Serverless is cluster mode).
- `redis_url_and_mode`: parametrized over both, for tests of Redis itself (the cache, its
  scripts, the Redis stores) that must pass on each.
- `shape`: parametrized over every stage shape, both Redis ones and no cache at all
  (CACHE_KIND=none), for tests of the handlers' behaviour, which must hold on each.
- `moto`: moto's server; `aws_tables`: fresh DynamoDB tables per test, named by env vars.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from collab.cache import Cache, connect
from devstack import services
from tests.support.rig import Shape


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_cache(reason): the test's subject is what a cache does; the `shape` fixture "
        "skips its no-cache variant, giving the reason",
    )


@pytest.fixture(scope="session")
def redis_standalone() -> Iterator[str]:
    service = services.start_redis(cluster=False)
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[str]:
    service = services.start_redis(cluster=True)
    yield service.url
    service.stop()


@pytest.fixture(params=["standalone", "cluster"])
def redis_url_and_mode(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """(url, is_cluster) for each Redis shape the product runs against."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster"), True
    return request.getfixturevalue("redis_standalone"), False


@pytest.fixture(params=["standalone", "cluster", "none"])
def shape(request: pytest.FixtureRequest) -> Shape:
    """Each stage shape; "none" starts no Redis (a stage deployed with cacheKind none).
    A test marked `needs_cache` is skipped on "none", with the marker's reason."""
    if request.param == "none":
        needs_cache = request.node.get_closest_marker("needs_cache")
        if needs_cache is not None:
            pytest.skip(f"no cache on this shape: {needs_cache.args[0]}")
        return Shape("none")
    url = request.getfixturevalue(f"redis_{request.param}")
    return Shape(request.param, url, cluster=request.param == "cluster")


@pytest.fixture
def cache(redis_url_and_mode: tuple[str, bool]) -> Iterator[Cache]:
    """A client of each Redis shape, as the handlers make one (collab.cache.connect)."""
    client = connect(*redis_url_and_mode)
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    service = services.start_moto()
    saved = {k: os.environ.get(k) for k in services.aws_endpoint_env(service.url)}
    os.environ.update(services.aws_endpoint_env(service.url))
    yield service.url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    service.stop()


@pytest.fixture
def aws_tables(moto: str) -> dict[str, str]:
    """Fresh tables and snapshot bucket for one test: env var -> name (tables.json names,
    plus SNAPSHOT_BUCKET)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    names = services.create_tables(moto, prefix)
    services.create_bucket(moto, f"{prefix}-snapshots")
    return {**names, "SNAPSHOT_BUCKET": f"{prefix}-snapshots"}
