"""A function flooded with far more concurrent invocations than it has environments, as
the gateway floods `messages` when clients send faster than the handlers finish: every
invocation runs, once, and the backlog drains at the pace of the handlers. Waking every
waiter on every release made each release cost the whole backlog: the drain crawled while
the queue was long (a resync queued behind 2,000 updates waited minutes, tests/e2e
clownschool), so the test compares the pace at the head of the backlog with the pace at
its tail, both measured in the same run on the same loaded machine."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from emulator.config import FunctionSpec
from emulator.environments import Lambdas
from tests.emulator.support import APP_DIR

WORK = {"work": FunctionSpec("work", "emuapp.misbehave.act_handler", timeout=30.0)}
ENVIRONMENTS = 2
BACKLOG = 2000
QUARTER = BACKLOG // 4
# Generous: a fair queue keeps the two paces about equal; the thundering herd made the
# first quarter about 7 times slower than the last.
MAX_SLOWDOWN = 4.0
# Only so that a regression fails instead of hanging; the drain takes a second or two.
DRAIN_TIMEOUT = 300.0


def test_a_backlog_far_over_the_environments_drains_at_the_handlers_pace(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> list[float]:
        # Hold both environments so the whole flood queues behind them, then let go.
        names = [uuid.uuid4().hex for _ in range(ENVIRONMENTS)]
        held = [asyncio.create_task(lambdas.invoke("work", {"do": "hold", "name": n})) for n in names]
        while not all((tmp_path / f"hold-{n}.json").exists() for n in names):
            await asyncio.sleep(0.01)
        finished: list[float] = []
        flood = [asyncio.create_task(lambdas.invoke("work", {"i": i})) for i in range(BACKLOG)]
        for task in flood:
            task.add_done_callback(lambda _t: finished.append(time.monotonic()))
        await asyncio.sleep(0)  # every invocation of the flood has queued
        started = time.monotonic()
        for n in names:
            (tmp_path / f"go-{n}").write_text("")
        assert all(o.ok for o in await asyncio.gather(*held))
        outcomes = await asyncio.wait_for(asyncio.gather(*flood), DRAIN_TIMEOUT)
        assert [o.status for o in outcomes] == ["ok"] * BACKLOG
        assert len({o.request_id for o in outcomes}) == BACKLOG
        assert {o.result["did"] for o in outcomes} == {"ok"}
        return [started, *finished]

    async def main() -> list[float]:
        lambdas = Lambdas(WORK, APP_DIR, {"RECORD_DIR": str(tmp_path)}, ENVIRONMENTS, "us-east-1", "1")
        try:
            return await scenario(lambdas)
        finally:
            lambdas.stop()

    times = asyncio.run(main())
    head = times[QUARTER] - times[0]
    tail = times[BACKLOG] - times[BACKLOG - QUARTER]
    print(
        f"{BACKLOG} invocations on {ENVIRONMENTS} environments: {times[-1] - times[0]:.2f} s; "
        f"first quarter {head:.2f} s, last quarter {tail:.2f} s"
    )
    assert head <= MAX_SLOWDOWN * tail, (head, tail)


def test_a_waiter_cancelled_in_line_does_not_take_the_freed_environment(tmp_path: Path) -> None:
    async def scenario(lambdas: Lambdas) -> None:
        name = uuid.uuid4().hex
        held = asyncio.create_task(lambdas.invoke("work", {"do": "hold", "name": name}))
        while not (tmp_path / f"hold-{name}.json").exists():
            await asyncio.sleep(0.01)
        # The gateway cancels nothing today, but a caller may: the one behind must still run.
        first = asyncio.create_task(lambdas.invoke("work", {}))
        second = asyncio.create_task(lambdas.invoke("work", {}))
        await asyncio.sleep(0)
        first.cancel()
        (tmp_path / f"go-{name}").write_text("")
        assert (await held).ok
        outcome = await asyncio.wait_for(second, DRAIN_TIMEOUT)
        assert outcome.ok and not outcome.cold_start
        assert first.cancelled()
        assert len(lambdas.environments("work")) == 1

    async def main() -> None:
        lambdas = Lambdas(WORK, APP_DIR, {"RECORD_DIR": str(tmp_path)}, 1, "us-east-1", "1")
        try:
            await scenario(lambdas)
        finally:
            lambdas.stop()

    asyncio.run(main())
