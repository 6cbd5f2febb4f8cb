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

CORS, when the config allows origins (config.HttpCors), is API Gateway's too: a preflight
(OPTIONS with Origin and Access-Control-Request-Method) is answered 204 by the gateway on
any path, without a route or a function, with the allowed methods, headers and max age
when the origin is allowed and with no CORS header when it is not; every other answer to
an allowed origin (the function's and the gateway's own) gets access-control-allow-origin,
and the function's own access-control-* headers are dropped, as API Gateway ignores them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from aiohttp import web

from emulator.config import HTTP_PAYLOAD_LIMIT, EmulatorConfig, HttpCors, RouteTable
from emulator.environments import Lambdas, Outcome
from emulator.http_events import HttpAnswer, HttpRequest, MalformedResponse, http_answer, http_event
from emulator.ids import gateway_id
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
        cors = self.config.http_cors
        if _is_preflight(request, cors):
            return _preflight(request, cors)
        cors_headers = _cors_headers(cors, request.headers.get("Origin"))
        body = await _read_body(request)
        http = _http_request(request, body or b"")
        if body is None:
            return self._refuse(http, 413, "payload_limit", started, cors_headers)
        found = self.router.match(http.method, http.path)
        if found is None:
            return self._refuse(http, 404, "no_route", started, cors_headers)
        route, params = found
        event = http_event(http, route.key, params, self.config.http_api_id, self.config.account_id)
        if len(json.dumps(event).encode()) >= LAMBDA_REQUEST_LIMIT:
            return self._refuse(http, 413, "lambda_payload_limit", started, cors_headers)
        invocation = asyncio.ensure_future(self.lambdas.invoke(route.function, event))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(invocation), self.config.http_timeout)
        except TimeoutError:
            self._abandoned.add(invocation)
            invocation.add_done_callback(self._abandoned.discard)
            return self._refuse(http, 503, "integration_timeout", started, cors_headers, route=route.key)
        answer, problem = _answer(outcome)
        log_invocation(route.key, route.function, event, outcome, api="http", statusCode=answer.status)
        if problem:
            log_json(event="http", gatewayRequestId=http.request_id, route=route.key, status=problem)
        return await _send(request, http, _with_cors(answer, cors, cors_headers))

    def _refuse(
        self,
        http: HttpRequest,
        status: int,
        reason: str,
        started: float,
        cors_headers: list[tuple[str, str]],
        route: str | None = None,
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
        return _error_response(status, http.request_id, cors_headers)

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


def _error_response(status: int, request_id: str, extra: list[tuple[str, str]]) -> web.Response:
    answer = _error_answer(status)
    return web.Response(
        status=status, body=answer.body, headers=[*answer.headers, *extra, _request_id(request_id)]
    )


def _is_preflight(request: web.BaseRequest, cors: HttpCors) -> bool:
    # Without both headers an OPTIONS request is an ordinary one, routed (and likely 404).
    return (
        cors.enabled
        and request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _preflight(request: web.BaseRequest, cors: HttpCors) -> web.Response:
    """API Gateway's own answer to a preflight: no route, no function, no body read."""
    request_id = gateway_id()
    headers = [_request_id(request_id)]
    allowed = cors.allowed_origin(request.headers.get("Origin"))
    if allowed is not None:
        headers += [
            ("access-control-allow-origin", allowed),
            ("access-control-allow-methods", ",".join(cors.allow_methods)),
            ("access-control-allow-headers", ",".join(cors.allow_headers)),
            ("access-control-max-age", str(cors.max_age)),
        ]
    log_json(
        event="http",
        gatewayRequestId=request_id,
        method="OPTIONS",
        path=request.path,
        status="cors_preflight",
        allowed=allowed is not None,
    )
    return web.Response(status=204, headers=headers)


def _cors_headers(cors: HttpCors, origin: str | None) -> list[tuple[str, str]]:
    allowed = cors.allowed_origin(origin)
    return [] if allowed is None else [("access-control-allow-origin", allowed)]


def _with_cors(answer: HttpAnswer, cors: HttpCors, cors_headers: list[tuple[str, str]]) -> HttpAnswer:
    """The function's answer with the gateway's CORS headers in place of its own."""
    if not cors.enabled:
        return answer
    own = [(name, value) for name, value in answer.headers if not name.lower().startswith("access-control-")]
    return dataclasses.replace(answer, headers=[*own, *cors_headers])


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
