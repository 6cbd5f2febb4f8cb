"""Execution environments that die, as Lambda's do: killed while idle or busy, os._exit,
over their memory setting, timed out, stopped with the emulator. Every fault is caused for
real (SIGKILL, SIGSTOP, a handler that exits or allocates), and after each one the pool
serves the next invocation and holds only live environments, never more than its limit."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from emulator import Emulator
from emulator.config import FunctionSpec
from emulator.environments import Lambdas, Outcome
from emulator.memory import can_measure
from tests.emulator.support import APP_DIR, open_ws, recv_json, send_json, wait_for_record

T = TypeVar("T")
MEMORY_MB = 128
WORK = {"work": FunctionSpec("work", "emuapp.misbehave.act_handler", timeout=3.0, memory_mb=MEMORY_MB)}

needs_proc = pytest.mark.skipif(not can_measure(), reason="memory is measured in /proc (Linux)")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def run(
    scenario: Callable[[Lambdas], Awaitable[T]],
    record_dir: Path,
    functions: dict[str, FunctionSpec] = WORK,
    max_environments: int = 1,
    **env: str,
) -> T:
    async def main() -> T:
        lambdas = Lambdas(
            functions,
            APP_DIR,
            {"RECORD_DIR": str(record_dir), **env},
            max_environments,
            "us-east-1",
            "123456789012",
        )
        try:
            return await scenario(lambdas)
        finally:
            lambdas.stop()

    return asyncio.run(main())


async def until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `condition` until it returns something truthy (no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := condition()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
    return value


def recorded_pid(record_dir: Path, name: str) -> Callable[[], int | None]:
    def read() -> int | None:
        path = record_dir / f"hold-{name}.json"
        return int(json.loads(path.read_text())["pid"]) if path.exists() else None

    return read


def assert_accounted(lambdas: Lambdas, limit: int, seen: set[int]) -> None:
    """Only live environments, within the limit; remember their pids for the final check."""
    envs = lambdas.environments("work")
    assert len(envs) <= limit
    for env in envs:
        assert env.pid is not None and running(env.pid), env
        seen.add(env.pid)


def error_type(outcome: Outcome) -> str | None:
    return None if outcome.error is None else outcome.error.get("errorType")


def test_an_environment_killed_while_idle_is_never_handed_an_invocation(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        first = await lambdas.invoke("work", {})
        assert first.ok
        for _ in range(3):
            (env,) = lambdas.environments("work")
            assert env.pid is not None
            os.kill(env.pid, signal.SIGKILL)
            # At once, not after the death is visible: the invocation must not be lost
            # whether the pool sees the corpse first or hands the event to a dying worker.
            after = await lambdas.invoke("work", {})
            assert after.ok and after.cold_start and after.environment != env.id
        assert len(lambdas.environments("work")) == 1

    run(scenario, tmp_path)


def test_a_worker_killed_before_it_took_the_event_never_loses_the_invocation(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        assert (await lambdas.invoke("work", {})).ok
        (frozen,) = lambdas.environments("work")
        assert frozen.pid is not None
        # Alive but unable to read: the pool picks it, and it dies before taking the event.
        os.kill(frozen.pid, signal.SIGSTOP)
        call = asyncio.create_task(lambdas.invoke("work", {}))
        await until(lambda: any(e.busy for e in lambdas.environments("work")), "the pick")
        os.kill(frozen.pid, signal.SIGKILL)
        outcome = await call
        assert outcome.ok and outcome.cold_start and outcome.environment != frozen.id

    run(scenario, tmp_path)


def test_a_busy_environment_killed_fails_its_invocation_like_lambda(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        name = uuid.uuid4().hex
        call = asyncio.create_task(lambdas.invoke("work", {"do": "hold", "name": name}))
        pid = await until(recorded_pid(tmp_path, name), "the handler to run")
        os.kill(pid, signal.SIGKILL)
        outcome = await call
        assert outcome.status == "crash" and error_type(outcome) == "Runtime.ExitError"
        assert outcome.error is not None
        assert outcome.error["errorMessage"] == (
            f"RequestId: {outcome.request_id} Error: Runtime exited with error: signal: killed"
        )
        assert lambdas.environments("work") == []  # forgotten
        after = await lambdas.invoke("work", {})
        assert after.ok and after.cold_start

    run(scenario, tmp_path)


def test_os_exit_is_runtime_exit_error_with_the_status(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        outcome = await lambdas.invoke("work", {"do": "exit"})
        assert outcome.status == "crash" and error_type(outcome) == "Runtime.ExitError"
        assert outcome.error is not None and outcome.error["errorMessage"].endswith("exit status 3")
        assert (await lambdas.invoke("work", {})).cold_start

    run(scenario, tmp_path)


@needs_proc
def test_memory_setting_is_enforced_a_handler_that_fits_runs(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        fits = await lambdas.invoke("work", {"do": "allocate", "mb": MEMORY_MB // 4})
        assert fits.ok and fits.memory_mb == MEMORY_MB
        assert fits.max_memory_used_mb is not None and fits.max_memory_used_mb < MEMORY_MB
        over = await lambdas.invoke("work", {"do": "allocate", "mb": 2 * MEMORY_MB})
        assert over.status == "out_of_memory" and error_type(over) == "Runtime.OutOfMemory"
        assert over.error is not None and over.error["errorMessage"].endswith("signal: killed")
        assert over.max_memory_used_mb is not None and over.max_memory_used_mb > MEMORY_MB
        after = await lambdas.invoke("work", {})
        assert after.ok and after.cold_start and after.environment != over.environment

    run(scenario, tmp_path)


@needs_proc
def test_one_allocation_far_past_the_setting_fails_at_once_and_the_environment_lives(tmp_path: Path) -> None:
    functions = {"reserve": FunctionSpec("reserve", "emuapp.misbehave.reserve_handler", memory_mb=MEMORY_MB)}

    async def scenario(lambdas: Lambdas) -> None:
        # 6 GiB of address space, never touched: the host would grant it; the ceiling does not.
        outcome = await lambdas.invoke("reserve", {"gib": 6})
        assert outcome.status == "error" and error_type(outcome) == "MemoryError"
        again = await lambdas.invoke("reserve", {"gib": 0})
        assert again.ok and not again.cold_start

    run(scenario, tmp_path, functions)


def test_the_memory_setting_can_be_left_unenforced(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        outcome = await lambdas.invoke("work", {"do": "allocate", "mb": 2 * MEMORY_MB})
        assert outcome.ok

    async def unenforced() -> None:
        lambdas = Lambdas(
            WORK, APP_DIR, {"RECORD_DIR": str(tmp_path)}, 1, "us-east-1", "1", enforce_memory=False
        )
        try:
            await scenario(lambdas)
        finally:
            lambdas.stop()

    asyncio.run(unenforced())


def test_an_environment_killed_in_its_init_phase_is_an_init_error_and_forgotten(tmp_path: Path) -> None:
    functions = {"slow": FunctionSpec("slow", "emuapp.slow_init.lambda_handler")}

    async def scenario(lambdas: Lambdas) -> None:
        call = asyncio.create_task(lambdas.invoke("slow", {}))
        info = await until(lambda: [e for e in lambdas.environments("slow") if e.pid], "the spawn")
        os.kill(info[0].pid, signal.SIGKILL)
        outcome = await call
        assert outcome.status == "init_error" and error_type(outcome) == "Runtime.ExitError"
        assert lambdas.environments("slow") == []

    run(scenario, tmp_path, functions, INIT_SECONDS="60")


# Each fault happens while a second invocation waits for the pool's one slot; it must run
# once the fault is over. The three orders put every fault before and after every other.
EXPECTED = {
    "kill-busy": ("crash", "Runtime.ExitError"),
    "timeout": ("timeout", "Sandbox.Timedout"),
    "exit": ("crash", "Runtime.ExitError"),
    "oom": ("out_of_memory", "Runtime.OutOfMemory"),
}
ORDERS = [
    ["kill-idle", "kill-busy", "timeout", "exit", "oom"],
    ["oom", "exit", "timeout", "kill-busy", "kill-idle"],
    ["timeout", "kill-idle", "oom", "kill-busy", "exit"],
]


async def cause(lambdas: Lambdas, fault: str, record_dir: Path, seen: set[int]) -> None:
    if fault == "kill-idle":
        assert (await lambdas.invoke("work", {})).ok
        (env,) = lambdas.environments("work")
        assert env.pid is not None
        seen.add(env.pid)
        os.kill(env.pid, signal.SIGKILL)
        assert (await lambdas.invoke("work", {})).ok
        return
    name = uuid.uuid4().hex
    do = {"kill-busy": "hold", "timeout": "hold", "exit": "exit", "oom": "allocate"}[fault]
    call = asyncio.create_task(lambdas.invoke("work", {"do": do, "name": name, "mb": 2 * MEMORY_MB}))
    if do == "hold":
        pid = await until(recorded_pid(record_dir, name), "the handler to run")
        seen.add(pid)
    queued = asyncio.create_task(lambdas.invoke("work", {}))
    if fault == "kill-busy":
        os.kill(pid, signal.SIGKILL)
    outcome = await call
    if fault == "oom" and not can_measure():
        assert outcome.ok
    else:
        assert (outcome.status, error_type(outcome)) == EXPECTED[fault]
    assert (await queued).ok


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_no_order_of_deaths_timeouts_and_a_shutdown_leaks_a_slot(tmp_path: Path, order: list[str]) -> None:
    seen: set[int] = set()

    async def scenario(lambdas: Lambdas) -> None:
        for fault in order:
            await cause(lambdas, fault, tmp_path, seen)
            assert_accounted(lambdas, 1, seen)
        # Finally the emulator stops while one invocation runs and another waits: both end
        # at once, and so does every invocation after.
        name = uuid.uuid4().hex
        busy = asyncio.create_task(lambdas.invoke("work", {"do": "hold", "name": name}))
        seen.add(await until(recorded_pid(tmp_path, name), "the handler to run"))
        waiting = asyncio.create_task(lambdas.invoke("work", {}))
        await asyncio.sleep(0)
        lambdas.stop()
        assert (await busy).status == "crash"
        assert (await waiting).status == "crash"
        assert (await lambdas.invoke("work", {})).status == "crash"
        assert lambdas.environments("work") == []

    run(scenario, tmp_path)
    assert [pid for pid in seen if running(pid)] == []


def test_waiters_are_served_when_every_busy_environment_dies(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        names = [uuid.uuid4().hex for _ in range(2)]
        busy = [asyncio.create_task(lambdas.invoke("work", {"do": "hold", "name": n})) for n in names]
        pids = [await until(recorded_pid(tmp_path, n), "both handlers") for n in names]
        waiting = [asyncio.create_task(lambdas.invoke("work", {})) for _ in range(3)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert [(await call).status for call in busy] == ["crash", "crash"]
        served = [await call for call in waiting]
        assert all(outcome.ok for outcome in served)
        assert len(lambdas.environments("work")) <= 2

    run(scenario, tmp_path, max_environments=2)


# Through the WebSocket API: what the client and the log show.


def invocation_lines(caplog: pytest.LogCaptureFixture, route: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "emulator"]
    return [line for line in lines if line.get("event") == "invocation" and line.get("route") == route]


def test_a_killed_message_handler_gives_the_client_internal_server_error(
    emulator: Emulator, record_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator")
    me = uuid.uuid4().hex
    with open_ws(emulator.ws_url) as ws:
        send_json(ws, {"action": "rendezvous", "me": me, "peer": "nobody"})
        pid = wait_for_record(record_dir, f"rv-{me}")["pid"]
        os.kill(pid, signal.SIGKILL)
        answer = recv_json(ws)
        assert answer["message"] == "Internal server error"
        (line,) = [
            line
            for line in invocation_lines(caplog, "rendezvous")
            if line["gatewayRequestId"] == answer["requestId"]
        ]
        assert line["status"] == "crash"
        assert line["error"].startswith("Runtime.ExitError: RequestId: ")
        send_json(ws, {"action": "echo", "after": "crash"})
        assert recv_json(ws)["echo"] == {"action": "echo", "after": "crash"}


@needs_proc
def test_a_message_handler_over_its_memory_gives_internal_server_error_and_is_replaced(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator")
    with open_ws(emulator.ws_url) as ws:
        send_json(ws, {"action": "allocate", "mb": 8})
        fits = recv_json(ws)
        assert fits["allocated_mb"] == 8
        send_json(ws, {"action": "allocate", "mb": 2 * MEMORY_MB})
        answer = recv_json(ws)
        assert answer["message"] == "Internal server error"
        (line,) = [
            line
            for line in invocation_lines(caplog, "allocate")
            if line["gatewayRequestId"] == answer["requestId"]
        ]
        assert line["status"] == "out_of_memory" and line["error"].startswith("Runtime.OutOfMemory: ")
        assert line["memory_size_mb"] == MEMORY_MB and line["max_memory_used_mb"] > MEMORY_MB
        send_json(ws, {"action": "allocate", "mb": 8})
        assert recv_json(ws)["allocated_mb"] == 8
