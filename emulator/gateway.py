"""The WebSocket side of the API: one connection's life from upgrade to $disconnect, with
API Gateway's routing, authorization, limits, timeouts and error messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from emulator import events
from emulator.config import EmulatorConfig, RouteTable
from emulator.connections import Connection, Registry, State
from emulator.environments import Lambdas, Outcome
from emulator.gateway_socket import GatewaySocket
from emulator.ids import gateway_id
from emulator.logs import log_invocation, log_json
from emulator.policy import decide

CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_GOING_AWAY = 1001
# disconnectReason texts as API Gateway words them (where known; see docs/emulator.md).
_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection closed abnormally",
}
_STATUS_TEXT = {
    401: "Unauthorized",
    403: "Forbidden",
    500: "Internal server error",
    502: "Internal server error",
}


class Gateway:
    def __init__(
        self, config: EmulatorConfig, table: RouteTable, lambdas: Lambdas, registry: Registry
    ) -> None:
        self.config = config
        self.table = table
        self.lambdas = lambdas
        self.registry = registry
        self.api = events.Api(config.api_id, config.stage, config.region, config.account_id)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info.get("stage") != self.config.stage:
            return _status_response(403)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, text="Upgrade Required")
        source_ip = request.remote or "127.0.0.1"
        # API Gateway adds these before the request reaches any integration.
        forwarded = [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(_local_port(request))),
            ("X-Forwarded-Proto", request.scheme),
        ]
        hs = events.Handshake(
            headers=[*request.headers.items(), *forwarded],
            query=list(request.query.items()),
            source_ip=source_ip,
            user_agent=request.headers.get("User-Agent", ""),
            domain_name=request.host,
        )
        conn = Connection(hs)
        self.registry.add(conn)
        subprotocol: str | None = None
        try:
            rejection = await self._authorize(conn)
            if rejection is None:
                rejection, subprotocol = await self._run_connect(conn)
            if rejection is not None:
                self.registry.remove(conn)
                return rejection
            ws = GatewaySocket(lambda code, reason: self.close_later(conn, code, reason), subprotocol)
            conn.ws = ws
            await ws.prepare(request)
        except BaseException:
            # $connect may have succeeded (rows written): its $disconnect is still owed.
            if conn.state is State.CONNECTING and conn.ws is not None:
                self._finish(conn, 1006)
            self.registry.remove(conn)
            raise
        conn.state = State.OPEN
        await self._serve(conn, ws)
        return ws

    async def _authorize(self, conn: Connection) -> web.Response | None:
        if self.table.authorizer is None:
            return None
        hs = conn.handshake
        if _missing_identity(self.table.identity_sources, hs):
            log_json(
                event="authorizer", connectionId=conn.id, status="missing_identity_source", statusCode=401
            )
            return _status_response(401)
        event = events.authorizer_event(self.api, hs)
        outcome = await self.lambdas.invoke(self.table.authorizer, event)
        decision = decide(outcome, self.api.method_arn("$connect"))
        _log_invocation(
            "$connect",
            conn,
            self.table.authorizer,
            event,
            outcome,
            kind="authorizer",
            statusCode=decision.status,
            decision=decision.reason,
        )
        if not decision.allowed:
            return _status_response(decision.status)
        conn.authorizer = decision.context
        return None

    async def _run_connect(self, conn: Connection) -> tuple[web.Response | None, str | None]:
        fn = self.table.function_for("$connect")
        if fn is None:
            return None, None
        event = events.connect_event(self.api, conn.handshake, conn.authorizer)
        outcome = await self.lambdas.invoke(fn.name, event)
        status, headers, body = _connect_result(outcome)
        _log_invocation("$connect", conn, fn.name, event, outcome, statusCode=status)
        if not 200 <= status < 300:
            return web.Response(status=status, text=body or _STATUS_TEXT.get(status, "")), None
        return None, headers.get("sec-websocket-protocol")

    async def _serve(self, conn: Connection, ws: web.WebSocketResponse) -> None:
        watchdog = asyncio.create_task(self._enforce_timeouts(conn))
        client_code, client_reason = 1006, ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    conn.touch()
                    self._spawn(self._dispatch(conn, msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await conn.close(CLOSE_UNSUPPORTED_DATA, "Binary frames are not supported")
                elif msg.type is WSMsgType.CLOSE:
                    client_code, client_reason = (msg.data or 1005), (msg.extra or "")
                elif msg.type is WSMsgType.ERROR:
                    # aiohttp already closed with the protocol error's code.
                    if conn.server_close is None:
                        conn.server_close = (ws.close_code or 1006, str(msg.data))
                    break
                elif msg.type is WSMsgType.CLOSING:
                    # Another task (DELETE, a timeout, a limit) is closing: let it finish
                    # the closing handshake before this handler returns the socket.
                    await conn.wait_closed(timeout=6.0)
                    break
                else:  # CLOSED
                    break
        finally:
            watchdog.cancel()
            self._finish(conn, client_code, client_reason)

    def _finish(self, conn: Connection, client_code: int, client_reason: str = "") -> None:
        conn.state = State.CLOSED
        self.registry.remove(conn)
        code, reason = conn.server_close or (client_code, client_reason)
        self._spawn(self._run_disconnect(conn, code, reason or _REASONS.get(code, "")))

    async def _enforce_timeouts(self, conn: Connection) -> None:
        while True:
            idle_at = conn.last_active_mono + self.config.idle_timeout
            end_at = conn.connected_mono + self.config.max_duration
            now = time.monotonic()
            if now >= min(idle_at, end_at):
                await conn.close(CLOSE_GOING_AWAY, "Going away")
                return
            await asyncio.sleep(min(idle_at, end_at) - now)

    async def _dispatch(self, conn: Connection, body: str) -> None:
        route_key = self.table.select_route(body)
        fn = None if route_key is None else self.table.function_for(route_key)
        if route_key is None or fn is None:
            request_id = gateway_id()
            log_json(event="route", connectionId=conn.id, gatewayRequestId=request_id, status="no_route")
            await conn.send(_gateway_message("Forbidden", conn.id, request_id))
            return
        event = events.message_event(self.api, conn.handshake, conn.authorizer, route_key, body)
        outcome = await self.lambdas.invoke(fn.name, event)
        _log_invocation(route_key, conn, fn.name, event, outcome)
        # A message route's return value goes back to the client only through a route
        # response, which this API does not configure: it is ignored, as on AWS.
        if not outcome.ok:
            request_id = event["requestContext"]["requestId"]
            await conn.send(_gateway_message("Internal server error", conn.id, request_id))

    async def _run_disconnect(self, conn: Connection, code: int, reason: str) -> None:
        fn = self.table.function_for("$disconnect")
        if fn is None:
            return
        event = events.disconnect_event(self.api, conn.handshake, conn.authorizer, code, reason)
        outcome = await self.lambdas.invoke(fn.name, event)
        _log_invocation("$disconnect", conn, fn.name, event, outcome, disconnectStatusCode=code)

    def close_later(self, conn: Connection, code: int, reason: str) -> None:
        if conn.begin_close(code, reason):
            self._spawn(conn.finish_close())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Close every connection (each gets its $disconnect) and wait for invocations."""
        deadline = time.monotonic() + grace
        closing = [
            conn.close(CLOSE_GOING_AWAY, "Going away") for conn in self.registry if conn.ws is not None
        ]
        await asyncio.gather(*closing, return_exceptions=True)
        # Each connection leaves the registry as its handler ends and spawns $disconnect.
        while any(True for _ in self.registry) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        pending = set(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=max(0.1, deadline - time.monotonic()))
            for task in still:
                task.cancel()


