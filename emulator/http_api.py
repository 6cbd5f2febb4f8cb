"""The HTTP API (API Gateway v2, payload format 2.0, stage $default) on a port of its own:
each request is matched to a route of the table's httpRoutes, handed to its function
through the same execution environments as the WebSocket routes, and answered as API
Gateway answers.

API Gateway's own answers, each a JSON {"message": ...}:
- 413 "Request Entity Too Large": a body over the HTTP API's 10 MB payload limit (read no
  further than that), or an event over Lambda's 6 MB invocation payload (a binary body
  grows by a third in base64), without invoking the function;
- 404 "Not Found": no route;
- 500 "Internal Server Error": the function failed (an error, its timeout, a crash) or
  returned what API Gateway cannot read (http_events.MalformedResponse), or a response
  over Lambda's 6 MB;
- 503 "Service Unavailable": the integration timeout (30 s) ran out before the function
  answered; the invocation runs on, as it does on AWS.
Throttling is not modelled: beyond its environments an invocation waits for one.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from emulator.config import HTTP_PAYLOAD_LIMIT, EmulatorConfig, RouteTable
from emulator.environments import Lambdas, Outcome
from emulator.http_events import HttpAnswer, HttpRequest, MalformedResponse, http_answer, http_event
from emulator.logs import log_invocation, log_json

# Lambda's synchronous invocation payloads: "Request must be smaller than 6291456 bytes
# for the InvokeFunction operation"; a larger response fails the invocation.
LAMBDA_REQUEST_LIMIT = 6 * 1024 * 1024
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024 + 100
_READ_CHUNK = 256 * 1024
_MESSAGES = {
    404: "Not Found",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpApi:
    def __init__(self, config: EmulatorConfig, table: RouteTable, lambdas: Lambdas) -> None:
        self.config = config
        self.router = table.http_router()
        self.lambdas = lambdas
        # Invocations the integration timeout gave up on: they run to their end.
        self._abandoned: set[asyncio.Task[Outcome]] = set()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        body = await _read_body(request)
        http = _http_request(request, body or b"")
        if body is None:
            return self._refuse(http, 413, "payload_limit", started)
        found = self.router.match(http.method, http.path)
        if found is None:
            return self._refuse(http, 404, "no_route", started)
        route, params = found
        event = http_event(http, route.key, params, self.config.http_api_id, self.config.account_id)
        if len(json.dumps(event).encode()) >= LAMBDA_REQUEST_LIMIT:
            return self._refuse(http, 413, "lambda_payload_limit", started)
        invocation = asyncio.ensure_future(self.lambdas.invoke(route.function, event))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(invocation), self.config.http_timeout)
        except TimeoutError:
            self._abandoned.add(invocation)
            invocation.add_done_callback(self._abandoned.discard)
            return self._refuse(http, 503, "integration_timeout", started, route=route.key)
        answer, problem = _answer(outcome)
        log_invocation(route.key, route.function, event, outcome, api="http", statusCode=answer.status)
        if problem:
            log_json(event="http", gatewayRequestId=http.request_id, route=route.key, status=problem)
        return await _send(request, http, answer)

    def _refuse(
        self, http: HttpRequest, status: int, reason: str, started: float, route: str | None = None
    ) -> web.StreamResponse:
        log_json(
            event="http",
            gatewayRequestId=http.request_id,
            method=http.method,
            path=http.path,
            route=route,
            status=reason,
            statusCode=status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return _error_response(status, http.request_id)

    async def shutdown(self) -> None:
        """Forget invocations nobody waits for (the pools end their environments)."""
        for task in list(self._abandoned):
            task.cancel()


async def _read_body(request: web.BaseRequest) -> bytes | None:
    """The whole body, or None once it is over the payload limit (read no further)."""
    declared = request.content_length
    if declared is not None and declared > HTTP_PAYLOAD_LIMIT:
        return None
    if request.headers.get("Expect", "").lower() == "100-continue":
        # The client waits for this before it sends the body (curl does, over 1 MB).
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > HTTP_PAYLOAD_LIMIT:
            return None
        chunks.append(chunk)


def _http_request(request: web.BaseRequest, body: bytes) -> HttpRequest:
    raw_path, _, raw_query = request.raw_path.partition("?")
    sockname = request.get_extra_info("sockname")
    return HttpRequest(
        method=request.method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=list(request.headers.items()),
        body=body,
        source_ip=request.remote or "127.0.0.1",
        domain_name=request.host,
        port=int(sockname[1]) if sockname else 0,
        scheme=request.scheme,
        protocol=f"HTTP/{request.version.major}.{request.version.minor}",
    )


def _answer(outcome: Outcome) -> tuple[HttpAnswer, str | None]:
    """The response and, when API Gateway refused the result, why."""
    if not outcome.ok:
        return _error_answer(500), None
    try:
        if len(json.dumps(outcome.result).encode()) > LAMBDA_RESPONSE_LIMIT:
            return _error_answer(500), "lambda_response_too_large"
        return http_answer(outcome.result), None
    except MalformedResponse as bad:
        return _error_answer(500), f"malformed_response: {bad}"


def _error_answer(status: int) -> HttpAnswer:
    body = json.dumps({"message": _MESSAGES[status]}, separators=(",", ":")).encode()
    return HttpAnswer(status, [("content-type", "application/json")], body)


def _error_response(status: int, request_id: str) -> web.Response:
    answer = _error_answer(status)
    return web.Response(status=status, body=answer.body, headers=[*answer.headers, _request_id(request_id)])


def _request_id(request_id: str) -> tuple[str, str]:
    # Every HTTP API response names its request (the event's requestContext.requestId).
    return ("apigw-requestid", request_id)


async def _send(request: web.BaseRequest, http: HttpRequest, answer: HttpAnswer) -> web.StreamResponse:
    response = web.StreamResponse(status=answer.status)
    for name, value in [*answer.headers, _request_id(http.request_id)]:
        response.headers.add(name, value)
    response.content_length = len(answer.body)
    await response.prepare(request)
    await response.write(answer.body)
    await response.write_eof()
    return response
