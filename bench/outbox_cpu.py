"""CPU per post of the Management API client: boto3 (before) against the awscrt Outbox (now),
in the same run, against two servers on loopback (not a test: it prints, never fails).

    .venv/bin/python -m bench.outbox_cpu                 # both targets, 5 rounds
    .venv/bin/python -m bench.outbox_cpu --target http   # only the bare HTTP server

Targets, each served by a child process so that only the client's CPU is counted:
- `http`: a minimal keep-alive HTTP/1.1 server that answers 200 to every post;
- `emulator`: the emulator's Management API in a devstack LocalStack, posting to real
  WebSocket members (held open and drained by the same child).

Clients, each measured in a fresh interpreter of its own (imports and signer choice are
per process), one after another within a round, so load drifts hit them alike:
- `boto3`: a warm `post_to_connection` client, sequential, botocore's pure-Python signer
  (BOTO_DISABLE_CRT=true: what boto3 does without awscrt installed);
- `boto3-crt`: the same, with awscrt installed (botocore then signs with the CRT);
- `boto3-pool`: the previous Outbox.send_all: that client over 16 threads;
- `outbox`: collab.outbox.Outbox.send_all (awscrt).

A figure is `time.process_time()` (every thread of the client process) over BROADCASTS
broadcasts of a 100-byte message to RECIPIENTS members, divided by the posts, after one
warm-up broadcast; the median over the rounds is printed, with each round's value.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("boto3", "boto3-crt", "boto3-pool", "outbox")
LABELS = {
    "boto3": "boto3 post_to_connection, sequential (pure-Python signer)",
    "boto3-crt": "boto3 post_to_connection, sequential (awscrt signer)",
    "boto3-pool": "boto3 over 16 threads (the previous Outbox.send_all)",
    "outbox": "Outbox.send_all on awscrt (now)",
}
MESSAGE = '{"type":"update","data":"' + "A" * 74 + '"}'  # 100 bytes


# -- servers (child processes) ------------------------------------------------------------
def keep_alive_server(ready: Any, answer_bytes: bytes, ready_value: Callable[[str], Any]) -> None:
    """A minimal keep-alive HTTP/1.1 server on loopback answering every request with
    `answer_bytes` (status line, headers and body); sends `ready_value(url)` when listening."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                writer.write(answer_bytes)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=128)
        ready.send(ready_value(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"))
        await server.serve_forever()

    asyncio.run(main())


def _management_members(url: str) -> tuple[str, list[str]]:
    return f"{url}/local", [f"member{i:02d}AAAAAAAAAAA=" for i in range(64)]


def _http_server(ready: Any) -> None:
    keep_alive_server(ready, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", _management_members)


def _emulator_stack(ready: Any, stop: Any, members: int) -> None:
    # The stack's and its handlers' logs (its workers inherit these descriptors) would bury
    # the figures; the $disconnect lines of the shutdown would, too.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
    from bench.members import hold_members
    from devstack.stack import LocalStack

    with LocalStack(port=0, seed_demo=False) as stack:  # entering starts it
        os.environ.update(stack.env)
        asyncio.run(
            hold_members(
                stack.env,
                stack.ws_url,
                stack.jwt_secret,
                "bench-outbox",
                members,
                lambda ids: ready.send((stack.management_url, ids)),
                stop.poll,
            )
        )


# -- one client, in its own interpreter ------------------------------------------------------
def measure(client: str, url: str, ids: list[str], broadcasts: int) -> dict[str, float]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_SESSION_TOKEN", "bench-session")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    data = MESSAGE.encode()
    if client == "outbox":
        sys.path.insert(0, str(ROOT / "functions"))
        from collab.outbox import Outbox

        outbox = Outbox(url, workers=len(ids))

        def broadcast() -> None:
            outbox.send_all(ids, MESSAGE)
    else:
        import boto3
        from botocore.config import Config

        api = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=url,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=16, tcp_keepalive=True),
        )
        if client == "boto3-pool":
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=16)

            def broadcast() -> None:
                list(pool.map(lambda cid: api.post_to_connection(ConnectionId=cid, Data=data), ids))
        else:

            def broadcast() -> None:
                for cid in ids:
                    api.post_to_connection(ConnectionId=cid, Data=data)

    broadcast()  # warm: connections open, models loaded
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(broadcasts):
        broadcast()
    posts = broadcasts * len(ids)
    return {
        "cpu_us_per_post": (time.process_time() - cpu) / posts * 1e6,
        "wall_ms_per_broadcast": (time.perf_counter() - wall) / broadcasts * 1e3,
    }


def measured_in_child(module: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, float]:
    """`python -m module --measure SPEC` in a fresh interpreter: its last line, as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--measure", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_client(client: str, url: str, ids: list[str], broadcasts: int) -> dict[str, float]:
    env = {**os.environ, "BOTO_DISABLE_CRT": "true" if client == "boto3" else "false"}
    spec = {"client": client, "url": url, "ids": ids, "broadcasts": broadcasts}
    return measured_in_child("bench.outbox_cpu", spec, env)


def bench_target(
    name: str, url: str, ids: list[str], rounds: int, broadcasts: int
) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {c: [] for c in CLIENTS}
    for _ in range(rounds):
        for client in CLIENTS:
            results[client].append(run_client(client, url, ids, broadcasts))
    return results


def report(title: str, recipients: int, broadcasts: int, results: dict[str, list[dict[str, float]]]) -> None:
    print(
        f"\n{title}: {recipients} recipients x {broadcasts} broadcasts = {recipients * broadcasts:,} posts per round"
    )
    medians = {c: statistics.median(r["cpu_us_per_post"] for r in runs) for c, runs in results.items()}
    for client, runs in results.items():
        cpu = sorted(round(r["cpu_us_per_post"]) for r in runs)
        wall = statistics.median(r["wall_ms_per_broadcast"] for r in runs)
        print(
            f"  {LABELS[client]:<58} {medians[client]:6.0f} µs/post  (rounds {cpu}; {wall:.1f} ms per broadcast)"
        )
    ours = medians["outbox"]
    print(
        f"  boto3 / Outbox: {medians['boto3'] / ours:.1f}x (pure-Python signer), "
        f"{medians['boto3-crt'] / ours:.1f}x (awscrt signer), {medians['boto3-pool'] / ours:.1f}x (previous Outbox)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("http", "emulator", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one client, one round
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(args.measure)
        print(json.dumps(measure(spec["client"], spec["url"], spec["ids"], spec["broadcasts"])))
        return 0
    context = multiprocessing.get_context("spawn")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {os.getloadavg()}")
    if args.target in ("http", "both"):
        parent, child = context.Pipe()
        server = context.Process(target=_http_server, args=(child,), daemon=True)
        server.start()
        url, ids = parent.recv()
        ids = ids[: args.recipients]
        results = bench_target("http", url, ids, args.rounds, args.broadcasts)
        report(f"a bare keep-alive HTTP server ({url})", len(ids), args.broadcasts, results)
        server.terminate()
    if args.target in ("emulator", "both"):
        parent, child = context.Pipe()
        stop_parent, stop_child = context.Pipe()
        stack = context.Process(target=_emulator_stack, args=(child, stop_child, args.recipients))
        stack.start()
        url, ids = parent.recv()
        results = bench_target("emulator", url, ids, args.rounds, args.broadcasts)
        report(
            f"the emulator's Management API, devstack LocalStack ({url})", len(ids), args.broadcasts, results
        )
        stop_parent.send(True)
        stack.join(30)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
