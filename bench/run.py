"""Benchmarks of the sync path (not tests: they print figures, they never fail on speed).

    make bench            # or: .venv/bin/python -m bench.run

Prints, against the local stack (moto, Redis, the emulator running the real handlers):
1. handler CPU per `update` (median, µs): decode/validate, durable write, cache write,
   fan-out per recipient, with a bare boto3 post_to_connection loop as the baseline;
2. end-to-end latency from one client's update to the others' receipt, p50/p99, with 2 and
   20 clients, against a ping/pong round trip through the same emulator as the baseline;
3. the time for a new client to sync the final automerge-paper document, warm cache and
   flushed cache, against loading the same bytes into a pycrdt Doc in-process.
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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

import boto3  # noqa: E402
from pycrdt import Doc, Text  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench import traces  # noqa: E402
from collab import cache as cache_module  # noqa: E402
from collab import protocol  # noqa: E402
from collab.access import SceneAccess  # noqa: E402
from collab.blobs import BlobStore  # noqa: E402
from collab.documents import Documents, validate_update  # noqa: E402
from collab.durable_log import DurableLog  # noqa: E402
from collab.hot_state import HotState  # noqa: E402
from collab.outbox import Outbox  # noqa: E402
from collab.settings import Settings  # noqa: E402
from collabctl.devtoken import mint_dev_token  # noqa: E402
from devstack.stack import LocalStack  # noqa: E402

SYNC_FROM_NOTHING = json.dumps(
    {"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(b"\x00"))}
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def typing_updates(count: int) -> list[bytes]:
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text), "abcdefghij"[i % 10])
    return updates


class Bench:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.settings = Settings.from_env(stack.env)
        self.scene = f"bench-{uuid.uuid4().hex[:8]}"
        self.access = SceneAccess(self.settings.access_table)

    def token(self, user: str) -> str:
        self.access.grant(self.scene, user, "editor")
        return mint_dev_token(self.stack.jwt_secret, user, self.scene, name=user)

    def url(self, user: str) -> str:
        return f"{self.stack.ws_url}?sceneId={self.scene}&token={self.token(user)}"


# -- 1. CPU per update ----------------------------------------------------------------------
def _recipients(url: str, count: int, ready: Any, stop: Any) -> None:
    """Child process: hold `count` members open and drain what they receive, so that their
    CPU is not counted in the parent's fan-out figures."""

    async def main() -> None:
        sockets = [await connect(f"{url}&n={i}") for i in range(count)]
        ids = []
        for ws in sockets:
            await ws.send(SYNC_FROM_NOTHING)
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "connected":
                    ids.append(message["connectionId"])
                    break
        ready.send(ids)

        async def drain(ws: Any) -> None:
            async for _ in ws:
                pass

        tasks = [asyncio.create_task(drain(ws)) for ws in sockets]
        while not stop.poll():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()

    asyncio.run(main())


