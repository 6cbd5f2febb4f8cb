"""moto's CPU per DynamoDB call of an update, with and without devstack/moto_speedups.py, in
the same run (not a test: it prints, never fails).

    .venv/bin/python -m bench.moto_cpu              # 3 rounds of 300 calls each
    .venv/bin/python -m bench.moto_cpu --rounds 5

Each `update` frame makes two DynamoDB calls, both through the handlers' own code here:
the log append (collab.durable_log.DurableLog.append, a conditional PutItem of a 60-byte
update) and the fan-out's roster (collab.rooms.Rooms.recipients, the strongly consistent
Query of invariant 2), for a room of 2 and of 20 members. moto serves one request at a
time (devstack/moto_server.py), so its CPU per update bounds the updates per second the
local stack can take, whatever the handlers cost. DynamoDB's CPU is not ours in AWS; this
is what the local stack adds on a laptop.

Per round, a fresh moto server (devstack.services.start_moto, so the tables and the server
are the local stack's) for each of `moto` (COLLAB_MOTO_SPEEDUPS=0) and `speedups`, in turn;
a figure is the server process's utime+stime (/proc) over CALLS calls after 20 warm-up
calls, divided by the calls. The median over the rounds is printed, with each round's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench import proc_stats  # noqa: E402
from devstack import services  # noqa: E402

MODES = {"moto": "0", "speedups": "1"}
ROOMS = (2, 20)


def _calls(url: str) -> dict[str, Callable[[], object]]:
    os.environ.update(services.LOCAL_AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = url
    from collab.aws_clients import json_client
    from collab.blobs import BlobStore
    from collab.durable_log import DurableLog
    from collab.rooms import Member, Rooms

    tables = services.create_tables(url, "bench")
    db = json_client("dynamodb")
    log = DurableLog(db, tables["DOCUMENTS_TABLE"], BlobStore(None, None))
    rooms = Rooms(db, tables["CONNECTIONS_TABLE"], 3600)
    expires = int(time.time()) + 3600
    calls: dict[str, Callable[[], object]] = {"append": lambda: log.append("scene-log", bytes(60))}
    for size in ROOMS:
        scene = f"scene-{size}"
        for i in range(size):
            member = Member(f"conn{i:04d}AbCdEf=", f"user{i}", f"User {i}", "editor", 1, expires)
            rooms.admit(scene, member)
            rooms.join(scene, member)
        calls[f"roster of {size}"] = lambda scene=scene: rooms.recipients(scene)  # type: ignore[misc]
    return calls


def measure(mode: str, count: int) -> dict[str, float]:
    os.environ["COLLAB_MOTO_SPEEDUPS"] = MODES[mode]
    moto = services.start_moto()
    assert moto.process is not None
    try:
        figures = {}
        for name, call in _calls(moto.url).items():
            for _ in range(20):
                call()
            before = proc_stats.tree_cpu_seconds(moto.process.pid)
            for _ in range(count):
                call()
            figures[name] = (proc_stats.tree_cpu_seconds(moto.process.pid) - before) / count * 1e6
        return figures
    finally:
        moto.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            results[mode].append(measure(mode, args.calls))
    print(
        f"\nmoto's CPU per call, µs (median of {args.rounds} rounds of {args.calls} calls; rounds in brackets)"
    )
    names = list(results["moto"][0])
    medians = {
        mode: {n: statistics.median(r[n] for r in runs) for n in names} for mode, runs in results.items()
    }
    for name in names:
        parts = [
            f"{mode} {medians[mode][name]:7.0f} {sorted(round(r[name]) for r in results[mode])}"
            for mode in MODES
        ]
        print(
            f"  {name:<12} "
            + "   ".join(parts)
            + f"   {medians['moto'][name] / medians['speedups'][name]:.1f}x"
        )
    for size in ROOMS:
        update = {mode: medians[mode]["append"] + medians[mode][f"roster of {size}"] for mode in MODES}
        print(
            f"  an update in a room of {size}: moto {update['moto']:,.0f} µs, speedups {update['speedups']:,.0f} µs"
            f" (at most {1e6 / update['moto']:,.0f} and {1e6 / update['speedups']:,.0f} updates/s on one core)"
        )
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
