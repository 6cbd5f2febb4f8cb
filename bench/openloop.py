"""Open-loop room benchmark (issue 10 item 5): not a test, it prints figures and never fails
on speed.

    make bench     # bench.run, then this
    .venv/bin/python -m bench.openloop --rooms 20 --rates 50 --systems ours

One writer inserts a marker into a Y.Text every 1000/RATE ms for --duration seconds, on a
fixed schedule that never waits for anything to arrive (typing does not wait for the
server); every other client of the room, a real Node yjs client, times each marker's
arrival. A marker that has not reached a client --grace seconds after the last send is
lost. Per cell (room size x rate x system): p50/p99/max latency, lost markers, and the CPU
the system spent per update (utime+stime from /proc of every process of the system, moto
left out), then the CPU per update per extra recipient. For ours, also each process's CPU
per update: the emulator, its execution environments, redis-server, and moto, which the
figure leaves out but which shares the machine and serves one request at a time.

Systems, all started here on loopback in the same run:
  ours        devstack's LocalStack (emulator, its execution environments, redis-server;
              moto runs but is not counted), clients on our JSON protocol through
              tests/e2e/lib/client.mjs;
  yws         @y/websocket-server (bench/anchors/package.json), y-websocket protocol;
  pycrdt      pycrdt-websocket (bench/anchors/requirements.txt, its own venv).
Extras (--extras): 100 rooms of 5 clients all typing at once (throughput, p99), and a new
client joining a 20 MB scene on our stack (time; peak memory of the execution
environments, VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench import proc_stats  # noqa: E402

ANCHORS = ROOT / "bench" / "anchors"
FLEET = ROOT / "bench" / "openloop" / "fleet.mjs"
PYCRDT_SERVER = ROOT / "bench" / "openloop" / "pycrdt_server.py"
YWS_SERVER = ANCHORS / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
ANCHOR_VENV = ANCHORS / "venv"
SYSTEM_NAMES = {"ours": "ours", "yws": "y-websocket-server", "pycrdt": "pycrdt-websocket"}


# -- the anchors' installation ---------------------------------------------------------------
def _stale(stamp: Path, *inputs: Path) -> bool:
    """The stamp holds the hash of the manifests it was installed from (not their mtimes: a
    fresh clone or worktree has new mtimes and the same pins)."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    return not (stamp.exists() and stamp.read_text().strip() == digest)


def _stamp(stamp: Path, *inputs: Path) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest() + "\n")


def ensure_anchors(systems: Iterable[str]) -> None:
    """Install the anchors from their pinned manifests into bench/anchors (once)."""
    if "yws" in systems:
        stamp = ANCHORS / "node_modules" / ".installed"
        manifests = (ANCHORS / "package.json", ANCHORS / "package-lock.json")
        if _stale(stamp, *manifests):
            # With the optional packages: the server imports y-leveldb even when persistence
            # is off (it is off here: no YPERSISTENCE); leveldown loads its shipped prebuild.
            npm = ["npm", "ci", "--no-audit", "--no-fund"]
            subprocess.run(npm, cwd=ANCHORS, check=True, stdout=sys.stderr)
            _stamp(stamp, *manifests)
    if "pycrdt" in systems:
        stamp = ANCHOR_VENV / ".installed"
        if _stale(stamp, ANCHORS / "requirements.txt"):
            base = shutil.which("python3") or sys.executable
            subprocess.run([base, "-m", "venv", str(ANCHOR_VENV)], check=True)
            pip = [str(ANCHOR_VENV / "bin" / "pip"), "install", "-q", "-r", "requirements.txt"]
            subprocess.run(pip, cwd=ANCHORS, check=True, stdout=sys.stderr)
            _stamp(stamp, ANCHORS / "requirements.txt")


