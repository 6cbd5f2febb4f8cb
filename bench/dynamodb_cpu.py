"""CPU per DynamoDB call: botocore's client (before) against collab.aws_json's (now), in the
same run, against one keep-alive server on loopback (not a test: it prints, never fails).

    .venv/bin/python -m bench.dynamodb_cpu               # 5 rounds of 500 calls each
    .venv/bin/python -m bench.dynamodb_cpu --rounds 9

The server, a child process so that only the client's CPU counts, answers every request
as DynamoDB would answer the handlers' most frequent calls: a GetItem of a scene's head
(an item with a string, a number and a 600-byte binary attribute), with DynamoDB's
x-amz-crc32 header, on kept-alive HTTP/1.1. moto is not the server here: it closes every
connection, so a client would be measured connecting.

Each client is measured in a fresh interpreter (imports and signer choice are per
process), one after another within a round, so load drifts hit them alike:
- `botocore`: collab.aws_clients.client("dynamodb"): botocore's client as the handlers
  built it before (lean loader, standard retries), its pure-Python signer (awscrt hidden,
  as the handlers hid it);
- `aws_json`: collab.aws_clients.json_client("dynamodb") (awscrt signing and HTTP).

A figure is `time.process_time()` (every thread of the client process) over CALLS calls
with the same parameters, after 20 warm-up calls, divided by the calls; the median over the
rounds is printed, with each round's value. The request's body and the answer's parsing
are part of it, as in a handler.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from bench.outbox_cpu import keep_alive_server, measured_in_child

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("botocore", "aws_json")
ITEM = {
    "sceneId": {"S": "scene-bench"},
    "sk": {"S": "head"},
    "version": {"N": "1234"},
    "summary": {"B": base64.b64encode(bytes(range(256)) * 2 + bytes(88)).decode()},
}
ANSWER = json.dumps({"Item": ITEM}).encode()


def _url(url: str) -> str:
    return url


def _server(ready: Any) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: bench\r\n"
        b"x-amz-crc32: %d\r\nContent-Length: %d\r\n\r\n" % (zlib.crc32(ANSWER), len(ANSWER))
    )
    keep_alive_server(ready, head + ANSWER, _url)


def measure(client_name: str, calls: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "functions"))
    if client_name == "botocore":
        sys.modules["awscrt"] = None  # type: ignore[assignment]  # as the handlers hid it
        from collab import aws_clients

        client: Any = aws_clients.client("dynamodb")
        del sys.modules["awscrt"]
    else:
        from collab import aws_clients

        client = aws_clients.json_client("dynamodb")
    key = {"sceneId": {"S": "scene-bench"}, "sk": {"S": "head"}}
    for _ in range(20):
        assert client.get_item(TableName="bench", Key=key, ConsistentRead=True)["Item"]["version"] == {
            "N": "1234"
        }
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        client.get_item(TableName="bench", Key=key, ConsistentRead=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us_per_call": cpu / calls * 1e6, "wall_us_per_call": wall / calls * 1e6}


def run_client(client: str, url: str, calls: int) -> dict[str, float]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench-session",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return measured_in_child("bench.dynamodb_cpu", {"client": client, "calls": calls}, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one client, one round
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(args.measure)
        print(json.dumps(measure(spec["client"], spec["calls"])))
        return 0
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_server, args=(send,), daemon=True)
    server.start()
    try:
        url = receive.recv()
        results: dict[str, list[dict[str, float]]] = {c: [] for c in CLIENTS}
        for _ in range(args.rounds):
            for client in CLIENTS:
                results[client].append(run_client(client, url, args.calls))
    finally:
        server.terminate()
    print(f"\nGetItem of a {len(ANSWER)}-byte item on kept-alive HTTP/1.1, {args.calls} calls per round")
    medians = {c: statistics.median(r["cpu_us_per_call"] for r in runs) for c, runs in results.items()}
    for client, runs in results.items():
        rounds = sorted(round(r["cpu_us_per_call"]) for r in runs)
        wall = statistics.median(r["wall_us_per_call"] for r in runs)
        print(f"  {client:<10} {medians[client]:6.0f} µs CPU per call  (rounds {rounds}; {wall:.0f} µs wall)")
    print(f"  botocore / aws_json: {medians['botocore'] / medians['aws_json']:.1f}x")
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
