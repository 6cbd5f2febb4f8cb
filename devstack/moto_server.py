"""moto's server application on waitress, which keeps HTTP/1.1 connections alive.

    python -m devstack.moto_server --port 5000

`moto_server` runs on Werkzeug's development server, which answers every request with
`Connection: close` (werkzeug/serving.py: "Always close the connection"): every boto3 call
of every handler then opens a new TCP connection and moto starts a new thread for it.
DynamoDB keeps connections alive, so the local stack paid a cost AWS does not: measured
on this machine, a PutItem took 16.8 ms wall and 2.17 ms of the caller's CPU against
Werkzeug, 9.9 ms and 1.81 ms against this server (500 sequential puts, warm client).
The application is moto's own (the one `moto_server` serves); only the HTTP server differs.
waitress drops request headers whose names hold an underscore (moto_server's handler keeps
them for S3 user metadata, which nothing here uses).

Requests run inside moto one at a time (`Serialised`). moto does not isolate concurrent
requests: two conditional updates of one item can both pass their condition, and an `ADD`
from several threads can lose increments, where DynamoDB applies each write to an item
atomically. Chunk reassembly while the cache is down (collab.durable_chunks) counts its
parts with `ADD`, and lost increments there left a paste unassembled in a CI run. moto
holds the GIL for nearly all of a request, so its threads bought almost no parallelism;
waitress's threads still read and write the sockets, so a slow client holds up nobody.
The one request that waits by design, an SQS long poll (tests read the stack's EventBridge
events from a queue, devstack/event_bus.py), waits outside the lock (`LongPolls`).

Opt-in request counts (for bench/cost.py): with COLLAB_MOTO_COUNT_REQUESTS=1 in its
environment the server counts what DynamoDB and S3 would bill for each request it serves,
and answers `GET /_collab/request-counts` with the totals (`DELETE` sets them to zero).
moto's ConsumedCapacity is not the real one (it ignores item sizes), so the units are
computed here from DynamoDB's rules (developer guide, "DynamoDB item sizes and formats",
CapacityUnitCalculations.html, and "Read/write capacity mode"): reads in 4 KB units (half
for an eventually consistent read), writes in 1 KB units of the larger of the item before
and after, twice for transactions, a Query charged for every item it reads before its
filter. The item before a write and the items a Query reads are fetched through moto
itself, inside the one-request-at-a-time lock, so they are exactly what the request saw.
Off by default: then nothing here runs.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

from devstack import moto_speedups

# The handlers' and tests' concurrency: up to max_environments (4 by default) execution
# environments per function, each with one call in flight, plus the test process and
# collabctl; requests beyond it queue (waitress logs "Task queue depth", here discarded).
THREADS = 32


class Serialised:
    """A WSGI application that lets one request at a time into `app`, response included."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            response = self._app(environ, start_response)
            try:
                return list(response)  # moto's bodies are in memory already
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


# -- SQS long polls ----------------------------------------------------------------------------
SQS_RECEIVE = "AmazonSQS.ReceiveMessage"
POLL_INTERVAL = 0.05


class LongPolls:
    """A WSGI application in front of `Serialised`: an SQS ReceiveMessage that asks to wait
    (WaitTimeSeconds > 0) is served as short polls, one every POLL_INTERVAL until a message
    is there or the time is up, and the waiting happens here, outside the lock. moto waits
    inside the request (sleeping in its receive loop): under the lock, one long poll would
    stop every other call for up to 20 s, the PutEvents that would fill the queue too.
    A queue whose ReceiveMessageWaitTimeSeconds is set makes moto wait for requests that
    give no WaitTimeSeconds: the queues of devstack/event_bus.py never set it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") != SQS_RECEIVE:
            return self._app(environ, start_response)
        body = _read_body(environ)
        wait = _wait_seconds(body)
        short = body
        if wait > 0:
            short = json.dumps({**json.loads(body), "WaitTimeSeconds": 0}).encode()
        deadline = time.monotonic() + wait
        while True:
            status, headers, data = call_app(self._app, environ, short)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not status.startswith("200") or _received(data):
                start_response(status, headers)
                return [data]
            time.sleep(min(POLL_INTERVAL, remaining))


def _wait_seconds(body: bytes) -> float:
    """The request's WaitTimeSeconds if it is one moto would accept, else 0 (moto then
    answers the request as it is, errors included)."""
    try:
        wait = json.loads(body or b"{}").get("WaitTimeSeconds")
    except (ValueError, AttributeError):
        return 0.0
    valid = isinstance(wait, int) and not isinstance(wait, bool) and 0 < wait <= 20
    return float(wait) if valid else 0.0


def _received(data: bytes) -> bool:
    try:
        return bool(json.loads(data or b"{}").get("Messages"))
    except (ValueError, AttributeError):
        return True  # not an answer this loop understands: hand it over as it is


# -- opt-in request counts (bench/cost.py) ---------------------------------------------------
COUNT_ENV = "COLLAB_MOTO_COUNT_REQUESTS"
COUNTS_PATH = "/_collab/request-counts"
DYNAMODB_TARGET = "DynamoDB_20120810."
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")
_NAME_OR_VALUE = re.compile(r"[#:][A-Za-z0-9_]+")


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB AttributeValue (wire JSON), by "DynamoDB item sizes and formats"."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(x).encode()) for x in data)
    if kind == "NS":
        return sum(_number_size(str(x)) for x in data)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in data)
    if kind == "L":  # 3 bytes of overhead, 1 more per element
        return 3 + sum(1 + attribute_value_size(x) for x in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_value_size(v) for k, v in data.items())
    raise ValueError(f"unknown AttributeValue type {kind!r}")


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed)."""
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item: the names and values of its attributes."""
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    """RRU of reading `size` bytes in one unit of account (an item, or a Query's page)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


def write_units(size: int, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / WRITE_UNIT_BYTES))
    return float(2 * units if transactional else units)