def _local_port(request: web.Request) -> int:
    sockname = request.get_extra_info("sockname")
    return int(sockname[1]) if sockname else 0


def _connect_result(outcome: Outcome) -> tuple[int, dict[str, str], str]:
    """(status, lower-cased headers, body) of a $connect invocation, as API Gateway reads it."""
    if not outcome.ok:
        return 502, {}, ""
    result = outcome.result
    if not isinstance(result, dict):
        # A handler that returns nothing admits the connection.
        return 200, {}, ""
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError):
        return 502, {}, ""
    headers = result.get("headers") or {}
    body = result.get("body")
    return (
        status,
        {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body if isinstance(body, str) else "",
    )


def _missing_identity(sources: tuple[str, ...], hs: events.Handshake) -> bool:
    headers = {k.lower() for k, v in hs.headers if v}
    query = {k for k, v in hs.query if v}
    for source in sources:
        kind, _, name = source.removeprefix("route.request.").partition(".")
        if (kind == "header" and name.lower() not in headers) or (
            kind == "querystring" and name not in query
        ):
            return True
    return False


def _status_response(status: int) -> web.Response:
    return web.json_response({"message": _STATUS_TEXT.get(status, "Error")}, status=status)


def _gateway_message(message: str, connection_id: str, request_id: str) -> str:
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})


def _log_invocation(
    route: str, conn: Connection, function: str, event: Mapping[str, Any], outcome: Outcome, **extra: Any
) -> None:
    log_invocation(route, function, event, outcome, connectionId=conn.id, **extra)
