"""Posting to connections through the API Gateway Management API.

Fan-out is where a handler's CPU, latency and bill go (docs/design.md §3). So every post of a
broadcast is in flight at once, each on its own kept-alive connection that outlives the
invocation (collab.management_client: awscrt, SigV4, no SDK), and the calling thread runs a
small state machine over their answers:

- 2xx: delivered. A chunked message goes to each recipient on up to `LANES` lanes at once,
  each lane posting its share of the frames one after another (frame k on lane k mod
  LANES): a chunk carries its place (`seq`) and every client reassembles chunks in any
  order (docs/design.md §2), and a 21 MB scene is 230 frames, which one after another
  cost 230 round trips. A lane per recipient bounds what one slow peer can hold up.
- 410, or 403 for a connection id API Gateway does not know: gone, reported for eviction. A
  403 saying the function is not authorized is a deployment fault: logged, not gone, or one
  bad grant would empty every room.
- 429 (LimitExceededException): retried after a full-jitter backoff, 4 attempts in all.
- 5xx, or a connection that broke before it answered: retried once.
- No answer within `timeout`: that post is abandoned (its connection closed); the others
  are not held up.

Every failure other than gone is logged and not reported: the periodic resync repairs a lost
broadcast, and a failure is no proof that the peer left.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from collab import management_client as mc
from collab.chunks import split_message
from collab.protocol import SERVER_FRAME_LIMIT

if TYPE_CHECKING:  # annotations only; collab.management_client imports awscrt when it posts
    from awscrt import auth, http

logger = logging.getLogger(__name__)

_THROTTLE_ATTEMPTS = 4
_SERVER_ERROR_RETRIES = 1
_TRANSPORT_RETRIES = 1
_BACKOFF_SECONDS = 0.05  # full jitter: uniform(0, 0.05 · 2^n) before the n-th retry
# Frames of one chunked message in flight at once per recipient (see the module docstring).
LANES = 8

_CONNECTED = 0
_ANSWERED = 1


class Outbox:
    """One per Management API endpoint, kept for the life of the execution environment
    (collab.runtime), so its connections serve every later invocation."""

    def __init__(
        self,
        endpoint: str,
        workers: int = 16,
        *,
        timeout: float = 2.0,
        connect_timeout: float = 1.0,
        credentials: Any = None,
        ca_file: str | None = None,
        ip_family: mc.IpFamily = "any",
    ) -> None:
        """`workers`: posts in flight at once (one connection each); `timeout`: seconds one
        post may take, connecting included; `credentials`: anything with botocore's
        `get_frozen_credentials()`, by default botocore's standard chain; `ca_file`: a
        trust store for HTTPS other than the system's (tests); `ip_family`: "ipv6" to reach
        the endpoint over IPv6 only (FANOUT_IP_FAMILY, collab.settings)."""
        self.endpoint = endpoint
        self._endpoint = mc.Endpoint.parse(endpoint, mc.default_region())
        self._in_flight = max(1, workers)
        self._timeout = timeout
        self._identity = mc.SigningIdentity(credentials)
        self._pool = mc.ConnectionPool(
            self._endpoint,
            connect_timeout_ms=int(connect_timeout * 1000),
            ca_file=ca_file,
            ip_family=ip_family,
        )

    def send(self, connection_id: str, text: str) -> bool:
        """Deliver one message (chunked if needed); False when the connection is gone."""
        return not self.send_all([connection_id], text)

    def send_all(self, connection_ids: Iterable[str], text: str) -> list[str]:
        """Deliver to every connection at once; returns the ones that are gone."""
        targets = list(connection_ids)
        if not targets:
            return []
        bodies = [f.encode("ascii") for f in split_message(text, SERVER_FRAME_LIMIT)]
        frames = self._frames(bodies)
        lanes = [frames[lane::LANES] for lane in range(min(LANES, len(frames)))]
        deliveries = [_Delivery(cid, lane) for cid in targets for lane in lanes]
        _Run(self, "POST", deliveries).run()
        return list(dict.fromkeys(d.connection_id for d in deliveries if d.gone))

    def close(self, connection_id: str) -> None:
        """Best effort: a refusal's reply must not crash on a transport error."""
        try:
            delivery = _Delivery(connection_id, self._frames([b""]), closing=True)
            _Run(self, "DELETE", [delivery]).run()
        except Exception as error:  # whatever broke, the reply still goes out
            logger.warning("closing %s failed: %s", connection_id, error)

    def shutdown(self) -> None:
        """Close the idle connections (tests; Lambda just freezes the environment)."""
        self._pool.close_all()

    def _frames(self, bodies: list[bytes]) -> list[_Frame]:
        provider = self._identity.provider()
        region = self._endpoint.region
        return [_Frame(b, mc.signing_config(provider, region, b) if provider else None) for b in bodies]


