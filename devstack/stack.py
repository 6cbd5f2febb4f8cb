"""The local stack of `make dev` and of the end-to-end tests: moto (DynamoDB and friends),
Redis, the tables of functions/tables.json, the stage's EventBridge bus, and the emulator
serving functions/routes.json (its WebSocket API and its HTTP API) with the real handlers,
all wired through the handlers' environment.

`cache="none"` is the shape of a stage deployed with `cacheKind: none`: no Redis at all,
and the handlers get CACHE_KIND=none and no REDIS_URL, so they serve everything from
DynamoDB (collab/runtime.py)."""

from __future__ import annotations

import importlib
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Literal

from devstack import deployed, event_bus, faults, services
from emulator import Emulator, EmulatorConfig, run_in_thread
from emulator.config import HttpCors, RouteTable

# collab.settings names every variable; the handlers' code dir is not on sys.path here.
if str(services.FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(services.FUNCTIONS_DIR))
from collab import settings

DEFAULT_PORT = 8787
# The demo page's port and the HTTP API's when the WebSocket API's is DEFAULT_PORT.
DEFAULT_DEMO_PORT = 8788
DEFAULT_HTTP_PORT = 8789
TABLE_PREFIX = "collab-local"
SNAPSHOT_BUCKET = "collab-local-snapshots"
ROUTES_FILE = services.FUNCTIONS_DIR / "routes.json"

ReadyHook = Callable[["LocalStack"], dict[str, str]]
CacheChoice = Literal["redis", "none"]
CACHE_CHOICES: tuple[CacheChoice, ...] = ("redis", "none")


