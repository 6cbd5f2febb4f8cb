"""What the local stack did during a measured window, counted where it happens, for the cost
model (bench/cost.py):

- Lambda: one record per invocation from the emulator's own log line (emulator/gateway.py,
  `_log_invocation`: function, route, duration, init duration of a cold start, memory
  size), which a logging handler on the `emulator` logger collects in this process;
- DynamoDB and S3: the opt-in counters of the local moto server (devstack/moto_server.py,
  COLLAB_MOTO_COUNT_REQUESTS): read and write units from the items' sizes, S3 requests;
- Redis: MONITOR on the stack's own redis-server (every command a client sent, with its
  arguments; commands a Lua script runs show as `lua` and are not requests), plus `INFO
  commandstats` (time per command, for scripts) and `INFO stats` (bytes in and out);
- handler logs: the bytes the execution environments wrote to the stack's log file
  (their stdout and stderr, which is what Lambda sends to CloudWatch Logs).

The WebSocket side (frames in and out, connection time) is counted by the clients
themselves (bench/cost/room.mjs).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import re
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COUNTS_PATH = "/_collab/request-counts"  # devstack/moto_server.py
CALIBRATION_KEY = "bench:cost:calibration"


class InvocationLog(logging.Handler):
    """Keeps the emulator's `invocation` lines (as dicts) while `recording`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            return
        if line.get("event") == "invocation":
            with self._lock:
                self.records.append(line)

    def since(self, index: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.records[index:])

    def mark(self) -> int:
        with self._lock:
            return len(self.records)

    @classmethod
    def install(cls) -> InvocationLog:
        handler = cls()
        logger = logging.getLogger("emulator")
        logger.addHandler(handler)  # before the emulator starts: then it adds no stderr handler
        logger.setLevel(logging.INFO)
        return handler


class RedisMonitor:
    """Counts the requests clients send to a Redis server (MONITOR), by command, with the
    bytes of their arguments. Commands a Lua script runs show as `lua`: not requests."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self.commands: Counter[str] = Counter()
        self.request_kb_ecpu = 0.0  # sum over requests of max(1, request KB)
        self.request_bytes = 0
        self.unparsed = 0
        self._stop = threading.Event()
        self._monitor = self._client.monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._run, name="redis-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = self._monitor.connection
        while not self._stop.is_set():
            try:
                raw = connection.read_response()
            except Exception:  # the connection closed: stopping
                return
            try:
                self._count(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw))
            except Exception:  # a line of a shape not foreseen: counted, never fatal
                self.unparsed += 1

    def _count(self, line: str) -> None:
        # `1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "ab..." "1" "\x00..."`
        close = line.index("] ")
        if line[line.index("[") + 1 : close].endswith("lua"):
            return  # run by a script: part of its EVALSHA, not a request
        args = [codecs.escape_decode(a.encode("latin-1"))[0] for a in _MONITOR_ARG.findall(line[close + 2 :])]
        if not args:
            return
        name = args[0].decode("latin-1").upper()
        if name in {"INFO", "MONITOR"} or any(CALIBRATION_KEY.encode() == a for a in args[1:2]):
            return  # this meter's own
        size = sum(len(a) for a in args)
        self.commands[name] += 1
        self.request_bytes += size
        self.request_kb_ecpu += max(1.0, size / 1024)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # already gone
            self._monitor.connection.disconnect()
        self._thread.join(5)


_MONITOR_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass
class RedisStats:
    calls: dict[str, int] = field(default_factory=dict)
    usec: dict[str, int] = field(default_factory=dict)
    input_bytes: int = 0
    output_bytes: int = 0

    @classmethod
    def read(cls, client: Any) -> RedisStats:
        stats = client.info("stats")
        commands = client.info("commandstats")
        return cls(
            calls={k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in commands.items()},
            usec={k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in commands.items()},
            input_bytes=int(stats["total_net_input_bytes"]),
            output_bytes=int(stats["total_net_output_bytes"]),
        )

    def minus(self, other: RedisStats) -> RedisStats:
        return RedisStats(
            calls={k: v - other.calls.get(k, 0) for k, v in self.calls.items()},
            usec={k: v - other.usec.get(k, 0) for k, v in self.usec.items()},
            input_bytes=self.input_bytes - other.input_bytes,
            output_bytes=self.output_bytes - other.output_bytes,
        )


def calibrate_simple_command(client: Any, rounds: int = 3000) -> tuple[float, float]:
    """A simple GET/SET of 100 bytes on this server, ElastiCache's unit of "1 ECPU of vCPU
    time": (microseconds of execution, from commandstats; microseconds of the server
    process's CPU per command, from /proc, which includes reading the request and writing
    the reply)."""
    pid = int(client.info("server")["process_id"])
    before, cpu_before = RedisStats.read(client), _process_cpu_seconds(pid)
    for _ in range(rounds):
        client.set(CALIBRATION_KEY, b"x" * 100)
        client.get(CALIBRATION_KEY)
    cpu = _process_cpu_seconds(pid) - cpu_before
    client.delete(CALIBRATION_KEY)
    spent = RedisStats.read(client).minus(before)
    execution = (spent.usec.get("set", 0) + spent.usec.get("get", 0)) / (2 * rounds)
    return execution, cpu * 1e6 / (2 * rounds)


def _process_cpu_seconds(pid: int) -> float:
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def moto_counts(moto_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(moto_url + COUNTS_PATH, timeout=10) as response:
        return dict(json.loads(response.read()))


def moto_minus(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB units and S3 requests between two snapshots."""
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for table, ops in after["dynamodb"].items():
        for op, values in ops.items():
            old = before["dynamodb"].get(table, {}).get(op, {})
            delta = {k: v - old.get(k, 0) for k, v in values.items()}
            if any(delta.values()):
                tables.setdefault(table, {})[op] = delta
    s3 = {op: n - before["s3"].get(op, 0) for op, n in after["s3"].items()}
    uncounted = {op: n - before["uncounted"].get(op, 0) for op, n in after["uncounted"].items()}
    other = {svc: n - before["other"].get(svc, 0) for svc, n in after["other"].items()}
    return {
        "dynamodb": tables,
        "s3": {k: v for k, v in s3.items() if v},
        "uncounted": {k: v for k, v in uncounted.items() if v},
        "other": {k: v for k, v in other.items() if v},
    }