class RequestCounter:
    """WSGI middleware, inside `Serialised`: what each DynamoDB and S3 request would bill."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._schemas: dict[str, tuple[str, str | None]] = {}
        self.reset()

    def reset(self) -> None:
        # dynamodb[table][operation] = [requests, read units, write units]
        self.dynamodb: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0.0, 0.0])
        )
        self.s3: defaultdict[str, int] = defaultdict(int)  # operation -> requests
        self.other: defaultdict[str, int] = defaultdict(int)  # service -> requests
        self.uncounted: defaultdict[str, int] = defaultdict(int)  # DynamoDB operation -> requests

    def snapshot(self) -> dict[str, Any]:
        return {
            "dynamodb": {
                table: {
                    op: {"requests": int(n), "read_units": r, "write_units": w}
                    for op, (n, r, w) in ops.items()
                }
                for table, ops in self.dynamodb.items()
            },
            "s3": dict(self.s3),
            "other": dict(self.other),
            "uncounted": dict(self.uncounted),
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.reset()
            body = json.dumps(self.snapshot()).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(DYNAMODB_TARGET):
            return self._dynamodb(environ, start_response, target.removeprefix(DYNAMODB_TARGET))
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(2) if match else "unsigned"
        if service == "s3":
            self.s3[_s3_operation(environ)] += 1
        else:
            self.other[service] += 1
        return self._app(environ, start_response)

    # -- DynamoDB --------------------------------------------------------------------------
    def _dynamodb(
        self, environ: dict[str, Any], start_response: Callable[..., Any], operation: str
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        before = self._before(environ, operation, request)
        status, headers, response_body = self._call(environ, body)
        start_response(status, headers)
        failed = _condition_failed(status, response_body)
        if status.startswith("200") or failed:
            try:
                self._charge(environ, operation, request, before, response_body, failed)
            except (KeyError, ValueError, TypeError):
                # A request shape the counter does not know: reported, never silently free.
                self.uncounted[operation] += 1
        return [response_body]

    def _call(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        return call_app(self._app, environ, body)

    def _internal(
        self, environ: dict[str, Any], operation: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A request of our own to moto (same credentials and region as the one counted)."""
        body = json.dumps(request).encode()
        status, _, data = self._call({**environ, "HTTP_X_AMZ_TARGET": DYNAMODB_TARGET + operation}, body)
        if not status.startswith("200"):
            raise ValueError(f"{operation}: {status}")
        return dict(json.loads(data or b"{}"))

    def _key_schema(self, environ: dict[str, Any], table: str) -> tuple[str, str | None]:
        if table not in self._schemas:
            described = self._internal(environ, "DescribeTable", {"TableName": table})["Table"]
            keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
            self._schemas[table] = (keys["HASH"], keys.get("RANGE"))
        return self._schemas[table]

    def _current(self, environ: dict[str, Any], table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self._internal(environ, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        item = found.get("Item")
        return dict(item) if item else None

    def _key_of(self, environ: dict[str, Any], table: str, item: Mapping[str, Any]) -> dict[str, Any]:
        hash_key, range_key = self._key_schema(environ, table)
        return {name: item[name] for name in (hash_key, range_key) if name is not None}

    def _writes(self, operation: str, request: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """(table, kind, request part) of every item a write operation touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(request["TableName"], operation, dict(request))]
        if operation == "BatchWriteItem":
            return [
                (
                    table,
                    "PutItem" if "PutRequest" in w else "DeleteItem",
                    w.get("PutRequest") or w["DeleteRequest"],
                )
                for table, writes in request["RequestItems"].items()
                for w in writes
            ]
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheck",
            }
            return [
                (part["TableName"], kinds[kind], dict(part))
                for entry in request["TransactItems"]
                for kind, part in entry.items()
            ]
        return []

    def _before(
        self, environ: dict[str, Any], operation: str, request: Mapping[str, Any]
    ) -> list[dict[str, Any] | None]:
        """The items a write is about to replace, in the order of `_writes`."""
        try:
            found = []
            for table, _kind, part in self._writes(operation, request):
                key = part["Key"] if "Key" in part else self._key_of(environ, table, part["Item"])
                found.append(self._current(environ, table, key))
            return found
        except (KeyError, ValueError, TypeError):
            return []

    def _charge(
        self,
        environ: dict[str, Any],
        operation: str,
        request: Mapping[str, Any],
        before: list[dict[str, Any] | None],
        response_body: bytes,
        failed: bool = False,
    ) -> None:
        if operation == "GetItem":
            item = json.loads(response_body).get("Item")
            # The whole item counts (a projection does not make a read cheaper); a missing
            # item still costs the minimum. The projected answer may be smaller: re-read.
            if item is not None and request.get("ProjectionExpression"):
                item = self._current(environ, request["TableName"], request["Key"])
            self._add(
                request["TableName"],
                operation,
                read=read_units(item_size(item), bool(request.get("ConsistentRead"))),
            )
        elif operation in ("BatchGetItem", "TransactGetItems"):
            self._batch_read(environ, operation, request)
        elif operation in ("Query", "Scan"):
            size = sum(item_size(i) for i in self._scanned(environ, operation, request))
            self._add(
                request["TableName"], operation, read=read_units(size, bool(request.get("ConsistentRead")))
            )
        else:
            writes = self._writes(operation, request)
            if not writes:
                self._add(request.get("TableName", "-"), operation)
                return
            transactional = operation == "TransactWriteItems"
            for (table, kind, part), old in zip(writes, before or [None] * len(writes), strict=True):
                if kind == "ConditionCheck":  # a read of the item, billed as a write unit
                    self._add(table, operation, write=write_units(item_size(old), transactional), count=False)
                    continue
                key = part["Key"] if "Key" in part else self._key_of(environ, table, part["Item"])
                if failed:  # refused by its condition: the existing item's size, at least 1
                    new = None
                elif kind == "PutItem":
                    new = part["Item"]
                else:
                    new = self._current(environ, table, key) if kind == "UpdateItem" else None
                size = max(item_size(old), item_size(new))
                self._add(table, operation, write=write_units(size, transactional), count=False)
            self._count(writes[0][0], operation)

    def _batch_read(self, environ: dict[str, Any], operation: str, request: Mapping[str, Any]) -> None:
        if operation == "BatchGetItem":
            gets = [
                (table, key, bool(spec.get("ConsistentRead")))
                for table, spec in request["RequestItems"].items()
                for key in spec["Keys"]
            ]
        else:
            gets = [(e["Get"]["TableName"], e["Get"]["Key"], True) for e in request["TransactItems"]]
        for table, key, consistent in gets:
            size = item_size(self._current(environ, table, key))
            self._add(
                table,
                operation,
                read=read_units(size, consistent, operation == "TransactGetItems"),
                count=False,
            )
        if gets:
            self._count(gets[0][0], operation)

    def _scanned(
        self, environ: dict[str, Any], operation: str, request: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Every item the Query or Scan read, before its filter and projection: the same
        request without them (names and values pruned to what the rest still uses)."""
        bare = {
            k: v
            for k, v in request.items()
            if k
            not in {
                "FilterExpression",
                "ProjectionExpression",
                "Select",
                "AttributesToGet",
                "QueryFilter",
                "ScanFilter",
                "ReturnConsumedCapacity",
            }
        }
        used = set(_NAME_OR_VALUE.findall(str(bare.get("KeyConditionExpression", ""))))
        for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            if field in bare:
                kept = {k: v for k, v in bare[field].items() if k in used}
                if kept:
                    bare[field] = kept
                else:
                    del bare[field]
        return list(self._internal(environ, operation, bare).get("Items", []))

    def _add(
        self, table: str, operation: str, read: float = 0.0, write: float = 0.0, count: bool = True
    ) -> None:
        entry = self.dynamodb[table][operation]
        entry[0] += 1 if count else 0
        entry[1] += read
        entry[2] += write

    def _count(self, table: str, operation: str) -> None:
        self.dynamodb[table][operation][0] += 1


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def call_app(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of `app` answering `environ` with `body` as the request body."""
    captured: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    response = app(environ, keep)
    try:
        data = b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], data


def _condition_failed(status: str, body: bytes) -> bool:
    """A write refused by its condition still consumes write units (at least one)."""
    return status.startswith("400") and b"ConditionalCheckFailed" in body


def _s3_operation(environ: dict[str, Any]) -> str:
    method = environ.get("REQUEST_METHOD", "")
    query = environ.get("QUERY_STRING", "")
    path = environ.get("PATH_INFO", "").strip("/")
    if method == "GET" and ("/" not in path):  # the bucket itself: a LIST
        return "LIST"
    return {"GET": "GET", "HEAD": "HEAD", "PUT": "PUT", "POST": "POST", "DELETE": "DELETE"}.get(
        method, method
    ) + ("" if "uploadId" not in query else "-multipart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto's server on waitress (keep-alive)")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    moto_speedups.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    counting = os.environ.get(COUNT_ENV, "").strip().lower() in {"1", "true", "yes"}
    app = LongPolls(Serialised(RequestCounter(moto_app) if counting else moto_app))
    # S3 uploads of snapshots can be large; waitress's default request body cap is 1 GB.
    serve(app, host=args.host, port=args.port, threads=THREADS, ident="moto", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