# -- a Node fleet of clients (bench/openloop/fleet.mjs) -------------------------------------
class Fleet:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, log: Any) -> Fleet:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(FLEET),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            limit=64 * 1024 * 1024,
        )
        return cls(process)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def event(self, kind: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the Node fleet exited (code {await self.process.wait()}); see --log")
        event: dict[str, Any] = json.loads(line)
        if event["event"] != kind:
            raise RuntimeError(f"fleet: expected {kind}, got {event}")
        return event

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.send({"cmd": "close"})
                await asyncio.wait_for(self.process.wait(), 10)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                self.process.kill()
                await self.process.wait()


# -- the systems under load -----------------------------------------------------------------
class System:
    key = ""

    def __init__(self, log: Any) -> None:
        self.log = log

    @property
    def name(self) -> str:
        return SYSTEM_NAMES[self.key]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        """utime+stime of every process of the system (and its reaped children) so far."""
        raise NotImplementedError

    def client_specs(self, room: str, ids: Sequence[int], receive: bool) -> list[dict[str, Any]]:
        raise NotImplementedError


class YWebsocketAnchor(System):
    """An anchor that speaks the y-websocket protocol, one process, rooms by URL path."""

    process: subprocess.Popen[str]
    port = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        from devstack.services import free_port

        self.port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.process = subprocess.Popen(
            self.command(), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # both print one line once they listen
        if not line:
            raise RuntimeError(f"{self.name} did not start; see --log")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def cpu_seconds(self) -> float:
        return proc_stats.tree_cpu_seconds(self.process.pid)

    def client_specs(self, room: str, ids: Sequence[int], receive: bool) -> list[dict[str, Any]]:
        url = f"ws://127.0.0.1:{self.port}/{room}"
        return [
            {"id": i, "room": room, "protocol": "y-websocket", "url": url, "receive": receive} for i in ids
        ]


class YWebsocketServer(YWebsocketAnchor):
    key = "yws"

    def command(self) -> list[str]:
        return ["node", str(YWS_SERVER)]


class PycrdtWebsocket(YWebsocketAnchor):
    key = "pycrdt"

    def command(self) -> list[str]:
        return [str(ANCHOR_VENV / "bin" / "python"), str(PYCRDT_SERVER), str(self.port)]


class Ours(System):
    """devstack's LocalStack in its own process (bench/stack_process.py)."""

    key = "ours"
    process: subprocess.Popen[str]
    info: dict[str, Any]

    def __init__(self, log: Any, stack_log: str) -> None:
        super().__init__(log)
        self.stack_log = stack_log

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.stack_process", self.stack_log],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the local stack did not start; see --stack-log")
        self.info = json.loads(line)
        # Grants and tokens are written by this process, to the stack's moto.
        os.environ.update({k: v for k, v in self.info["env"].items() if k.startswith("AWS_")})
        from collab.access import SceneAccess
        from collab.settings import Settings

        self.settings = Settings.from_env(self.info["env"])
        self.access = SceneAccess(self.settings.access_table)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # the stack stops everything it started
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        # moto stands in for DynamoDB and S3, whose CPU is not ours in AWS.
        return proc_stats.tree_cpu_seconds(self.process.pid, exclude=("moto_server",))

    def cpu_by_role(self) -> dict[str, float]:
        """The stack's CPU so far, split by process: the emulator (this process alone), its
        execution environments, redis-server, and the rest (reaped children, node helpers)."""
        total = self.cpu_seconds()
        pids = proc_stats.descendants(self.process.pid, exclude=("moto_server",))
        roles = {
            "emulator": proc_stats.own_cpu_seconds(self.process.pid),
            "environments": sum(proc_stats.cpu_seconds(p) for p in self.worker_pids()),
            "redis": sum(proc_stats.cpu_seconds(p) for p in pids if "redis-server" in proc_stats.cmdline(p)),
        }
        roles["other"] = total - sum(roles.values())
        # Not part of the figure (DynamoDB's CPU is not ours in AWS), but on this machine it
        # competes for the same cores, and moto serves one request at a time.
        roles["moto, not counted"] = sum(
            proc_stats.tree_cpu_seconds(p)
            for p in proc_stats.descendants(self.process.pid)
            if "moto_server" in proc_stats.cmdline(p)
        )
        return roles

    def worker_pids(self) -> list[int]:
        """The execution environments (spawned Python children of the emulator)."""
        return [
            pid
            for pid in proc_stats.descendants(self.process.pid)
            if "multiprocessing" in proc_stats.cmdline(pid)
            and "resource_tracker" not in proc_stats.cmdline(pid)
        ]

    def client_specs(self, room: str, ids: Sequence[int], receive: bool) -> list[dict[str, Any]]:
        from collabctl.devtoken import mint_dev_token

        specs = []
        for i in ids:
            user = f"bench{i}"
            self.access.grant(room, user, "editor")
            token = mint_dev_token(self.info["jwt_secret"], user, room, name=user)
            specs.append(
                {
                    "id": i,
                    "room": room,
                    "protocol": "collab",
                    "url": self.info["ws_url"],
                    "sceneId": room,
                    "token": token,
                    "receive": receive,
                }
            )
        return specs


# -- measuring -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def settle(system: System, cap: float) -> float:
    """Wait until the system is idle (its CPU rises by under 10 ms in 0.5 s), at most `cap`
    seconds: a queued backlog is still work for the updates just sent. Returns the wait."""
    began = time.monotonic()
    last = system.cpu_seconds()
    while time.monotonic() - began < cap:
        await asyncio.sleep(0.5)
        now = system.cpu_seconds()
        if now - last < 0.010:
            break
        last = now
    return time.monotonic() - began


async def idle_rate(system: System, seconds: float = 2.0) -> float:
    """The system's CPU per second while nothing is sent (subtracted from each cell)."""
    await settle(system, 30)
    c0, t0 = system.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    return (system.cpu_seconds() - c0) / (time.monotonic() - t0)


@dataclass
class Cell:
    system: str
    clients: int
    rate: float
    sent: int = 0
    expected: int = 0
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu_per_update_us: float = float("nan")
    drained: bool = True
    writer_lag_ms: float = 0.0
    throughput: float = 0.0  # deliveries per second (multi-room)
    split_us: dict[str, float] = field(default_factory=dict)  # ours: cpu per update by process
    disconnected: int = 0

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def run_room(
    system: System, idle: float, clients: int, rate: float, args: argparse.Namespace, log: Any
) -> Cell:
    """One writer, clients-1 receivers, in separate Node processes (a busy receiver must not
    delay the writer's schedule)."""
    room = f"ol-{uuid.uuid4().hex[:10]}"
    writer, receivers = await Fleet.start(log), await Fleet.start(log)
    cell = Cell(system.key, clients, rate)
    try:
        await writer.send({"clients": system.client_specs(room, [0], receive=False)})
        await receivers.send({"clients": system.client_specs(room, range(1, clients), receive=True)})
        await writer.event("ready", 120)
        await receivers.event("ready", 120)
        await settle(system, 30)  # the joins' invocations are not part of the updates
        cpu0, t0 = system.cpu_seconds(), time.monotonic()
        roles0 = system.cpu_by_role() if isinstance(system, Ours) else {}
        await writer.send(
            {"cmd": "write", "writers": [0], "gapMs": 1000 / rate, "durationMs": args.duration * 1000}
        )
        written = await writer.event("written", args.duration + 120)
        cell.sent = written["sent"]["0"]
        cell.writer_lag_ms = written["maxLagMs"]
        await receivers.send(
            {"cmd": "collect", "expect": {room: {"0": cell.sent}}, "graceMs": args.grace * 1000}
        )
        result = await receivers.event("result", args.grace + 120)
        waited = await settle(system, args.drain_cap)
        cell.drained = waited < args.drain_cap
        cpu = system.cpu_seconds() - cpu0 - idle * (time.monotonic() - t0)
        cell.cpu_per_update_us = cpu / max(1, cell.sent) * 1e6
        if isinstance(system, Ours):  # idle CPU is not subtracted per role: a rough split
            roles1 = system.cpu_by_role()
            cell.split_us = {k: (roles1[k] - roles0[k]) / max(1, cell.sent) * 1e6 for k in roles1}
        cell.expected, cell.received = result["expected"], result["received"]
        cell.latencies, cell.disconnected = result["latenciesMs"], result["disconnected"]
    finally:
        await asyncio.gather(writer.close(), receivers.close())
    await settle(system, 30)  # the leaves' invocations belong to no cell
    return cell


async def run_many_rooms(system: System, idle: float, args: argparse.Namespace, log: Any) -> Cell:
    """args.many_rooms rooms of args.many_size clients, every client typing at
    args.many_rate markers/s (random phase) and receiving its room's other markers."""
    rooms = [f"mr-{uuid.uuid4().hex[:10]}" for _ in range(args.many_rooms)]
    size = args.many_size
    fleets = [await Fleet.start(log) for _ in range(2)]
    cell = Cell(system.key, size, args.many_rate)
    writers_of: dict[int, list[int]] = {0: [], 1: []}
    room_of: dict[int, str] = {}
    try:
        for index, room in enumerate(rooms):
            ids = range(index * size, (index + 1) * size)
            writers_of[index % 2] += ids
            room_of.update({i: room for i in ids})
        for number, fleet in enumerate(fleets):
            specs = []
            for room_index in range(number, len(rooms), 2):
                ids = range(room_index * size, (room_index + 1) * size)
                specs += system.client_specs(rooms[room_index], ids, receive=True)
            await fleet.send({"clients": specs, "syncTimeoutMs": 120000})
        for fleet in fleets:
            await fleet.event("ready", 600)
        await settle(system, 30)
        cpu0, t0 = system.cpu_seconds(), time.monotonic()
        gap = 1000 / args.many_rate
        for number, fleet in enumerate(fleets):
            phases = {i: random.uniform(0, gap) for i in writers_of[number]}
            await fleet.send(
                {
                    "cmd": "write",
                    "writers": writers_of[number],
                    "gapMs": gap,
                    "durationMs": args.duration * 1000,
                    "phaseMs": phases,
                }
            )
        written = [await fleet.event("written", args.duration + 300) for fleet in fleets]
        sent = {int(k): v for w in written for k, v in w["sent"].items()}
        cell.sent = sum(sent.values())
        cell.writer_lag_ms = max(w["maxLagMs"] for w in written)
        expect: dict[str, dict[str, int]] = {}
        for writer_id, count in sent.items():
            expect.setdefault(room_of[writer_id], {})[str(writer_id)] = count
        for fleet in fleets:
            await fleet.send({"cmd": "collect", "expect": expect, "graceMs": args.grace * 1000})
        results = [await fleet.event("result", args.grace + 300) for fleet in fleets]
        waited = await settle(system, args.drain_cap)
        cell.drained = waited < args.drain_cap
        cpu = system.cpu_seconds() - cpu0 - idle * (time.monotonic() - t0)
        cell.cpu_per_update_us = cpu / max(1, cell.sent) * 1e6
        cell.expected = sum(r["expected"] for r in results)
        cell.received = sum(r["received"] for r in results)
        cell.latencies = [x for r in results for x in r["latenciesMs"]]
        cell.disconnected = sum(r["disconnected"] for r in results)
        first = min(w["firstSendUs"] for w in written)
        last = max(r["lastArrivalUs"] for r in results)
        cell.throughput = cell.received / max(1e-6, (last - first) / 1e6)
    finally:
        await asyncio.gather(*(fleet.close() for fleet in fleets))
    await settle(system, 60)
    return cell


async def join_big_scene(system: Ours, megabytes: float, runs: int, log: Any) -> dict[str, Any]:
    """A scene of `megabytes` (a compacted snapshot in S3, as a long-lived scene ends up),
    then a new client joins `runs` times: time to synced, and the largest VmHWM of the
    execution environments over the join (reset before each)."""
    import boto3
    from pycrdt import Doc, Text

    from collab import cache as cache_module
    from collab.blobs import BlobStore
    from collab.documents import Documents
    from collab.durable_log import DurableLog
    from collab.hot_state import HotState

    settings = system.settings
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    rng = random.Random(7)
    piece = 4096
    with doc.transaction():  # many items, as in a real document, not one giant string
        for _ in range(int(megabytes * 1024 * 1024 / piece)):
            text.insert(rng.randint(0, len(text)), "".join(rng.choices("abcdefghij klmnop\n", k=piece)))
    state = doc.get_update()
    room = f"big-{uuid.uuid4().hex[:10]}"
    log_store = DurableLog(
        boto3.client("dynamodb"),
        settings.documents_table,
        BlobStore(boto3.client("s3"), settings.snapshot_bucket),
    )
    documents = Documents(
        log_store, HotState(cache_module.connect(settings.redis_url, settings.redis_cluster))
    )
    documents.append(room, state)
    documents.compact_log(room)
    times, peaks = [], []
    for run in range(runs):
        await settle(system, 30)
        workers = system.worker_pids()
        for pid in workers:
            proc_stats.reset_peak_memory(pid)
        fleet = await Fleet.start(log)
        try:
            await fleet.send(
                {"clients": system.client_specs(room, [run], receive=True), "syncTimeoutMs": 120000}
            )
            ready = await fleet.event("ready", 180)
        finally:
            await fleet.close()
        times.append(ready["syncMs"][0])
        peaks.append(max((proc_stats.peak_memory_bytes(pid) for pid in system.worker_pids()), default=0))
    return {"state_bytes": len(state), "sync_ms": times, "peak_bytes": peaks}


# -- output ----------------------------------------------------------------------------------
def fmt(value: float, width: int = 8, digits: int = 1) -> str:
    return f"{value:{width},.{digits}f}" if value == value else f"{'-':>{width}}"


def print_table(cells: list[Cell], systems: list[str], rooms: list[int], rates: list[float]) -> None:
    print("room  rate/s  system                 sent     p50 ms     p99 ms     max ms   lost  cpu µs/update")
    for clients in rooms:
        for rate in rates:
            for key in systems:
                c = next((c for c in cells if (c.system, c.clients, c.rate) == (key, clients, rate)), None)
                if c is None:
                    continue
                cpu = fmt(c.cpu_per_update_us, 10, 0) + ("" if c.drained else " (still busy)")
                lost = f"{c.lost}/{c.expected}" if c.lost else "0"
                print(
                    f"{clients:>4}  {rate:>6g}  {SYSTEM_NAMES[key]:<19}  {c.sent:>5}  {fmt(c.p(0.5), 9)}  "
                    f"{fmt(c.p(0.99), 9)}  {fmt(max(c.latencies, default=float('nan')), 9)}  {lost:>5}  {cpu}"
                )
    anchors = [k for k in systems if k != "ours"]
    if "ours" in systems and anchors:
        print("\nratios ours/anchor (p50, p99, cpu per update)")
        for clients in rooms:
            for rate in rates:
                ours = next(
                    (c for c in cells if (c.system, c.clients, c.rate) == ("ours", clients, rate)), None
                )
                if ours is None:
                    continue
                parts = []
                for key in anchors:
                    a = next(
                        (c for c in cells if (c.system, c.clients, c.rate) == (key, clients, rate)), None
                    )
                    if a is None:
                        continue
                    parts.append(
                        f"{SYSTEM_NAMES[key]}: p50 {ours.p(0.5) / a.p(0.5):7.1f}x  p99 {ours.p(0.99) / a.p(0.99):7.1f}x"
                        f"  cpu {ours.cpu_per_update_us / a.cpu_per_update_us:6.1f}x"
                    )
                print(f"{clients:>4} clients {rate:>4g}/s   " + "   ".join(parts))
    split = [c for c in cells if c.split_us]
    if split:
        print("\nours, cpu µs per update by process (idle not subtracted)")
        for c in split:
            print(
                f"{c.clients:>4}  {c.rate:>6g}  "
                + "  ".join(f"{k} {fmt(v, 7, 0)}" for k, v in c.split_us.items())
            )
    small = min(rooms)
    if len(rooms) > 1:
        print(f"\nCPU per update per extra recipient, µs: (cpu/update at N - at {small}) / (N - {small})")
        for key in systems:
            for rate in rates:
                base = next((c for c in cells if (c.system, c.clients, c.rate) == (key, small, rate)), None)
                if base is None:
                    continue
                slopes = []
                for clients in rooms:
                    if clients == small:
                        continue
                    c = next(
                        (c for c in cells if (c.system, c.clients, c.rate) == (key, clients, rate)), None
                    )
                    if c is not None:
                        slope = (c.cpu_per_update_us - base.cpu_per_update_us) / (clients - small)
                        slopes.append(f"N={clients}: {fmt(slope, 7, 0)}")
                print(f"   {SYSTEM_NAMES[key]:<19} {rate:>4g}/s   " + "   ".join(slopes))


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    number_list = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument(
        "--rooms",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[2, 20, 50],
        help="clients per room, e.g. 2,20,50",
    )
    parser.add_argument(
        "--rates", type=number_list, default=[10.0, 20.0, 50.0], help="writer updates/s, e.g. 10,20,50"
    )
    parser.add_argument(
        "--systems", type=lambda t: t.split(","), default=["ours", "yws", "pycrdt"], help="ours,yws,pycrdt"
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds the writer writes, per cell")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds after the last send before a marker is lost"
    )
    parser.add_argument(
        "--drain-cap",
        type=float,
        default=30.0,
        help="seconds to wait for a backlog to clear before the CPU reading",
    )
    parser.add_argument(
        "--extras",
        type=lambda t: [x for x in t.split(",") if x],
        default=["many", "big"],
        help="many,big (or empty: none)",
    )
    parser.add_argument("--many-rooms", type=int, default=100)
    parser.add_argument("--many-size", type=int, default=5)
    parser.add_argument(
        "--many-rate", type=float, default=1.0, help="markers/s per client in the many-rooms run"
    )
    parser.add_argument("--big-mb", type=float, default=20.0)
    parser.add_argument("--big-runs", type=int, default=2)
    parser.add_argument("--log", default=os.devnull, help="where the fleets' and anchors' stderr go")
    parser.add_argument("--stack-log", default=os.devnull, help="where the local stack's logs go")
    args = parser.parse_args(argv)
    unknown = set(args.systems) - set(SYSTEM_NAMES)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEM_NAMES)}")
    return args


