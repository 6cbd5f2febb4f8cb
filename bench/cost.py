"""The cost model, measured (issue 11 item 5): not a test, it prints figures and never fails
on them.

    make bench                       # bench.run, bench.openloop, then this
    .venv/bin/python -m bench.cost   # all three parts, as below
    .venv/bin/python -m bench.cost --parts typing --minutes 10

Parts (docs/cost.md says how each figure is measured or estimated):
  typing  a 5-person room through the local stack (devstack's LocalStack: the emulator
          running the real handlers, moto, a redis-server of its own): the 3 authors of
          tests/data/traces/clownschool type the trace at its own recorded pace (or
          --speed times it), each edit followed by its author's cursor move, 2 more people
          follow; every client is the product's provider (client/src) on real yjs. Counts
          per active editor-hour: WebSocket messages and 32 KB units, connection-minutes,
          Lambda invocations and GB-seconds, DynamoDB read and write units, S3 requests,
          cache ECPUs (estimated), log bytes; and the dollars, by bench/prices.py.
  quiet   20 clients whose cursors are set and who then only keep them alive (y-protocols
          renews every 15 s, the provider resyncs every 45 s): messages per second
          delivered to all clients together, and what a quiet room costs a day.
  rest    each stage shape's month with nobody connected, from its synthesized template.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench import cost_model, prices  # noqa: E402
from bench.cost_meter import InvocationLog, Meter, Window  # noqa: E402
from bench.cost_model import Item, Traffic  # noqa: E402

TRACE = ROOT / "tests" / "data" / "traces" / "clownschool.json.gz"
ROOM = ROOT / "bench" / "cost" / "room.mjs"
CLIENT = ROOT / "client"
# The provider compiled from client/src for Node (node_modules/.cache: ignored by git, and
# imports resolve to client/node_modules, the packages the provider is tested with).
PROVIDER_BUILD = CLIENT / "node_modules" / ".cache" / "bench-cost-provider"
COUNT_ENV = "COLLAB_MOTO_COUNT_REQUESTS"  # devstack/moto_server.py


# -- the provider, compiled ------------------------------------------------------------------
def build_provider() -> Path:
    """client/src compiled by the client's own TypeScript into PROVIDER_BUILD (again when a
    source changed): the provider exactly as the working tree has it."""
    sources = [
        *sorted((CLIENT / "src").rglob("*.ts")),
        CLIENT / "tsconfig.json",
        CLIENT / "tsconfig.build.json",
    ]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = PROVIDER_BUILD / ".source-digest"
    entry = PROVIDER_BUILD / "index.js"
    if stamp.exists() and stamp.read_text().strip() == digest and entry.exists():
        return entry
    tsc = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        raise SystemExit("client/node_modules is missing: run `make setup` first")
    command = ["node", str(tsc), "-p", "tsconfig.build.json", "--outDir", str(PROVIDER_BUILD)]
    command += ["--declaration", "false", "--declarationMap", "false", "--sourceMap", "false"]
    done = subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"compiling client/src failed:\n{done.stdout}{done.stderr}")
    stamp.write_text(digest + "\n")
    return entry


# -- a room of clients (bench/cost/room.mjs) -------------------------------------------------
class Room:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, log: Any) -> Room:
        process = await asyncio.create_subprocess_exec(
            "node", str(ROOM), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        return cls(process)

    async def ask(self, message: dict[str, Any], kind: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"the room's Node process exited ({await self.process.wait()}); see --log")
            if line.startswith(b"{"):
                break
            # A library's console output (stdout is shared with it): not an event.
            print(f"[room] {line.decode(errors='replace').rstrip()}", file=sys.stderr)
        event: dict[str, Any] = json.loads(line)
        if event["event"] != kind:
            raise RuntimeError(f"room: expected {kind}, got {event}")
        return event

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"cmd":"close"}\n')
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 15)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                self.process.kill()
                await self.process.wait()


def client_specs(stack: Any, scene: str, count: int, agents: int) -> list[dict[str, Any]]:
    """`count` editors of `scene`; the first `agents` type the trace's agents 0, 1, ..."""
    from collab.access import SceneAccess
    from collab.settings import Settings
    from collabctl.devtoken import mint_dev_token

    access = SceneAccess(Settings.from_env(stack.env).access_table)
    specs = []
    for i in range(count):
        user = f"person{i}"
        access.grant(scene, user, "editor")
        specs.append(
            {
                "id": i,
                "name": user,
                "url": stack.ws_url,
                "sceneId": scene,
                "token": mint_dev_token(stack.jwt_secret, user, scene, name=user),
                "agent": i if i < agents else None,
            }
        )
    return specs


