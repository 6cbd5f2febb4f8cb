"""CPU of the emulator per delivered Management API post (not a test: it prints, never fails).

    .venv/bin/python -m bench.emulator_cpu                   # 20 members, 5 rounds
    .venv/bin/python -m bench.emulator_cpu --recipients 50

Three processes, so that each one's CPU is its own:
- the stack: a devstack LocalStack (moto and Redis are processes of their own; the emulator
  runs in this one, its handlers in worker processes that posts never wake);
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
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = '{"type":"update","data":"' + "A" * 74 + '"}'  # 100 bytes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """utime+stime of one process (all its threads, not its children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _quiet() -> None:
    # The stack's logs (its workers inherit these descriptors) would bury the figures.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)


def _stack(ready: Any, stop: Any) -> None:
    _quiet()
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
    from devstack.stack import LocalStack

    with LocalStack(port=0, seed_demo=False) as stack:
        stack.start()
        ready.send(
            {
                "env": dict(stack.env),
                "ws": stack.ws_url,
                "mgmt": stack.management_url,
                "secret": stack.jwt_secret,
            }
        )
        stop.recv()


def _members(info: dict[str, Any], count: int, ready: Any, stop: Any) -> None:
    _quiet()
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
    os.environ.update(info["env"])
    from websockets.asyncio.client import connect

    from collab import protocol
    from collab.access import SceneAccess
    from collab.settings import Settings
    from collabctl.devtoken import mint_dev_token

    access = SceneAccess(Settings.from_env(info["env"]).access_table)
    scene = "bench-emulator-cpu"
    sync = json.dumps({"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(b"\x00"))})

    async def main() -> None:
        sockets, ids = [], []
        for i in range(count):
            user = f"member{i}"
            access.grant(scene, user, "editor")
            token = mint_dev_token(info["secret"], user, scene, name=user)
            ws = await connect(f"{info['ws']}?sceneId={scene}&token={token}", max_size=None)
            await ws.send(sync)
            while (message := json.loads(await ws.recv()))["type"] != "connected":
                pass
            ids.append(message["connectionId"])
            sockets.append(ws)

        async def drain(ws: Any) -> None:
            async for _ in ws:
                pass

        tasks = [asyncio.create_task(drain(ws)) for ws in sockets]
        ready.send(ids)
        while not stop.poll():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--broadcasts", type=int, default=200)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    stack_ready, stack_ready_child = context.Pipe()
    stack_stop, stack_stop_child = context.Pipe()
    stack = context.Process(target=_stack, args=(stack_ready_child, stack_stop_child))
    stack.start()
    assert stack.pid is not None
    stack_pid = stack.pid
    info = stack_ready.recv()
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

    outbox = Outbox(info["mgmt"], workers=len(ids))
    outbox.send_all(ids, MESSAGE)  # warm: connections open
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {os.getloadavg()}")
    figures = []
    for _ in range(args.rounds):
        cpu = process_cpu(stack_pid)
        wall = time.perf_counter()
        for _ in range(args.broadcasts):
            outbox.send_all(ids, MESSAGE)
        posts = args.broadcasts * len(ids)
        figures.append(
            (
                (process_cpu(stack_pid) - cpu) / posts * 1e6,
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
    stack_stop.send(True)
    stack.join(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
