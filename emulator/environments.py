"""Lambda-like execution: per function, a pool of warm worker processes (execution
environments), each serving one invocation at a time. New environments are created on
demand up to a limit; an invocation waits for a free one beyond it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import multiprocessing
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
from emulator.worker import WorkerSpec, worker_main

# Lambda's init phase gets 10 s; allow at least that for a cold start (imports).
INIT_TIMEOUT = 10.0
_spawn = multiprocessing.get_context("spawn")
_counter = itertools.count(1)


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to. status: ok | error | timeout | crash | init_error."""

    status: str
    result: Any
    error: Mapping[str, Any] | None
    request_id: str
    duration_ms: float
    environment: str
    cold_start: bool
    init_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ExecutionEnvironment:
    """One spawned worker process. All methods block; the pool calls them in threads."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.id = spec.environment_id
        self._conn: Connection | None = None
        self._process: SpawnProcess | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> tuple[str, Any]:
        """Spawn and run the init phase: ("ready", init_ms) or ("init_error", error)."""
        parent, child = _spawn.Pipe()
        self._conn = parent
        self._process = _spawn.Process(
            target=worker_main, args=(child, self.spec), name=f"lambda-{self.id}", daemon=True
        )
        self._process.start()
        child.close()
        reply = self._await_reply(max(INIT_TIMEOUT, self.spec.timeout))
        if reply[0] != "ready":
            self.stop()
        return reply

    def invoke(self, event_json: str, request_id: str) -> tuple[str, Any]:
        assert self._conn is not None
        deadline = time.time() + self.spec.timeout
        try:
            self._conn.send((event_json, request_id, deadline))
        except OSError:
            self.stop()
            return ("crash", {"errorType": "Runtime.ExitError", "errorMessage": "environment is gone"})
        return self._await_reply(self.spec.timeout)

    def _await_reply(self, timeout: float) -> tuple[str, Any]:
        conn = self._conn
        try:
            if conn is None:
                raise EOFError
            if conn.poll(timeout):
                kind, payload = conn.recv()
                return (kind, payload)
        # OSError/ValueError: the emulator stopped this environment while it ran.
        except (EOFError, OSError, ValueError):
            code = None
            if self._process is not None:
                self._process.join(1)
                code = self._process.exitcode
            self.stop()
            return ("crash", {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited ({code})"})
        # Lambda stops a timed-out environment; the next invocation gets a fresh one.
        self.stop()
        return (
            "timeout",
            {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout:.2f} seconds"},
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive():
                process.terminate()
                process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class FunctionPool:
    """The execution environments of one function."""

    def __init__(self, spec: WorkerSpec, max_environments: int, executor: ThreadPoolExecutor) -> None:
        self._template = spec
        self._max = max_environments
        self._executor = executor
        self._idle: list[ExecutionEnvironment] = []
        self._all: set[ExecutionEnvironment] = set()
        self._freed = asyncio.Condition()

    async def invoke(self, event: Mapping[str, Any]) -> Outcome:
        request_id = str(uuid.uuid4())
        env, cold = await self._acquire()
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        init_ms: float | None = None
        try:
            if cold:
                kind, payload = await loop.run_in_executor(self._executor, env.start)
                if kind != "ready":
                    return self._outcome("init_error", payload, request_id, started, env, cold)
                init_ms = float(payload)
                started = time.perf_counter()
            kind, payload = await loop.run_in_executor(
                self._executor, env.invoke, json.dumps(event), request_id
            )
            return self._outcome(kind, payload, request_id, started, env, cold, init_ms)
        finally:
            await self._release(env)

    def _outcome(
        self,
        kind: str,
        payload: Any,
        request_id: str,
        started: float,
        env: ExecutionEnvironment,
        cold: bool,
        init_ms: float | None = None,
    ) -> Outcome:
        ok = kind == "result"
        return Outcome(
            status="ok" if ok else kind,
            result=json.loads(payload) if ok else None,
            error=None if ok else payload,
            request_id=request_id,
            duration_ms=(time.perf_counter() - started) * 1000,
            environment=env.id,
            cold_start=cold,
            init_ms=init_ms,
        )

    async def _acquire(self) -> tuple[ExecutionEnvironment, bool]:
        async with self._freed:
            while True:
                if self._idle:
                    # Most recently used first: like Lambda, keep few environments hot.
                    return self._idle.pop(), False
                if len(self._all) < self._max:
                    env = ExecutionEnvironment(self._new_spec())
                    self._all.add(env)
                    return env, True
                await self._freed.wait()

    async def _release(self, env: ExecutionEnvironment) -> None:
        async with self._freed:
            if env.alive:
                self._idle.append(env)
            else:
                self._all.discard(env)
            self._freed.notify()

    def _new_spec(self) -> WorkerSpec:
        environment_id = f"{self._template.function_name}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        return dataclasses.replace(self._template, environment_id=environment_id)

    def stop(self) -> None:
        for env in list(self._all):
            env.stop()
        self._all.clear()
        self._idle.clear()


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
    ) -> None:
        # One thread per possible concurrent invocation, so no invocation waits on a thread.
        self._executor = ThreadPoolExecutor(
            max_workers=max(4, len(functions) * max_environments), thread_name_prefix="invoke"
        )
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
                ),
                max_environments,
                self._executor,
            )
            for name, fn in functions.items()
        }

    async def invoke(self, function: str, event: Mapping[str, Any]) -> Outcome:
        return await self._pools[function].invoke(event)

    def stop(self) -> None:
        for pool in self._pools.values():
            pool.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
