"""Lambda-like execution: per function, a pool of worker processes (execution
environments), each serving one invocation at a time. New environments are created on
demand up to a limit; an invocation waits for a free one beyond it.

An environment can end at any moment: its handler calls os._exit or segfaults, something
kills it, it goes over its memory setting (emulator/memory.py), it times out, or the
emulator stops. As on Lambda, the invocation it was running fails (`Runtime.ExitError`,
`Runtime.OutOfMemory`, `Sandbox.Timedout`), the pool forgets the environment, and the
next invocation starts a fresh one. An environment that dies while idle never ran
anything: it is never handed an invocation, and one that dies in the instant between
being picked and taking the event (the worker acknowledges each event) has its
invocation given to a fresh environment.

Threads: each invocation runs in a thread of the executor, which owns the environment's
pipe for that time. The pool's bookkeeping is under a lock; a lease is returned when the
thread is done (not when the awaiting task is), so a cancelled invocation cannot put an
environment in use back on the idle list, and no order of deaths, timeouts and shutdowns
leaks a slot.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from emulator.config import FunctionSpec
from emulator.memory import MIB, MemoryGuard
from emulator.worker import WorkerSpec, worker_main

# Lambda's init phase gets 10 s; allow at least that for a cold start (imports).
INIT_TIMEOUT = 10.0
# How often an invocation is handed to a fresh environment when the one picked for it
# dies before taking it (several deaths in a row are a broken handler, not bad luck).
DELIVERY_ATTEMPTS = 3
_spawn = multiprocessing.get_context("spawn")
_counter = itertools.count(1)

# Why the emulator ended an environment (None: it died on its own).
OUT_OF_MEMORY = "out_of_memory"
TIMED_OUT = "timed_out"
SHUTDOWN = "shutdown"
# What _receive returns besides a message.
_DIED = object()
_TIMED_OUT = object()


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to.
    status: ok | error | timeout | crash | out_of_memory | init_error."""

    status: str
    result: Any
    error: Mapping[str, Any] | None
    request_id: str
    duration_ms: float
    environment: str
    cold_start: bool
    init_ms: float | None = None
    memory_mb: int | None = None
    # Lambda's "Max Memory Used": the environment's peak resident size so far.
    max_memory_used_mb: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class EnvironmentInfo:
    """One live execution environment, for tests and tools that need to find its process."""

    id: str
    function: str
    pid: int | None
    busy: bool


def exit_error(request_id: str, how: str, error_type: str = "Runtime.ExitError") -> dict[str, str]:
    # Lambda's wording: "RequestId: ... Error: Runtime exited with error: signal: killed".
    return {
        "errorType": error_type,
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {how}",
    }


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "signal: killed"
    if exitcode < 0:
        name = signal.strsignal(-exitcode) or f"signal {-exitcode}"
        return f"signal: {name.lower()}"
    return f"exit status {exitcode}"