def make_system(key: str, args: argparse.Namespace, log: Any) -> System:
    if key == "ours":
        return Ours(log, args.stack_log)
    return YWebsocketServer(log) if key == "yws" else PycrdtWebsocket(log)


async def warm_up(system: System, args: argparse.Namespace, log: Any) -> None:
    """Start the execution environments (cold starts) before anything is measured."""
    quick = argparse.Namespace(**{**vars(args), "duration": 2.0, "grace": 10.0})
    await run_room(system, 0.0, 5, 20.0, quick, log)


async def main_async(args: argparse.Namespace) -> None:
    log = open(args.log, "a")  # noqa: SIM115 (for the process's life)
    ensure_anchors(args.systems)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    # What the stack runs: uncommitted changes there mean the commit is not what was measured.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "functions", "emulator", "devstack", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    print(
        f"open-loop benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}{' + uncommitted: ' + ', '.join(dirty) if dirty else ''}\n"
        f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
        f"Python {sys.version.split()[0]}, Node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}\n"
        f"one writer, fixed schedule for {args.duration:g} s per cell; lost = not arrived {args.grace:g} s after the last send; "
        "cpu = utime+stime of the system's processes per update (moto excluded, idle rate subtracted)",
        flush=True,
    )
    cells: list[Cell] = []
    extras: list[str] = []
    failures: list[str] = []
    for key in args.systems:
        system = make_system(key, args, log)
        system.start()
        try:
            await warm_up(system, args, log)
            idle = await idle_rate(system)
            print(f"[{system.name}] started; idle CPU {idle * 1000:.1f} ms/s", file=sys.stderr, flush=True)
            for clients in args.rooms:
                for rate in args.rates:
                    cell = await run_room(system, idle, clients, rate, args, log)
                    cells.append(cell)
                    print(
                        f"[{system.name}] {clients} clients {rate:g}/s: p50 {cell.p(0.5):.1f} p99 {cell.p(0.99):.1f} ms, "
                        f"lost {cell.lost}/{cell.expected}, cpu {cell.cpu_per_update_us:.0f} µs/update, writer lag max {cell.writer_lag_ms:.1f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
            if "many" in args.extras:
                many = await run_many_rooms(system, idle, args, log)
                extras.append(
                    f"{system.name:<19} {args.many_rooms} rooms x {args.many_size} clients, each typing {args.many_rate:g}/s "
                    f"({many.sent} updates in {args.duration:g} s): delivered {many.throughput:,.0f} msgs/s "
                    f"(offered {many.sent * (args.many_size - 1) / args.duration:,.0f}), p50 {fmt(many.p(0.5), 0)} p99 {fmt(many.p(0.99), 0)} "
                    f"max {fmt(max(many.latencies, default=float('nan')), 0)} ms, lost {many.lost}/{many.expected}, "
                    f"cpu {many.cpu_per_update_us:,.0f} µs/update{'' if many.drained else ' (still busy)'}"
                )
                print(f"[{system.name}] {extras[-1]}", file=sys.stderr, flush=True)
            if "big" in args.extras and isinstance(system, Ours):
                big = await join_big_scene(system, args.big_mb, args.big_runs, log)
                extras.append(
                    f"{system.name:<19} new client joins a {big['state_bytes'] / 1e6:.1f} MB scene (snapshot in S3): synced in "
                    f"{', '.join(f'{t:,.0f}' for t in big['sync_ms'])} ms (median {statistics.median(big['sync_ms']):,.0f}); "
                    f"peak memory of the execution environments (VmHWM) {', '.join(f'{p / 2**20:,.0f}' for p in big['peak_bytes'])} MiB"
                )
                print(f"[{system.name}] {extras[-1]}", file=sys.stderr, flush=True)
        except Exception as error:  # one system failing: the others' figures still count
            failures.append(f"{system.name} stopped early: {error!r}")
            print(f"[{system.name}] {failures[-1]}", file=sys.stderr, flush=True)
        finally:
            system.stop()
    print()
    print_table(cells, args.systems, args.rooms, args.rates)
    if extras:
        print("\nextras")
        for line in extras:
            print("   " + line)
    lagging = [c for c in cells if c.writer_lag_ms > 5]
    if lagging:
        worst = max(lagging, key=lambda c: c.writer_lag_ms)
        print(
            f"\nnote: the writer ran up to {worst.writer_lag_ms:.0f} ms behind its schedule (a loaded machine); latency counts from the actual send"
        )
    for failure in failures:
        print("FAILED: " + failure)
    dropped = [c for c in cells if c.disconnected]
    if dropped:
        print(
            "note: clients disconnected during "
            + ", ".join(f"{SYSTEM_NAMES[c.system]} {c.clients}@{c.rate:g}" for c in dropped)
        )


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()
