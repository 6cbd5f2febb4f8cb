"""The Redis client: a cluster client against ElastiCache Serverless (cluster mode, TLS),
a plain client against a standalone server, behind one small wrapper that makes the cache
optional at run time (docs/design.md §4 invariant 7).

- One way to fail: any Redis failure, in either shape, surfaces as `CacheUnavailable`.
  redis-py's cluster client raises `RedisClusterException` (not a `RedisError`) when no
  node answers, so catching `RedisError` alone lets a cache outage through.
- Lazy: nothing connects until the first command, so a cold environment starts (and can
  write to DynamoDB) while the cache is down. The cluster client connects eagerly in its
  constructor, which is why it is built here on first use.
- A circuit breaker: after a failure the cache is skipped for `cooldown` seconds, so a dead
  cache costs one short timeout per execution environment, not one per call.
- No client-side retries: a retried Lua script that already ran would run twice, and a
  retry on a dead node only multiplies the timeout. The callers fall back to DynamoDB.
- Or no cache at all (`Cache.disabled`, a stage with CACHE_KIND=none): every call raises
  CacheUnavailable at once, with no client, no connection and no timeout, so the same
  DynamoDB fallbacks serve everything and the stores need no second code path.

Every key of a scene shares the {scene} hash tag, so multi-key commands and scripts only
ever touch one slot.

The handlers use redis-py's synchronous clients only, but `import redis` runs
`from redis import asyncio`, whose package imports the asyncio client, cluster, connection
and lock modules (about 15 ms of a cold environment's CPU, docs/benchmarks.md "Cold start, second
pass"). `_defer_package_body` puts redis.asyncio in place first with its body not
yet run: its submodules import as usual (the sync commands import
redis.asyncio.observability), and the first read of a name it defines, e.g.
`redis.asyncio.Redis`, runs the body then, so whoever uses the asyncio client still gets
all of it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def _defer_package_body(name: str) -> None:
    """Put package `name` (a subpackage, not yet imported, its parent neither) in
    sys.modules as Python would before running its __init__, and run that __init__ on the
    first read of an attribute the module lacks (PEP 562's module __getattr__). The
    import machinery reads only __spec__, __path__ and the like, which are set."""
    if name in sys.modules or name.rpartition(".")[0] in sys.modules:
        return
    parent = importlib.util.find_spec(name.rpartition(".")[0])  # finds; runs nothing
    if parent is None or parent.submodule_search_locations is None:
        return
    spec = importlib.machinery.PathFinder.find_spec(name, list(parent.submodule_search_locations))
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    lock = threading.Lock()

    def __getattr__(attribute: str) -> Any:
        with lock:
            if module.__dict__.get("__getattr__") is __getattr__:
                del module.__dict__["__getattr__"]
                loader.exec_module(module)
        try:
            return module.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module


_defer_package_body("redis.asyncio")

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402
from redis.exceptions import RedisClusterException, RedisError  # noqa: E402
from redis.retry import Retry  # noqa: E402

logger = logging.getLogger(__name__)

Client = redis.Redis | RedisCluster

# What a broken, restarting, failing-over or unreachable Redis raises, in both shapes.
FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)

DEFAULT_COOLDOWN_SECONDS = 5.0


class CacheUnavailable(Exception):
    """The cache could not serve this call; the caller carries on without it."""


class Script:
    """A Lua script, registered on whichever client the cache holds when it runs."""

    def __init__(self, cache: Cache, source: str) -> None:
        self._cache = cache
        self.source = source

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return self._cache.call(lambda client: self._cache.script_on(client, self.source)(keys, args))


class Cache:
    """Redis, optional: every call returns Redis's answer or raises CacheUnavailable."""

    def __init__(
        self,
        factory: Callable[[], Client],
        *,
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.cooldown = cooldown
        self._clock = clock
        self._client: Client | None = None
        self._scripts: dict[tuple[int, str], Any] = {}
        self._skip_until = 0.0
        self._lock = threading.Lock()
        # Set by `disabled()`: the reason every call is refused, for good.
        self._disabled: str | None = None

    @classmethod
    def disabled(cls, reason: str = "this stage has no cache") -> Cache:
        """A cache that never is: no client is ever built, every call raises
        CacheUnavailable(reason) without touching the network, and nothing is logged (there
        is no outage to report)."""
        cache = cls(_never_built)
        cache._disabled = reason
        return cache

    @property
    def enabled(self) -> bool:
        """False for `Cache.disabled()`; a real cache stays enabled through any outage."""
        return self._disabled is None

    # -- the breaker -----------------------------------------------------------------------
    @property
    def available(self) -> bool:
        """False while the breaker is open (a recent failure), and always when disabled."""
        return self._disabled is None and self._clock() >= self._skip_until

    def call(self, operation: Callable[[Client], Any]) -> Any:
        if self._disabled is not None:
            raise CacheUnavailable(self._disabled)
        if not self.available:
            raise CacheUnavailable("the cache failed recently; skipped until the cooldown ends")
        try:
            return operation(self._connected())
        except FAILURES as error:
            self._trip(error)
            raise CacheUnavailable(f"cache call failed: {type(error).__name__}: {error}") from error

    def _connected(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _trip(self, error: BaseException) -> None:
        with self._lock:
            # Once per outage, not once per call: the breaker keeps calls away meanwhile.
            logger.warning(
                "cache unavailable; skipping it for %.1f s: %s: %s",
                self.cooldown,
                type(error).__name__,
                error,
            )
            self._skip_until = self._clock() + self.cooldown
            client, self._client = self._client, None
            self._scripts.clear()
        if client is not None:
            # A fresh client after the cooldown: a failed-over cluster has a new slot map.
            try:
                client.close()
            except Exception:  # closing a broken client must not hide the first error
                logger.debug("closing the failed cache client raised", exc_info=True)

    # -- commands --------------------------------------------------------------------------
    def register_script(self, source: str) -> Script:
        return Script(self, source)

    def script_on(self, client: Client, source: str) -> Any:
        key = (id(client), source)
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = client.register_script(source)
        return script

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Any Redis command (`get`, `zrange`, `flushall`, ...), through the breaker."""
        if name.startswith("_"):
            raise AttributeError(name)

        def command(*args: Any, **kwargs: Any) -> Any:
            return self.call(lambda client: getattr(client, name)(*args, **kwargs))

        return command

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._scripts.clear()
        if client is not None:
            client.close()


def _never_built() -> Client:
    raise AssertionError("a disabled cache never builds a client")  # call() refuses first


def connect(
    url: str,
    cluster: bool,
    *,
    cooldown: float = DEFAULT_COOLDOWN_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Cache:
    """The cache at `url` (rediss:// turns TLS on), built on first use. No URL, no cache:
    `Cache.disabled()` (Settings.redis_url is empty exactly when CACHE_KIND is none, so a
    tool that connects to whatever the settings name works on both shapes)."""
    if not url:
        return Cache.disabled("no cache URL: this stage has no cache")
    # Short timeouts: a dead or failed-over node must cost one brief wait, then the
    # breaker keeps the cache out of the way while DynamoDB serves. (A hung cluster node
    # costs two: redis-py refreshes the slot map after the first, against the same node.)
    options: dict[str, Any] = {
        "socket_timeout": 2.0,
        "socket_connect_timeout": 1.0,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }

    def factory() -> Client:
        if cluster:
            return RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, **options)

    return Cache(factory, cooldown=cooldown, clock=clock)


def scene_key(scene_id: str, part: str) -> str:
    """Every key of a scene shares the {scene} hash tag, so they live in one slot."""
    return f"collab:{{{scene_id}}}:{part}"