class ExecutionEnvironment:
    """One spawned worker process. start/invoke/close block (the pool calls them in a
    thread that owns the environment meanwhile); end may be called from any thread."""

    def __init__(self, spec: WorkerSpec, guard: MemoryGuard) -> None:
        self.spec = spec
        self.id = spec.environment_id
        self.memory_limit_bytes = spec.memory_mb * MIB
        self._guard = guard
        self._conn: Connection | None = None
        self._process: SpawnProcess | None = None
        self._ending: str | None = None
        self._peak = 0
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    @property
    def alive(self) -> bool:
        process = self._process
        return process is not None and process.is_alive()

    @property
    def max_memory_used_mb(self) -> int | None:
        return math.ceil(self._peak / MIB) if self._peak else None

    # -- what the memory guard calls ---------------------------------------------------
    def record_peak(self, peak: int) -> None:
        self._peak = max(self._peak, peak)

    def end_out_of_memory(self) -> None:
        self.end(OUT_OF_MEMORY)

    # -- life ------------------------------------------------------------------------------
    def start(self, request_id: str = "-") -> tuple[str, Any]:
        """Spawn and run the init phase: ("ready", init_ms) or ("init_error", error);
        `request_id` is the invocation that waits for it (Lambda's messages name it)."""
        parent, child = _spawn.Pipe()
        process = _spawn.Process(
            target=worker_main, args=(child, self.spec), name=f"lambda-{self.id}", daemon=True
        )
        with self._lock:
            if self._ending is not None:  # stopped before it started
                parent.close()
                child.close()
                return ("init_error", exit_error(request_id, "signal: killed"))
            self._conn, self._process = parent, process
            process.start()
        child.close()
        self._guard.watch(self)
        try:
            reply = self._receive(time.monotonic() + max(INIT_TIMEOUT, self.spec.timeout))
        finally:
            self._guard.unwatch(self)
        if reply is _TIMED_OUT:
            self.end(TIMED_OUT)
            self.close()
            return ("init_error", {"errorType": "Sandbox.Timedout", "errorMessage": "Init phase timed out"})
        if reply is _DIED:
            return ("init_error", self._death(request_id))
        kind, payload = reply
        if kind != "ready":
            self.close()
        return (kind, payload)

    def invoke(self, event_json: str, request_id: str) -> tuple[str, Any]:
        """("result", json) | ("error", e) | ("timeout", e) | ("crash", e) |
        ("out_of_memory", e), or ("undelivered", None) when the worker died before it
        took the event (it never ran it)."""
        timeout = self.spec.timeout
        deadline = time.monotonic() + timeout
        conn = self._conn
        self._guard.watch(self)
        try:
            try:
                if conn is None:
                    raise OSError("no worker")
                conn.send((event_json, request_id, time.time() + timeout))
            except (OSError, ValueError):
                return self._undelivered(request_id)
            taken = self._receive(deadline)
            if taken is _DIED:
                return self._undelivered(request_id)
            # Normally ("started",); anything else (a timeout) stands for the answer.
            reply: Any = self._receive(deadline) if taken == ("started",) else taken
            if reply is _DIED:
                death = self._death(request_id)
                return ("out_of_memory" if death["errorType"] == "Runtime.OutOfMemory" else "crash", death)
            if reply is _TIMED_OUT:
                # Lambda stops a timed-out environment; the next invocation gets a fresh one.
                self.end(TIMED_OUT)
                self.close()
                return (
                    "timeout",
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                    },
                )
            kind, payload = reply
            return (kind, payload)
        finally:
            self._guard.unwatch(self)

    def end(self, reason: str) -> None:
        """Kill the worker now (from any thread); the invocation it runs fails."""
        with self._lock:
            if self._ending is None:
                self._ending = reason
            process = self._process
        if process is not None:
            process.kill()  # a no-op once the process has been reaped

    def close(self) -> None:
        """Forget the worker, killing it if it still runs."""
        with self._lock:
            process, self._process = self._process, None
            conn, self._conn = self._conn, None
            if self._ending is None:
                self._ending = SHUTDOWN
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
        if conn is not None:
            conn.close()

    def _receive(self, deadline: float) -> Any:
        """The worker's next message, _DIED, or _TIMED_OUT at `deadline`. Waits on the
        process's sentinel as well as the pipe: a child the handler started may hold the
        pipe open after the worker is gone."""
        conn, process = self._conn, self._process
        if conn is None or process is None:
            return _DIED
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _TIMED_OUT
            try:
                ready = multiprocessing.connection.wait([conn, process.sentinel], remaining)
                if not ready:
                    continue
                if conn in ready or conn.poll(0):  # a reply written just before dying counts
                    return conn.recv()
            except (EOFError, OSError, ValueError):
                return _DIED
            return _DIED

    def _undelivered(self, request_id: str) -> tuple[str, Any]:
        reason = self._ending
        death = self._death(request_id)
        if reason == OUT_OF_MEMORY:
            return ("out_of_memory", death)
        # It never ran the event; the pool gives it to a fresh environment (or, if the
        # emulator is stopping, reports the crash).
        return ("undelivered", None)

    def _death(self, request_id: str) -> dict[str, str]:
        """Reap the dead worker and say how it ended, as Lambda says it."""
        process = self._process
        exitcode = None
        if process is not None:
            process.join(5)
            exitcode = process.exitcode
        reason = self._ending
        self.close()
        if reason == OUT_OF_MEMORY:
            return exit_error(request_id, "signal: killed", "Runtime.OutOfMemory")
        return exit_error(request_id, _how_it_ended(exitcode))


@dataclass(frozen=True)
class _Attempt:
    kind: str
    payload: Any
    duration_ms: float
    cold: bool
    init_ms: float | None


