"""The connections the emulator holds, as the Management API sees them: a connection can
receive posts only while OPEN (its $connect returned and nobody has closed it)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulator.events import Handshake, now_ms


class State(enum.Enum):
    CONNECTING = "connecting"  # authorizer / $connect running: posts get 410
    OPEN = "open"
    CLOSING = "closing"  # a close was decided; posts get 410 from now on
    CLOSED = "closed"


@dataclass
class Connection:
    handshake: Handshake
    state: State = State.CONNECTING
    authorizer: Mapping[str, Any] | None = None
    ws: web.WebSocketResponse | None = None
    last_active_ms: int = field(default_factory=now_ms)
    last_active_mono: float = field(default_factory=time.monotonic)
    connected_mono: float = field(default_factory=time.monotonic)
    # Set when the emulator (not the client) decides to close: (code, reason).
    server_close: tuple[int, str] | None = None
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.handshake.connection_id

    def touch(self) -> None:
        self.last_active_ms = now_ms()
        self.last_active_mono = time.monotonic()

    async def send(self, data: bytes | str) -> bool:
        """Deliver one frame; False if the connection is not (or no longer) open."""
        if self.state is not State.OPEN or self.ws is None:
            return False
        async with self._send_lock:
            try:
                if isinstance(data, str):
                    await self.ws.send_str(data)
                else:
                    try:
                        await self.ws.send_str(data.decode("utf-8"))
                    except UnicodeDecodeError:
                        await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return False
        return True

    def begin_close(self, code: int, reason: str) -> bool:
        """Decide a server-side close (the first decision wins); posts get 410 from now on."""
        if self.state in (State.CLOSING, State.CLOSED):
            return False
        self.server_close = (code, reason)
        self.state = State.CLOSING
        return True

    async def finish_close(self) -> None:
        """Send the close frame and wait for the client's answer."""
        try:
            if self.ws is not None and self.server_close is not None:
                code, reason = self.server_close
                await self.ws.close(code=code, message=reason.encode("utf-8")[:123])
        finally:
            self._closed.set()

    async def close(self, code: int, reason: str) -> None:
        if self.begin_close(code, reason):
            await self.finish_close()

    async def wait_closed(self, timeout: float) -> None:
        """Until a server-side close() has finished its closing handshake."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout)


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._by_id[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        self._by_id.pop(connection.id, None)

    def get(self, connection_id: str) -> Connection | None:
        return self._by_id.get(connection_id)

    def open(self, connection_id: str) -> Connection | None:
        connection = self._by_id.get(connection_id)
        return connection if connection is not None and connection.state is State.OPEN else None

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))