def cpu_per_update(bench: Bench, samples: int, recipients: int) -> dict[str, float]:
    settings = bench.settings
    dynamodb = boto3.client("dynamodb")
    log = DurableLog(
        dynamodb, settings.documents_table, BlobStore(boto3.client("s3"), settings.snapshot_bucket)
    )
    hot = HotState(cache_module.connect(settings.redis_url, settings.redis_cluster))
    outbox = Outbox(bench.stack.management_url, settings.fanout_workers)
    # The anchor: a bare boto3 post, what the outbox replaced (docs/design.md §3).
    bare = boto3.client("apigatewaymanagementapi", endpoint_url=bench.stack.management_url)
    context = multiprocessing.get_context("spawn")
    parent_ready, child_ready = context.Pipe()
    parent_stop, child_stop = context.Pipe()
    child = context.Process(
        target=_recipients, args=(bench.url("recipient"), recipients, child_ready, child_stop)
    )
    child.start()
    connection_ids: list[str] = parent_ready.recv()
    frames = [
        json.dumps({"action": "update", "data": protocol.encode_base64(protocol.update_message(u))})
        for u in typing_updates(samples)
    ]
    timings: dict[str, list[float]] = {
        "decode_validate": [],
        "durable_write": [],
        "cache_write": [],
        "fanout": [],
    }
    baseline: list[float] = []
    for index, frame in enumerate(frames):
        t0 = time.thread_time_ns()
        message = protocol.decode_sync_message(protocol.decode_base64(protocol.parse_frame(frame)["data"]))
        validate_update(message.payload)
        t1 = time.thread_time_ns()
        entry_id = log.append(bench.scene, message.payload)
        t2 = time.thread_time_ns()
        hot.append(bench.scene, entry_id, message.payload)
        t3 = time.thread_time_ns()
        text = protocol.data_message("update", protocol.update_message(message.payload))
        p0 = time.process_time_ns()  # all threads: the fan-out pool works in its own
        outbox.send_all(connection_ids, text)
        p1 = time.process_time_ns()
        timings["decode_validate"].append((t1 - t0) / 1000)
        timings["durable_write"].append((t2 - t1) / 1000)
        timings["cache_write"].append((t3 - t2) / 1000)
        timings["fanout"].append((p1 - p0) / 1000 / len(connection_ids))
        if index % 5 == 0:  # the baseline: one bare boto3 post, sequential
            b0 = time.process_time_ns()
            for connection_id in connection_ids:
                bare.post_to_connection(ConnectionId=connection_id, Data=text.encode())
            baseline.append((time.process_time_ns() - b0) / 1000 / len(connection_ids))
    parent_stop.send(True)
    child.join(10)
    result = {name: statistics.median(values) for name, values in timings.items()}
    result["baseline_bare_post"] = statistics.median(baseline)
    return result


# -- 2. end-to-end latency -------------------------------------------------------------------
async def latency(bench: Bench, clients: int, rounds: int) -> dict[str, float]:
    sockets = [await connect(bench.url(f"user{i}"), max_size=None) for i in range(clients)]
    for ws in sockets:
        await ws.send(SYNC_FROM_NOTHING)
    for ws in sockets:  # each sees its own sync answer
        await _wait_for(ws, lambda m: m["type"] == "sync")
    sender, receivers = sockets[0], sockets[1:]
    samples: list[float] = []
    pings: list[float] = []
    warmup = 20  # first invocations start execution environments (cold starts): not measured
    for index, update in enumerate(typing_updates(rounds + warmup)):
        started = time.perf_counter()
        await sender.send(
            json.dumps({"action": "update", "data": protocol.encode_base64(protocol.update_message(update))})
        )
        arrivals = await asyncio.gather(*(_arrival(ws, "update") for ws in receivers))
        p0 = time.perf_counter()
        await sender.send(json.dumps({"action": "ping"}))
        pong = await _arrival(sender, "pong")
        if index >= warmup:
            samples += [(arrival - started) * 1000 for arrival in arrivals]
            pings.append((pong - p0) * 1000)
    for ws in sockets:
        await ws.close()
    return {
        "p50": percentile(samples, 0.5),
        "p99": percentile(samples, 0.99),
        "ping_p50": percentile(pings, 0.5),
    }


async def _arrival(ws: Any, kind: str) -> float:
    await _wait_for(ws, lambda m: m["type"] == kind)
    return time.perf_counter()