class FunctionPool:
    """The execution environments of one function."""

    def __init__(
        self, spec: WorkerSpec, max_environments: int, executor: ThreadPoolExecutor, guard: MemoryGuard
    ) -> None:
        self._template = spec
        self._max = max_environments
        self._executor = executor
        self._guard = guard
        self._lock = threading.Lock()
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._waiters: collections.deque[asyncio.Future[tuple[ExecutionEnvironment, bool] | None]] = (
            collections.deque()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def function(self) -> str:
        return self._template.function_name

    def environments(self) -> list[EnvironmentInfo]:
        """The live environments; idle ones found dead are forgotten here and now."""
        with self._lock:
            dead = [env for env in self._idle if not env.alive]
            self._idle = [env for env in self._idle if env not in dead]
            members = [(env, False) for env in self._idle] + [(env, True) for env in self._busy]
        for env in dead:
            env.close()
        return [EnvironmentInfo(env.id, self.function, env.pid, busy) for env, busy in members]

    async def invoke(self, event: Mapping[str, Any]) -> Outcome:
        request_id = str(uuid.uuid4())
        event_json = json.dumps(event)
        loop = asyncio.get_running_loop()
        self._loop = loop
        for _ in range(DELIVERY_ATTEMPTS):
            lease = await self._acquire(loop)
            if lease is None:
                return self._outcome(request_id, "", _stopped_attempt(request_id))
            env, cold = lease
            future = loop.run_in_executor(self._executor, self._run, env, cold, event_json, request_id)
            # The lease ends when the thread is done with the environment, even if the
            # task awaiting it is cancelled meanwhile.
            future.add_done_callback(functools.partial(self._release, env))
            attempt = await asyncio.shield(future)
            if attempt.kind != "undelivered":
                return self._outcome(request_id, env.id, attempt, env)
        gone = _Attempt("crash", exit_error(request_id, "signal: killed"), 0.0, True, None)
        return self._outcome(request_id, "", gone)

    def _run(self, env: ExecutionEnvironment, cold: bool, event_json: str, request_id: str) -> _Attempt:
        started = time.perf_counter()
        init_ms: float | None = None
        if cold:
            kind, payload = env.start(request_id)
            if kind != "ready":
                return _Attempt("init_error", payload, (time.perf_counter() - started) * 1000, cold, None)
            init_ms = float(payload)
            started = time.perf_counter()
        kind, payload = env.invoke(event_json, request_id)
        return _Attempt(kind, payload, (time.perf_counter() - started) * 1000, cold, init_ms)

    def _outcome(
        self, request_id: str, environment: str, attempt: _Attempt, env: ExecutionEnvironment | None = None
    ) -> Outcome:
        ok = attempt.kind == "result"
        return Outcome(
            status="ok" if ok else attempt.kind,
            result=json.loads(attempt.payload) if ok else None,
            error=None if ok else attempt.payload,
            request_id=request_id,
            duration_ms=attempt.duration_ms,
            environment=environment,
            cold_start=attempt.cold,
            init_ms=attempt.init_ms,
            memory_mb=self._template.memory_mb,
            max_memory_used_mb=None if env is None else env.max_memory_used_mb,
        )

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> tuple[ExecutionEnvironment, bool] | None:
        """A free warm environment (most recently used first: like Lambda, keep few
        environments hot), else a new one while under the limit, else wait in line. None
        once the pool is stopped.

        Waiters form a queue and each freed environment (or slot) is handed to the one at
        its head, so a release costs the same however long the backlog is. (Waking every
        waiter on every release cost the whole backlog each time: with hundreds of
        messages queued the event loop did nothing else, and a resync waited minutes.)"""
        dead: list[ExecutionEnvironment] = []
        with self._lock:
            if self._closed:
                return None
            # Nobody overtakes an invocation that already waits.
            lease = None if self._waiters else self._lease_locked(dead)
            waiter: asyncio.Future[tuple[ExecutionEnvironment, bool] | None] | None = None
            if lease is None:
                waiter = loop.create_future()
                self._waiters.append(waiter)
        for env in dead:
            env.close()  # already exited: this only reaps it
        if lease is not None:
            return lease
        assert waiter is not None
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            # Handed an environment in the instant before the cancel: pass it on.
            if waiter.done() and not waiter.cancelled() and (handed := waiter.result()) is not None:
                self._release(handed[0])
            raise

    def _lease_locked(self, dead: list[ExecutionEnvironment]) -> tuple[ExecutionEnvironment, bool] | None:
        """Under the lock: take an idle live environment or a free slot, marking it busy;
        idle environments found dead go to `dead` (the caller closes them)."""
        while self._idle:
            env = self._idle.pop()
            if env.alive:
                self._busy.add(env)
                return (env, False)
            dead.append(env)  # died while idle: forget it
        if len(self._busy) < self._max:
            env = ExecutionEnvironment(self._new_spec(), self._guard)
            self._busy.add(env)
            return (env, True)
        return None

    def _release(self, env: ExecutionEnvironment, _done: object = None) -> None:
        """On the event loop, when the invocation's thread is done with `env`: it (or its
        slot) goes to the first waiter still waiting."""
        dead: list[ExecutionEnvironment] = []
        with self._lock:
            self._busy.discard(env)
            keep = not self._closed and env.alive
            if keep:
                self._idle.append(env)
            while self._waiters and not self._closed:
                waiter = self._waiters[0]
                if waiter.done():  # cancelled: its task removes nothing more
                    self._waiters.popleft()
                    continue
                lease = self._lease_locked(dead)
                if lease is None:
                    break
                self._waiters.popleft()
                waiter.set_result(lease)
        if not keep:
            env.close()
        for other in dead:
            other.close()

    def prewarm(self) -> bool:
        """Start one execution environment ahead of traffic, unless one exists: its init
        runs now instead of on the first message (what provisioned concurrency gives on
        AWS; `make dev` does it before READY so the first fast typing does not wait for
        cold starts). Blocks until the init ends; True if it succeeded. From any thread."""
        with self._lock:
            if self._closed or self._idle or self._busy:
                return True
            env = ExecutionEnvironment(self._new_spec(), self._guard)
            self._busy.add(env)
        kind, _ = env.start()
        if kind != "ready":
            env.close()  # a failed init: the first invocation starts a fresh one
        with self._lock:
            loop = self._loop
            if loop is None:
                # No invocation has begun, so nobody waits for a slot (waiters are made
                # under this lock, after an invocation sets the loop): give it back here.
                self._busy.discard(env)
                if not self._closed and env.alive:
                    self._idle.append(env)
                    return True
        if loop is None:
            env.close()
            return False
        loop.call_soon_threadsafe(self._release, env)  # waiters are the loop's to hand to
        return kind == "ready"

    def _new_spec(self) -> WorkerSpec:
        environment_id = f"{self._template.function_name}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        return dataclasses.replace(self._template, environment_id=environment_id)

    def stop(self) -> None:
        """End every environment at once, idle or busy (Lambda's shutdown phase kills the
        runtime too); from any thread. Waiting and later invocations get a crash outcome."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            waiters = list(self._waiters)
            self._waiters.clear()
        for env in busy + idle:
            env.end(SHUTDOWN)  # the busy ones' threads close them
        for env in idle:
            env.close()
        loop = self._loop
        for waiter in waiters:
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[tuple[ExecutionEnvironment, bool] | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _stopped_attempt(request_id: str) -> _Attempt:
    return _Attempt("crash", exit_error(request_id, "signal: killed"), 0.0, False, None)


class Lambdas:
    """Every function of the route table, invoked by name."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        code_dir: Path,
        env: Mapping[str, str],
        max_environments: int,
        region: str,
        account_id: str,
        *,
        preload: tuple[str, ...] = (),
        enforce_memory: bool = True,
        guard: MemoryGuard | None = None,
    ) -> None:
        # One thread per possible concurrent invocation, so no invocation waits on a thread.
        self._executor = ThreadPoolExecutor(
            max_workers=max(4, len(functions) * max_environments), thread_name_prefix="invoke"
        )
        self.guard = guard or MemoryGuard(enabled=enforce_memory)
        self._pools = {
            name: FunctionPool(
                WorkerSpec(
                    function_name=name,
                    handler=fn.handler,
                    code_dir=str(Path(code_dir).resolve()),
                    env=dict(env),
                    memory_mb=fn.memory_mb,
                    timeout=fn.timeout,
                    region=region,
                    account_id=account_id,
                    environment_id="",
                    preload=tuple(preload),
                    enforce_memory=enforce_memory,
                ),
                max_environments,
                self._executor,
                self.guard,
            )
            for name, fn in functions.items()
        }

    async def invoke(self, function: str, event: Mapping[str, Any]) -> Outcome:
        return await self._pools[function].invoke(event)

    def prewarm(self) -> dict[str, bool]:
        """One warm execution environment per function, their inits run side by side:
        {function: init succeeded}."""
        futures = {name: self._executor.submit(pool.prewarm) for name, pool in self._pools.items()}
        return {name: future.result() for name, future in futures.items()}

    def environments(self, function: str | None = None) -> list[EnvironmentInfo]:
        """The live execution environments (of one function, or of all)."""
        pools = [self._pools[function]] if function is not None else list(self._pools.values())
        return [info for pool in pools for info in pool.environments()]

    def stop(self) -> None:
        for pool in self._pools.values():
            pool.stop()
        self.guard.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