class LocalStack:
    """Start with `with LocalStack() as stack:`; everything stops on exit, also on errors
    half-way through start-up.

    `port`: the emulator's port; taken if free, else a free one (0: always a free one).
    `http_port`: the HTTP API's, likewise; by default 8789, or a free one when `port` is 0.
    `extra_env`: added to (and overriding) the handlers' environment.
    `on_ready`: called once everything runs; the key/values they return are printed by
    `python -m devstack` and kept in `ready_info`.
    `seed_demo`: also run the hooks of devstack/demo.py (its ON_READY list), if it exists;
    its page gets `demo_port` (8788 if free, else a free one; with `port` 0 a free one),
    chosen before the emulator starts so that the HTTP API can allow the page's origin.
    `http_cors_origins`: browser origins the HTTP API allows (CORS, as a stage's
    httpCorsOrigins); the demo page's origin is added to them.
    `faults_dir`: let tests stop, crash or overfill execution environments at the handlers'
    pause points (devstack/faults.py); off by default.
    `warm`: start one execution environment per function before `on_ready` (`make dev`
    does, so the first messages after READY do not wait for cold starts).
    `cache`: "redis" (a redis-server, REDIS_URL if set, else fakeredis) or "none" (no cache:
    nothing is started, and a REDIS_URL in this process's environment is not used).

    Each function gets the memory size the CDK app deploys it with (devstack/deployed.py),
    enforced as Lambda enforces it. The handlers publish change events to the bus named
    `event_bus_name` (their EVENT_BUS_NAME); `subscribe_events()` lets a test read them.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        http_port: int | None = None,
        host: str = "127.0.0.1",
        stage: str = "local",
        extra_env: Mapping[str, str] | None = None,
        on_ready: list[ReadyHook] | None = None,
        seed_demo: bool = True,
        redis_cluster: bool = False,
        max_environments: int = 4,
        faults_dir: Path | None = None,
        warm: bool = False,
        cache: CacheChoice = "redis",
        http_cors_origins: Sequence[str] = (),
    ) -> None:
        if cache not in CACHE_CHOICES:
            raise ValueError(f"cache is {cache!r}; expected one of {CACHE_CHOICES}")
        if cache == "none" and redis_cluster:
            raise ValueError("redis_cluster needs a cache; cache is 'none'")
        self.cache = cache
        self.requested_port = port
        self.requested_http_port = (DEFAULT_HTTP_PORT if port else 0) if http_port is None else http_port
        self.host = host
        self.stage = stage
        self.event_bus_name = event_bus.bus_name(stage)
        self.extra_env = dict(extra_env or {})
        self.on_ready: list[ReadyHook] = list(on_ready or [])
        demo = demo_hooks() if seed_demo else []
        self.on_ready += demo
        self.serves_demo = bool(demo)
        self.http_cors_origins = tuple(http_cors_origins)
        self.demo_port = 0
        self.redis_cluster = redis_cluster
        self.max_environments = max_environments
        self.faults_dir = faults_dir
        self.warm = warm
        self.jwt_secret = secrets.token_urlsafe(48)  # a fresh development secret per run
        self.env: dict[str, str] = {}
        self.ready_info: dict[str, str] = {}
        self.moto_url = ""
        self.redis_url = ""
        self.emulator: Emulator | None = None
        self._resources = ExitStack()

    @property
    def ws_url(self) -> str:
        assert self.emulator is not None, "the stack is not running"
        return self.emulator.ws_url

    @property
    def management_url(self) -> str:
        assert self.emulator is not None, "the stack is not running"
        return self.emulator.management_url

    @property
    def demo_origins(self) -> tuple[str, ...]:
        """The demo page's origins (scheme, host, port) once `start()` chose its port: a
        browser on 127.0.0.1 may have been pointed at localhost, another origin to CORS."""
        assert self.demo_port, "the stack serves no demo page, or has not started"
        hosts = (self.host, "localhost") if self.host == "127.0.0.1" else (self.host,)
        return tuple(f"http://{host}:{self.demo_port}" for host in hosts)

    @property
    def http_url(self) -> str:
        assert self.emulator is not None, "the stack is not running"
        return self.emulator.http_url

    def subscribe_events(self, pattern: Mapping[str, object] | None = None) -> event_bus.EventQueue:
        """A fresh SQS queue behind a rule on the stage's bus: every change event from now
        on, or those matching `pattern` (an EventBridge event pattern)."""
        assert self.moto_url, "the stack is not running"
        return event_bus.subscribe(self.moto_url, self.event_bus_name, pattern)

    def start(self) -> LocalStack:
        try:
            moto = services.start_moto()
            self._resources.callback(moto.stop)
            self.moto_url = moto.url
            cache_env = self._start_cache()
            tables = services.create_tables(self.moto_url, prefix=TABLE_PREFIX)
            services.create_bucket(self.moto_url, SNAPSHOT_BUCKET)
            event_bus.create_bus(self.moto_url, self.event_bus_name)
            # The port first: handlers need MANAGEMENT_ENDPOINT before any worker starts.
            port = pick_port(self.host, self.requested_port)
            http_port = pick_port(self.host, self.requested_http_port)
            while http_port == port:  # both free a moment ago; only one can have it
                http_port = services.free_port()
            cors_origins = self.http_cors_origins
            if self.serves_demo:
                self.demo_port = pick_port(self.host, DEFAULT_DEMO_PORT if self.requested_port else 0)
                while self.demo_port in (port, http_port):
                    self.demo_port = services.free_port()
                cors_origins += self.demo_origins
            if cors_origins:
                services.allow_cors_gets(self.moto_url, SNAPSHOT_BUCKET)
            self.env = {
                **services.aws_endpoint_env(self.moto_url),
                **tables,
                settings.SNAPSHOT_BUCKET: SNAPSHOT_BUCKET,
                event_bus.EVENT_BUS_NAME: self.event_bus_name,
                **cache_env,
                settings.MANAGEMENT_ENDPOINT: f"http://{self.host}:{port}/{self.stage}",
                settings.AUTH_MODE: "hs256",
                settings.JWT_SECRET: self.jwt_secret,
                "POWERTOOLS_SERVICE_NAME": "collab",
                "POWERTOOLS_METRICS_NAMESPACE": "Collab",
                "POWERTOOLS_TRACE_DISABLED": "true",
                **self.extra_env,
            }
            if self.faults_dir is not None:
                self.env[faults.FAULT_DIR] = str(self.faults_dir)
            config = EmulatorConfig(
                routes_file=ROUTES_FILE,
                code_dir=services.FUNCTIONS_DIR,
                stage=self.stage,
                port=port,
                http_port=http_port,
                http_cors=HttpCors(allow_origins=cors_origins),
                host=self.host,
                env=self.env,
                max_environments=self.max_environments,
                function_memory=deployed.function_memory(RouteTable.load(ROUTES_FILE).functions),
                preload=("devstack.faults:install",) if self.faults_dir is not None else (),
            )
            self.emulator = self._resources.enter_context(run_in_thread(config))
            if self.warm:
                failed = [name for name, ok in self.emulator.lambdas.prewarm().items() if not ok]
                if failed:
                    print(
                        f"WARNING: the init of {', '.join(failed)} failed; see the log above", file=sys.stderr
                    )
            for hook in self.on_ready:
                self.ready_info.update(hook(self))
        except BaseException:
            self.stop()
            raise
        return self

    def _start_cache(self) -> dict[str, str]:
        """The handlers' cache settings, after starting the cache if there is one."""
        if self.cache == "none":
            return {settings.CACHE_KIND: "none"}
        self.redis_url, cluster = self._start_redis()
        return {
            settings.CACHE_KIND: "redis",
            settings.REDIS_URL: self.redis_url,
            settings.REDIS_CLUSTER: "true" if cluster else "false",
        }

    def _start_redis(self) -> tuple[str, bool]:
        url = os.environ.get(settings.REDIS_URL, "")
        if url:
            cluster = os.environ.get(settings.REDIS_CLUSTER, "").strip().lower() in {"1", "true", "yes"}
            return url, cluster
        if services.redis_server_binary() is not None:
            service = services.start_redis(cluster=self.redis_cluster)
            self._resources.callback(service.stop)
            return service.url, self.redis_cluster
        print(
            "WARNING: redis-server is not installed; using fakeredis (a Python imitation, "
            "slower under load). Install redis-server, or set REDIS_URL, for a real Redis.",
            file=sys.stderr,
            flush=True,
        )
        service = services.start_fake_redis()
        self._resources.callback(service.stop)
        return service.url, False

    def add_cleanup(self, callback: Callable[[], object]) -> None:
        """Have `callback` run when the stack stops (hooks that start something use this)."""
        self._resources.callback(callback)

    def stop(self) -> None:
        """Stop everything started, newest first; safe to call twice."""
        self.emulator = None
        self._resources.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def pick_port(host: str, wanted: int) -> int:
    """`wanted` if it can be bound now, else a free port (0 always means a free one)."""
    if wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the server will: a port in TIME_WAIT from a previous run is still usable.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, wanted))
                return wanted
            except OSError:
                pass
    return services.free_port()


def demo_hooks() -> list[ReadyHook]:
    """The ON_READY hooks of devstack/demo.py (the demo scene, its token, the demo page)."""
    try:
        demo = importlib.import_module("devstack.demo")
    except ModuleNotFoundError as missing:
        if missing.name != "devstack.demo":
            raise
        return []
    return list(getattr(demo, "ON_READY", []))
