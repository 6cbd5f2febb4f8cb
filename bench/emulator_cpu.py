"""CPU of the emulator per delivered Management API post (not a test: it prints, never fails).

    .venv/bin/python -m bench.emulator_cpu                   # 20 members, 5 rounds
    .venv/bin/python -m bench.emulator_cpu --recipients 50

Three processes, so that each one's CPU is its own:
- the stack: bench/stack_process.py, devstack's LocalStack (moto and Redis are processes of
  their own; the emulator runs in this one, its handlers in worker processes that posts
  never wake);
- the members: RECIPIENTS WebSocket clients, connected and synced, draining what arrives;
- this one: `collab.outbox.Outbox.send_all` of a 100-byte message to every member.

A figure is the stack process's utime+stime (from /proc, every thread of it) over BROADCASTS
broadcasts, divided by the posts, after a warm-up broadcast; the median of the rounds is
printed with each round's value. That is what the emulator spends to receive a signed POST
on @connections and write it to a WebSocket, the part of a fan-out that is the emulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import proc_stats

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = '{"type":"update","data":"' + "A" * 74 + '"}'  # 100 bytes


def _members(info: dict[str, Any], count: int, ready: Any, stop: Any) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
    os.environ.update(info["env"])
    from bench.members import hold_members

    asyncio.run(
        hold_members(
            info["env"],
            info["ws_url"],
            info["jwt_secret"],
            "bench-emulator-cpu",
            count,
            ready.send,
            stop.poll,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--broadcasts", type=int, default=200)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    # The stack in a process of its own (bench/stack_process.py), its logs discarded.
    stack = subprocess.Popen(
        [sys.executable, "-m", "bench.stack_process", os.devnull],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stack.stdout is not None and stack.stdin is not None
    info = json.loads(stack.stdout.readline())
    stack_pid = stack.pid
    members_ready, members_ready_child = context.Pipe()
    members_stop, members_stop_child = context.Pipe()
    members = context.Process(
        target=_members, args=(info, args.recipients, members_ready_child, members_stop_child)
    )
    members.start()
    ids = members_ready.recv()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        os.environ.setdefault(key, info["env"].get(key, "bench"))
    sys.path.insert(0, str(ROOT / "functions"))
    from collab.outbox import Outbox

    outbox = Outbox(info["management_url"], workers=len(ids))
    outbox.send_all(ids, MESSAGE)  # warm: connections open
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {os.getloadavg()}")
    figures = []
    for _ in range(args.rounds):
        cpu = proc_stats.cpu_seconds(stack_pid)
        wall = time.perf_counter()
        for _ in range(args.broadcasts):
            outbox.send_all(ids, MESSAGE)
        posts = args.broadcasts * len(ids)
        figures.append(
            (
                (proc_stats.cpu_seconds(stack_pid) - cpu) / posts * 1e6,
                (time.perf_counter() - wall) / args.broadcasts * 1e3,
            )
        )
    cpu_each = sorted(round(f[0]) for f in figures)
    print(
        f"emulator CPU per delivered post, {len(ids)} members x {args.broadcasts} broadcasts: "
        f"median {statistics.median(f[0] for f in figures):.0f} µs (rounds {cpu_each}); "
        f"{statistics.median(f[1] for f in figures):.1f} ms per broadcast"
    )
    members_stop.send(True)
    members.join(30)
    stack.stdin.close()  # stack_process stops everything when its stdin closes
    stack.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
