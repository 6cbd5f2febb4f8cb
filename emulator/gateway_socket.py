"""aiohttp's server-side WebSocket, adjusted to behave like API Gateway's end of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web

from emulator.config import MESSAGE_LIMIT
from emulator.frames import FrameGuard
from emulator.logs import log_json


class GatewaySocket(web.WebSocketResponse):
    """Enforces the frame/message limits on raw frames (see frames.py) and puts the
    subprotocol $connect returned into the handshake, as API Gateway passes it through
    (even one the client did not offer: the client then fails, as it would on AWS)."""

    def __init__(self, on_violation: Callable[[int, str], None], subprotocol: str | None) -> None:
        super().__init__(
            protocols=(subprotocol,) if subprotocol else (),
            # API Gateway negotiates no permessage-deflate; frames arrive as sent.
            compress=False,
            # FrameGuard enforces the real limit first; this is only a backstop.
            max_msg_size=2 * MESSAGE_LIMIT,
            # How long a server-side close waits for the client's close frame.
            timeout=5.0,
        )
        self._on_violation = on_violation
        self._subprotocol = subprotocol

    def _pre_start(self, request: web.BaseRequest) -> Any:
        started = super()._pre_start(request)
        if self._subprotocol:
            self.headers[hdrs.SEC_WEBSOCKET_PROTOCOL] = self._subprotocol
        return started

    def _post_start(self, request: web.BaseRequest, protocol: Any, writer: Any) -> None:
        super()._post_start(request, protocol, writer)
        http = request.protocol
        inner = getattr(http, "_payload_parser", None)
        if inner is None:  # aiohttp changed its internals: fall back to message limits only
            log_json(event="warning", message="frame size limit not enforced (aiohttp internals changed)")
            return
        http._payload_parser = FrameGuard(inner, self._on_violation)