# -- the parts -------------------------------------------------------------------------------
async def typing_room(
    stack: Any, meter: Meter, provider: Path, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    with gzip.open(TRACE) as file:
        trace = json.loads(file.read())
    agents = int(trace["numAgents"])
    whole = args.minutes is None
    until = float("inf") if whole else args.minutes * 60
    room = await Room.start(log)
    try:
        specs = client_specs(stack, f"cost-{uuid.uuid4().hex[:8]}", args.people, min(agents, args.people))
        await room.ask(
            {
                "cmd": "open",
                "provider": str(provider),
                "clients": specs,
                "updateThrottle": args.update_throttle,
            },
            "ready",
            120,
        )
        await asyncio.sleep(args.settle)  # the joins and first presence are not typing
        meter.begin()
        before = await room.ask({"cmd": "counts"}, "counts", 30)
        replay = {
            "cmd": "replay",
            "trace": str(TRACE),
            "untilS": until if not whole else 1e9,
            "speed": args.speed,
        }
        replayed = await room.ask(replay, "replayed", 4 * 3600)
        await asyncio.sleep(args.tail)  # the last edits' deliveries
        after = await room.ask({"cmd": "counts"}, "counts", 30)
        window = meter.end()
        expected = trace["endContent"] if whole else None
        converged = await room.ask(
            {"cmd": "converge", "timeoutMs": 120_000, "expected": expected}, "converged", 200
        )
    finally:
        await room.close()
    trace_seconds = (replayed["wallMs"] / 1000 + args.tail) * args.speed
    return {
        "traffic": Traffic.between(before, after),
        "window": window,
        "replayed": replayed,
        "converged": converged,
        "trace_seconds": trace_seconds,
        "people": args.people,
        "typists": min(agents, args.people),
        "speed": args.speed,
        "update_throttle": args.update_throttle,
    }


async def quiet_room(
    stack: Any, meter: Meter, provider: Path, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    room = await Room.start(log)
    try:
        specs = client_specs(stack, f"quiet-{uuid.uuid4().hex[:8]}", args.quiet_clients, 0)
        await room.ask({"cmd": "open", "provider": str(provider), "clients": specs}, "ready", 180)
        await asyncio.sleep(args.quiet_warmup)  # the joins' messages are over
        meter.begin()
        before = await room.ask({"cmd": "counts"}, "counts", 30)
        await asyncio.sleep(args.quiet_seconds)
        after = await room.ask({"cmd": "counts"}, "counts", 30)
        window = meter.end()
    finally:
        await room.close()
    return {"traffic": Traffic.between(before, after), "window": window, "clients": args.quiet_clients}


def at_rest(shapes: Sequence[str]) -> dict[str, list[Item] | str]:
    results: dict[str, list[Item] | str] = {}
    for shape in shapes:
        try:
            results[shape] = cost_model.at_rest_items(cost_model.synthesize(cost_model.SHAPES[shape]))
        except Exception as error:  # a shape this checkout's CDK app does not build yet
            results[shape] = f"not synthesized: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return results


# -- output ----------------------------------------------------------------------------------
def money(usd: float) -> str:
    if usd != usd:
        return "       -"
    return f"${usd:,.6f}" if abs(usd) < 0.01 else f"${usd:,.4f}" if abs(usd) < 10 else f"${usd:,.2f}"


def print_items(items: list[Item], scale: float, unit_label: str, out: Any) -> float:
    total = 0.0
    for item in items:
        usd = item.usd * scale
        total += 0.0 if usd != usd else usd
        quantity = f"{item.quantity * scale:,.3f}" if item.unit else ""
        print(f"   {item.label:<58} {quantity:>16} {item.unit:<14} {money(usd):>12}", file=out)
    print(f"   {'total ' + unit_label:<58} {'':>16} {'':<14} {money(total):>12}", file=out)
    return total


def kinds(counter: Any, scale: float = 1.0) -> str:
    return ", ".join(f"{k} {v * scale:,.0f}" for k, v in counter.most_common() if v)


def lambda_lines(window: Window, scale: float, out: Any) -> None:
    for name, use in sorted(cost_model.lambda_use(window.invocations).items()):
        mean = use.duration_ms / max(1, use.invocations)
        print(
            f"      {name:<11} {use.invocations * scale:>10,.1f} invocations, {use.memory_mb} MB, mean {mean:.1f} ms, "
            f"billed {use.billed_ms * scale / 1000:,.1f} s ({use.cold_starts} cold starts in the window), "
            f"{use.gb_seconds * scale:,.2f} GB-s",
            file=out,
        )


def report_typing(result: dict[str, Any], cache: str, access_bytes: int, out: Any) -> None:
    traffic: Traffic = result["traffic"]
    window: Window = result["window"]
    hours = result["trace_seconds"] / 3600
    people = result["people"]
    per_editor_hour = 1 / (hours * people)
    replayed, converged = result["replayed"], result["converged"]
    update_throttle = result.get("update_throttle") or 0
    throttle = f", updateThrottle {update_throttle:.0f} ms" if update_throttle else ""
    print(
        f"\ntyping, cache {cache}: {replayed['transactions']:,} transactions of {TRACE.name} by {result['typists']} authors in a room of "
        f"{people}, {hours * 60:.1f} trace minutes in {replayed['wallMs'] / 60000:.1f} min "
        f"(held for parents {replayed['heldMs'] / 1000:.1f} s in all, latest send {replayed['lateMs']:.0f} ms late"
        f"{throttle}); "
        f"replicas {'converged' if converged['same'] else 'DIFFER'}"
        + (
            ""
            if converged["matches"] is None
            else f", {'match' if converged['matches'] else 'DO NOT match'} endContent"
        ),
        file=out,
    )
    print(
        f"   active editor-hours in the window: {hours * people:.3f} ({people} people x {hours:.3f} h)",
        file=out,
    )
    if result["speed"] != 1:
        print(
            f"   NOTE: typed at {result['speed']:g}x the trace's pace: what follows the clock (renewals, resyncs,"
            f" pings, connection-minutes) is counted at 1/{result['speed']:g} of its share; use --speed 1 for figures",
            file=out,
        )
    scale = per_editor_hour
    print("   per active editor-hour:", file=out)
    print(
        f"      WebSocket messages in {traffic.frames_in * scale:,.0f} ({traffic.units_in * scale:,.0f} units of 32 KB), "
        f"out {traffic.frames_out * scale:,.0f} ({traffic.units_out * scale:,.0f} units); "
        f"{traffic.bytes_in * scale / 1e6:.2f} MB in, {traffic.bytes_out * scale / 1e6:.2f} MB out",
        file=out,
    )
    print(f"      in by action: {kinds(traffic.kinds_in, scale)}", file=out)
    print(f"      out by type: {kinds(traffic.kinds_out, scale)}", file=out)
    per_edit = traffic.frames_in / max(1, replayed["transactions"])
    print(
        f"      per transaction typed: {per_edit:.2f} messages in, {traffic.frames_out / max(1, replayed['transactions']):.2f} out",
        file=out,
    )
    print(f"      connection-minutes {traffic.connection_ms / 60000 * scale:,.1f}", file=out)
    lambda_lines(window, scale, out)
    for table, ops in sorted(window.moto["dynamodb"].items()):
        parts = ", ".join(
            f"{op} {v['requests'] * scale:,.1f} ({v['read_units'] * scale:,.1f} RRU, {v['write_units'] * scale:,.1f} WRU)"
            for op, v in sorted(ops.items())
        )
        print(f"      DynamoDB {table}: {parts}", file=out)
    if window.moto["uncounted"]:
        print(f"      DynamoDB requests the counter could not price: {window.moto['uncounted']}", file=out)
    s3 = ", ".join(f"{op} {n * scale:,.1f}" for op, n in sorted(window.moto["s3"].items()))
    print(f"      S3 requests: {s3 or 'none'}", file=out)
    print(
        f"      Redis requests {sum(window.redis_requests.values()) * scale:,.0f} "
        f"({', '.join(f'{k} {v * scale:,.0f}' for k, v in sorted(window.redis_requests.items(), key=lambda kv: -kv[1])[:8])}); "
        f"{window.redis.input_bytes * scale / 1e6:.2f} MB in, {window.redis.output_bytes * scale / 1e6:.2f} MB out; "
        f"{(window.redis.calls.get('evalsha', 0)) * scale:,.0f} script runs (commandstats); "
        f"a simple command takes {window.simple_command_usec:.1f} µs here; ECPUs between "
        f"{cost_model.ecpu_range(window)[0] * scale:,.0f} and {cost_model.ecpu_range(window)[1] * scale:,.0f}",
        file=out,
    )
    print(f"      handler log bytes {window.handler_log_bytes * scale / 1e6:.2f} MB", file=out)
    for shape in SHAPES_OF_CACHE[cache]:
        print(f"   dollars per active editor-hour, stage shape {shape}:", file=out)
        print_items(
            cost_model.usage_items(traffic, window, shape, access_bytes), scale, "per active editor-hour", out
        )


def report_quiet(result: dict[str, Any], cache: str, access_bytes: int, out: Any) -> None:
    traffic: Traffic = result["traffic"]
    window: Window = result["window"]
    seconds = window.seconds
    print(
        f"\nquiet room, cache {cache}: {result['clients']} clients, cursors set, nothing typed, {seconds:.0f} s measured",
        file=out,
    )
    print(
        f"   delivered to all clients together: {traffic.frames_out / seconds:.2f} messages/s "
        f"({kinds(traffic.kinds_out)}); sent by them: {traffic.frames_in / seconds:.2f} messages/s ({kinds(traffic.kinds_in)})",
        file=out,
    )
    per_day = 86400 / seconds
    print(f"   Lambda invocations {len(window.invocations) / seconds:.2f}/s", file=out)
    tables = window.moto["dynamodb"].values()
    rru = sum(op["read_units"] for ops in tables for op in ops.values())
    wru = sum(op["write_units"] for ops in tables for op in ops.values())
    print(
        f"   DynamoDB {rru / seconds:.2f} RRU/s, {wru / seconds:.2f} WRU/s; "
        f"Redis {max(sum(window.redis_requests.values()), window.redis.calls.get('evalsha', 0)) / seconds:.2f}"
        " requests/s",
        file=out,
    )
    shape = SHAPES_OF_CACHE[cache][0]
    print(f"   dollars per room-day, stage shape {shape}:", file=out)
    print_items(cost_model.usage_items(traffic, window, shape, access_bytes), per_day, "per room-day", out)


def report_rest(results: dict[str, list[Item] | str], out: Any) -> None:
    print(
        "\nat rest, dollars per month (nobody connected), from each shape's synthesized template:", file=out
    )
    for shape, items in results.items():
        print(f" shape {shape} ({cost_model.SHAPES[shape] or 'cdk.json dev'}):", file=out)
        if isinstance(items, str):
            print(f"   {items}", file=out)
            continue
        total = print_items(items, 1.0, "per month at rest", out)
        # CloudWatch's free tier is per account: 3 dashboards and 10 alarm metrics.
        by_label = {item.label: item for item in items}
        free = min(3.0, by_label["CloudWatch dashboards"].quantity) * prices.price("dashboard_month")
        free += min(10.0, by_label["CloudWatch alarm metrics"].quantity) * prices.price("alarm_month")
        print(
            f"   {'in an account whose CloudWatch free tier is unused (3 dashboards, 10 alarm metrics)':<90}"
            f"{money(total - free):>12}",
            file=out,
        )


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts", type=lambda t: [p for p in t.split(",") if p], default=["typing", "quiet", "rest"]
    )
    parser.add_argument(
        "--minutes", type=float, default=None, help="trace minutes to type (default: the whole trace)"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="times the trace's own pace (1: as recorded)"
    )
    parser.add_argument("--people", type=int, default=5, help="people in the typing room (the first 3 type)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the joins and the window")
    parser.add_argument(
        "--tail", type=float, default=3.0, help="seconds the window runs on after the last edit"
    )
    parser.add_argument(
        "--update-throttle",
        type=float,
        default=0.0,
        help="the typists' providers send edits at most this often, in ms (their updateThrottle)",
    )
    parser.add_argument("--quiet-clients", type=int, default=20)
    parser.add_argument(
        "--quiet-seconds", type=float, default=180.0, help="the quiet room's window (4 resyncs)"
    )
    parser.add_argument(
        "--quiet-warmup", type=float, default=50.0, help="seconds between the joins and the window"
    )
    parser.add_argument("--shapes", type=lambda t: t.split(","), default=list(cost_model.SHAPES))
    parser.add_argument(
        "--caches",
        type=lambda t: t.split(","),
        default=["redis", "none"],
        help="local stacks to measure on: redis (the nat and ipv6 shapes), none (the none shape)",
    )
    parser.add_argument("--log", default=os.devnull, help="where the Node clients' stderr goes")
    parser.add_argument("--stack-log", default=None, help="the stack's log (default: a temporary file)")
    parser.add_argument("--json", default=None, help="also write the raw counts here")
    parser.add_argument(
        "--report-from", default=None, help="print the report of a run saved with --json (measures nothing)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.parts) - {"typing", "quiet", "rest"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    return args


def header(args: argparse.Namespace, out: Any) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "functions", "client/src", "emulator", "devstack", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    print(
        f"cost benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}"
        + (f" + uncommitted: {', '.join(line[3:] for line in dirty)}" if dirty else "")
        + f"\nprices: bench/prices.py, {prices.REGION}, looked up {prices.PRICES_DATE}; machine: {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        file=out,
        flush=True,
    )


async def measure(
    args: argparse.Namespace, out: Any, log: Any, invocations: InvocationLog, stack_log: Path
) -> dict[str, dict[str, Any]]:
    """Each part on a stack of each cache kind: `redis` (the nat and ipv6 shapes) and `none`."""
    from devstack.stack import LocalStack

    provider = build_provider()
    results: dict[str, dict[str, Any]] = {"typing": {}, "quiet": {}}
    for cache in args.caches:
        with LocalStack(port=0, seed_demo=False, cache=cache) as stack:
            os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AWS_")})
            meter = Meter(invocations, stack.moto_url, stack.redis_url if cache == "redis" else "", stack_log)
            if "typing" in args.parts:
                results["typing"][cache] = await typing_room(stack, meter, provider, args, log)
                print(f"[typing room measured, cache {cache}]", file=out, flush=True)
            if "quiet" in args.parts:
                results["quiet"][cache] = await quiet_room(stack, meter, provider, args, log)
                print(f"[quiet room measured, cache {cache}]", file=out, flush=True)
    return {part: by_cache for part, by_cache in results.items() if by_cache}


SHAPES_OF_CACHE = {"redis": ("nat", "ipv6"), "none": ("none",)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the parts, print the report; returns the raw results (for tests)."""
    args = parse_args(argv)
    # The handlers write to the inherited stdout/stderr: those go to the stack's log (its
    # growth is their log volume); the figures go to a private copy of stdout.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    stack_log = Path(args.stack_log) if args.stack_log else Path(f"/tmp/collab-cost-stack-{os.getpid()}.log")
    log_file = open(stack_log, "a")  # noqa: SIM115 (for the process's life)
    saved = os.dup(1), os.dup(2), sys.stdout, sys.stderr
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)
    sys.stdout = sys.stderr = out
    os.environ[COUNT_ENV] = "1"  # the stack's moto counts DynamoDB units and S3 requests
    os.environ.pop("REDIS_URL", None)  # a redis-server of the stack's own: MONITOR sees only it
    invocations = InvocationLog.install()
    try:
        header(args, out)
        access_bytes = cost_model.access_log_line_bytes(ROOT / "infra" / "api.py")
        started = time.monotonic()
        results: dict[str, Any] = {}
        with open(args.log, "a") as client_log:
            if args.report_from:
                results = load_results(Path(args.report_from))
                print(f"(the counts of {args.report_from}, priced now)", file=out)
            elif {"typing", "quiet"} & set(args.parts):
                results = asyncio.run(measure(args, out, client_log, invocations, stack_log))
        for cache, result in results.get("typing", {}).items():
            report_typing(result, cache, access_bytes, out)
        for cache, result in results.get("quiet", {}).items():
            report_quiet(result, cache, access_bytes, out)
        if "rest" in args.parts:
            results["rest"] = at_rest(args.shapes)
            report_rest(results["rest"], out)
        print(f"\n(ran {(time.monotonic() - started) / 60:.1f} min; stack log {stack_log})", file=out)
        if args.json:
            Path(args.json).write_text(json.dumps(_jsonable(results), indent=1, default=str))
        return results
    finally:
        logging.getLogger("emulator").removeHandler(invocations)
        os.environ.pop(COUNT_ENV, None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        sys.stdout, sys.stderr = saved[2], saved[3]
        log_file.close()


def load_results(path: Path) -> dict[str, Any]:
    """The results a run wrote with --json, as objects again (to re-print or re-price a run
    with --report-from, without measuring again)."""
    from collections import Counter

    from bench.cost_meter import RedisStats

    raw = json.loads(path.read_text())
    for part in ("typing", "quiet"):
        for result in raw.get(part, {}).values():
            traffic = result["traffic"]
            traffic["kinds_in"], traffic["kinds_out"] = (
                Counter(traffic["kinds_in"]),
                Counter(traffic["kinds_out"]),
            )
            result["traffic"] = Traffic(**traffic)
            window = result["window"]
            window["redis"] = RedisStats(**window["redis"])
            window.setdefault("simple_command_cpu_usec", 0.0)
            result["window"] = Window(**window)
    raw.pop("rest", None)  # printed items, not counts: synthesized again if asked for
    return dict(raw)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


if __name__ == "__main__":
    main()