@dataclass(frozen=True)
class _Frame:
    body: bytes
    signing: auth.AwsSigningConfig | None


@dataclass(eq=False)
class _Delivery:
    """One recipient's frames and how far they got."""

    connection_id: str
    frames: list[_Frame]
    closing: bool = False  # a DELETE: 410 is success, not news
    frame: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    gone: bool = False


@dataclass(eq=False)
class _Attempt:
    """One request of one frame, from taking a connection to its answer or its deadline."""

    delivery: _Delivery
    deadline: float
    connection: http.HttpClientConnection | None = None
    stream: http.HttpClientStream | None = None
    body: list[bytes] = field(default_factory=list)
    abandoned: bool = False

    def on_body(self, http_stream: Any, chunk: bytes, **_: Any) -> None:
        self.body.append(bytes(chunk))


class _Run:
    """One call: starts attempts up to the in-flight limit and reacts to their answers,
    which the native event loop hands over through a queue, so every decision (and all the
    Python work) happens on the calling thread."""

    def __init__(self, outbox: Outbox, method: str, deliveries: list[_Delivery]) -> None:
        self.outbox = outbox
        self.method = method
        self.ready: deque[_Delivery] = deque(deliveries)
        self.unfinished = len(deliveries)
        self.events: SimpleQueue[tuple[int, _Attempt, Future[Any]]] = SimpleQueue()
        self.in_flight = 0
        # Attempts in start order; all have the same timeout, so their deadlines ascend.
        self.deadlines: deque[_Attempt] = deque()
        self.backoffs: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()

    def run(self) -> None:
        while self.unfinished:
            while self.ready and self.in_flight < self.outbox._in_flight:
                self._start(self.ready.popleft())
            if not self.unfinished:
                break
            if not (self.in_flight or self.backoffs or self.ready):
                raise RuntimeError(f"outbox: {self.unfinished} deliveries lost track of")
            self._wait_and_handle()
            now = time.monotonic()
            self._expire(now)
            while self.backoffs and self.backoffs[0][0] <= now:
                self.ready.append(heapq.heappop(self.backoffs)[2])

    def _wait_and_handle(self) -> None:
        wake = min(
            (self.deadlines[0].deadline if self.deadlines else float("inf")),
            (self.backoffs[0][0] if self.backoffs else float("inf")),
        )
        timeout = max(0.0, wake - time.monotonic()) if wake != float("inf") else None
        if self.ready and self.in_flight < self.outbox._in_flight:
            timeout = 0.0  # a retry became ready: start it first
        try:
            event = self.events.get(timeout=timeout)
        except Empty:
            return
        while True:
            self._handle(*event)
            try:
                event = self.events.get_nowait()
            except Empty:
                return

    # -- attempts ------------------------------------------------------------------------
    def _start(self, delivery: _Delivery) -> None:
        attempt = _Attempt(delivery, time.monotonic() + self.outbox._timeout)
        self.in_flight += 1
        self.deadlines.append(attempt)
        connection = self.outbox._pool.take()
        if connection is not None:
            self._issue(attempt, connection)
            return
        try:
            opening = self.outbox._pool.open()
        except Exception as error:  # e.g. the TLS context could not be made
            self._end(attempt)
            self._transport_failed(delivery, error)
            return
        opening.add_done_callback(self._notify(_CONNECTED, attempt))

    def _issue(self, attempt: _Attempt, connection: http.HttpClientConnection) -> None:
        attempt.connection = connection
        delivery = attempt.delivery
        frame = delivery.frames[delivery.frame]
        endpoint = self.outbox._endpoint
        try:
            req = mc.request(
                endpoint, self.method, endpoint.connection_path(delivery.connection_id), frame.body
            )
            mc.sign(req, frame.signing)
            stream = connection.request(req, on_body=attempt.on_body)
            stream.activate()
        except Exception as error:  # a pooled connection closed meanwhile
            connection.close()
            self._end(attempt)
            self._transport_failed(delivery, error)
            return
        attempt.stream = stream
        stream.completion_future.add_done_callback(self._notify(_ANSWERED, attempt))

    def _notify(self, kind: int, attempt: _Attempt) -> Callable[[Future[Any]], None]:
        # Runs on the event-loop thread: hand over, decide nothing there.
        return lambda future: self.events.put((kind, attempt, future))

    def _handle(self, kind: int, attempt: _Attempt, future: Future[Any]) -> None:
        if attempt.abandoned:
            if kind == _CONNECTED and future.exception() is None:
                future.result().close()  # connected after its post timed out
            return
        if kind == _CONNECTED:
            error = future.exception()
            if error is not None:
                self._end(attempt)
                self._transport_failed(attempt.delivery, error)
            else:
                self._issue(attempt, future.result())
            return
        self._end(attempt)
        assert attempt.connection is not None
        error = future.exception()
        if error is not None:
            attempt.connection.close()
            self._transport_failed(attempt.delivery, error)
            return
        self.outbox._pool.give_back(attempt.connection)
        self._answered(attempt.delivery, int(future.result()), b"".join(attempt.body))

    def _end(self, attempt: _Attempt) -> None:
        attempt.abandoned = True  # any later event of this attempt is stale
        self.in_flight -= 1

    def _expire(self, now: float) -> None:
        while self.deadlines and (self.deadlines[0].abandoned or self.deadlines[0].deadline <= now):
            attempt = self.deadlines.popleft()
            if attempt.abandoned:
                continue
            self._end(attempt)
            if attempt.connection is not None:
                attempt.connection.close()  # its answer, if it ever comes, is not waited for
            self._failed(attempt.delivery, f"no answer within {self.outbox._timeout:g} s")

    # -- outcomes ------------------------------------------------------------------------
    def _answered(self, delivery: _Delivery, status: int, body: bytes) -> None:
        if 200 <= status < 300:
            delivery.frame += 1
            delivery.throttled = delivery.server_errors = delivery.transport_errors = 0
            if delivery.frame == len(delivery.frames):
                self._finish()
            else:
                self.ready.appendleft(delivery)  # the next frame, after this one
            return
        if status == 410:
            delivery.gone = not delivery.closing
            self._finish()
            return
        message = _message(body)
        if status == 403:
            if "not authorized" in message.lower():
                self._failed(delivery, f"403 {message}")
            else:
                # API Gateway's answer for a connection id it does not know (ended long ago).
                delivery.gone = not delivery.closing
                self._finish()
            return
        if status == 429:  # LimitExceededException
            delivery.throttled += 1
            if delivery.throttled < _THROTTLE_ATTEMPTS:
                delay = random.uniform(0, _BACKOFF_SECONDS * 2 ** (delivery.throttled - 1))
                heapq.heappush(self.backoffs, (time.monotonic() + delay, next(self._order), delivery))
                return
        elif status >= 500:
            delivery.server_errors += 1
            if delivery.server_errors <= _SERVER_ERROR_RETRIES:
                self.ready.append(delivery)
                return
        self._failed(delivery, f"{status} {message}".strip())

    def _transport_failed(self, delivery: _Delivery, error: BaseException) -> None:
        # A kept-alive connection the server closed while it was idle fails this way too:
        # one more attempt, on a fresh connection when none is left in the pool.
        delivery.transport_errors += 1
        if delivery.transport_errors <= _TRANSPORT_RETRIES:
            self.ready.append(delivery)
        else:
            self._failed(delivery, str(error))

    def _failed(self, delivery: _Delivery, reason: str) -> None:
        # The rest of a chunked message is not sent: the recipient cannot reassemble it.
        verb = "closing" if delivery.closing else "post to"
        logger.warning("%s %s failed: %s", verb, delivery.connection_id, reason)
        self._finish()

    def _finish(self) -> None:
        self.unfinished -= 1


def _message(body: bytes) -> str:
    """API Gateway's error body: {"message": ...} or {"Message": ...}."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if not isinstance(parsed, dict):
        return ""
    return str(parsed.get("message") or parsed.get("Message") or "")
