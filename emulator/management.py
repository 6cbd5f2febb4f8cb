"""The Management API (@connections) on the emulator's own port, with the status codes,
error types and JSON field names botocore's apigatewaymanagementapi model expects."""

from __future__ import annotations

import time

from aiohttp import web

from emulator.config import MESSAGE_LIMIT
from emulator.connections import Registry
from emulator.gateway import Gateway


def routes(gateway: Gateway) -> list[web.RouteDef]:
    api = ManagementApi(gateway)
    table: list[web.RouteDef] = []
    for prefix in ("", "/{stage}"):
        path = prefix + "/@connections/{connection_id}"
        table += [web.post(path, api.post), web.get(path, api.get), web.delete(path, api.delete)]
    return table


class ManagementApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.registry: Registry = gateway.registry

    def _stage_error(self, request: web.Request) -> web.Response | None:
        stage = request.match_info.get("stage")
        if stage is not None and stage != self.gateway.config.stage:
            return _error(403, "ForbiddenException", "Forbidden")
        return None

    async def post(self, request: web.Request) -> web.Response:
        if (error := self._stage_error(request)) is not None:
            return error
        data = await request.read()
        if len(data) > MESSAGE_LIMIT:
            return _error(413, "PayloadTooLargeException", "Message too long")
        conn = self.registry.open(request.match_info["connection_id"])
        if conn is None or not await conn.send(data):
            return _gone()
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        if (error := self._stage_error(request)) is not None:
            return error
        conn = self.registry.open(request.match_info["connection_id"])
        if conn is None:
            return _gone()
        hs = conn.handshake
        return web.json_response(
            {
                "connectedAt": _iso(hs.connected_at_ms),
                "identity": {"sourceIp": hs.source_ip, "userAgent": hs.user_agent},
                "lastActiveAt": _iso(conn.last_active_ms),
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        if (error := self._stage_error(request)) is not None:
            return error
        conn = self.registry.open(request.match_info["connection_id"])
        if conn is None:
            return _gone()
        # The connection stops taking posts now; the closing handshake finishes later.
        self.gateway.close_later(conn, 1000, "Connection Closed Normally")
        return web.Response(status=204)


def _iso(epoch_ms: int) -> str:
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _error(status: int, error_type: str, message: str) -> web.Response:
    # botocore's rest-json parser takes the error code from this header.
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": error_type})


def _gone() -> web.Response:
    return _error(410, "GoneException", "Gone")