@dataclass
class Window:
    """What one measured window counted (server side)."""

    seconds: float
    invocations: list[dict[str, Any]]
    moto: dict[str, Any]
    redis_requests: dict[str, int]
    redis_request_kb_ecpu: float
    redis: RedisStats
    simple_command_usec: float  # execution time (commandstats) of a simple GET/SET
    simple_command_cpu_usec: float  # the server's CPU per simple GET/SET, I/O included
    handler_log_bytes: int


class Meter:
    """Start a window with `begin()`, end it with `end()`. Without a Redis URL (a stack
    without a cache) the Redis figures are zero."""

    def __init__(self, invocations: InvocationLog, moto_url: str, redis_url: str, log_path: Path) -> None:
        import redis

        self.invocations = invocations
        self.moto_url = moto_url
        self.redis_url = redis_url
        self.log_path = log_path
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.simple_usec, self.simple_cpu_usec = (
            calibrate_simple_command(self.redis) if self.redis else (0.0, 0.0)
        )

    def begin(self) -> None:
        self._started = time.monotonic()
        self._mark = self.invocations.mark()
        self._moto = moto_counts(self.moto_url)
        self._log_size = self.log_path.stat().st_size
        self._monitor = RedisMonitor(self.redis_url) if self.redis else None
        self._redis = RedisStats.read(self.redis) if self.redis else RedisStats()

    def end(self) -> Window:
        seconds = time.monotonic() - self._started
        if self._monitor is not None:
            self._monitor.stop()
        redis_stats = RedisStats.read(self.redis).minus(self._redis) if self.redis else RedisStats()
        return Window(
            seconds=seconds,
            invocations=self.invocations.since(self._mark),
            moto=moto_minus(moto_counts(self.moto_url), self._moto),
            redis_requests=dict(self._monitor.commands) if self._monitor else {},
            redis_request_kb_ecpu=self._monitor.request_kb_ecpu if self._monitor else 0.0,
            redis=redis_stats,
            simple_command_usec=self.simple_usec,
            simple_command_cpu_usec=self.simple_cpu_usec,
            handler_log_bytes=self.log_path.stat().st_size - self._log_size,
        )