async def _wait_for(ws: Any, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if predicate(message):
            return message


# -- 3. a new client syncs a big document ----------------------------------------------------
async def sync_time(bench: Bench, state: bytes, runs: int) -> dict[str, float]:
    settings = bench.settings
    dynamodb = boto3.client("dynamodb")
    redis = cache_module.connect(settings.redis_url, settings.redis_cluster)
    log = DurableLog(
        dynamodb, settings.documents_table, BlobStore(boto3.client("s3"), settings.snapshot_bucket)
    )
    documents = Documents(log, HotState(redis))
    documents.append(bench.scene, state)
    documents.compact_log(bench.scene)  # the steady state: a snapshot in S3, an empty log

    async def one() -> float:
        started = time.perf_counter()
        async with connect(bench.url("reader"), max_size=None) as ws:
            await ws.send(SYNC_FROM_NOTHING)
            chunks: dict[int, str] = {}
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "chunk":
                    chunks[message["seq"]] = message["data"]
                    if len(chunks) < message["total"]:
                        continue
                    message = json.loads("".join(chunks[i] for i in range(message["total"])))
                    chunks = {}
                if message["type"] == "sync":
                    doc: Doc = Doc()
                    doc.apply_update(
                        protocol.decode_sync_message(protocol.decode_base64(message["data"])).payload
                    )
                    assert len(str(doc.get("t", type=Text))) == 104_852
                    return (time.perf_counter() - started) * 1000

    warm = [await one() for _ in range(runs)]
    cold = []
    for _ in range(max(3, runs // 3)):
        for key in redis.scan_iter(match=f"collab:{{{bench.scene}}}:*"):
            redis.delete(key)
        cold.append(await one())
    local = []
    for _ in range(runs):
        t0 = time.perf_counter()
        Doc().apply_update(state)
        local.append((time.perf_counter() - t0) * 1000)
    return {
        "state_bytes": len(state),
        "warm_p50": statistics.median(warm),
        "cold_p50": statistics.median(cold),
        "local_load_p50": statistics.median(local),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=300, help="updates for the CPU breakdown")
    parser.add_argument("--recipients", type=int, default=20, help="members each update fans out to")
    parser.add_argument("--rounds", type=int, default=200, help="updates per latency run")
    parser.add_argument("--sync-runs", type=int, default=10)
    parser.add_argument("--stack-log", default=os.devnull, help="where the stack's own logs go")
    args = parser.parse_args()
    # The handlers log every invocation to the inherited stdout/stderr: send those to the
    # log and keep a private copy of stdout for the figures.
    report = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(args.stack_log, "a")  # noqa: SIM115 (open for the life of the process)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = report
    with LocalStack(port=0, seed_demo=False) as stack:
        os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AWS_")})
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, emulator {stack.ws_url}")
        cpu = cpu_per_update(Bench(stack), args.samples, args.recipients)
        print(f"\n1. handler CPU per update, median of {args.samples} (µs)")
        for name in ("decode_validate", "durable_write", "cache_write", "fanout"):
            suffix = " per recipient" if name == "fanout" else ""
            print(f"   {name:<16} {cpu[name]:9.0f}{suffix}")
        ratio = cpu["fanout"] / cpu["baseline_bare_post"]
        print(
            f"   baseline: bare boto3 post_to_connection {cpu['baseline_bare_post']:.0f} µs; fan-out/baseline {ratio:.2f}"
        )
        print(f"\n2. end-to-end latency, update → peers' receipt, {args.rounds} updates (ms)")
        for clients in (2, 20):
            result = asyncio.run(latency(Bench(stack), clients, args.rounds))
            print(
                f"   {clients:>2} clients: p50 {result['p50']:6.1f}  p99 {result['p99']:6.1f}"
                f"   (ping round trip p50 {result['ping_p50']:.1f}; ratio p50/ping {result['p50'] / result['ping_p50']:.1f})"
            )
        print("\n3. a new client syncs the final automerge-paper document")
        state = traces.automerge_paper_state()
        sync = asyncio.run(sync_time(Bench(stack), state, args.sync_runs))
        print(
            f"   {sync['state_bytes']:,} bytes: warm cache p50 {sync['warm_p50']:.1f} ms, flushed cache p50 "
            f"{sync['cold_p50']:.1f} ms (baseline: load into a pycrdt Doc in-process {sync['local_load_p50']:.1f} ms)"
        )


if __name__ == "__main__":
    main()
