"""The pycrdt-websocket anchor of bench/openloop.py: its WebsocketServer (rooms by URL path,
y-websocket protocol, in-memory) behind the `websockets` server, on loopback.

Runs under bench/anchors/venv (bench/anchors/requirements.txt), not the repo's .venv:

    bench/anchors/venv/bin/python bench/openloop/pycrdt_server.py PORT

Prints `ready` once it listens; runs until stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from pycrdt.websocket import WebsocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class Channel:
    """pycrdt's Channel (path, send, recv, async iteration) over a `websockets` connection:
    pycrdt-websocket ships adapters for ASGI and httpx, and this is the same few lines."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection
        request = connection.request
        self.path = request.path.split("?")[0] if request is not None else "/"

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration() from None

    async def send(self, message: bytes) -> None:
        # A peer that left: the room drops it when that peer's own loop ends.
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(message)

    async def recv(self) -> bytes:
        message: Any = await self._connection.recv()
        return bytes(message)


async def main(port: int) -> None:
    async with WebsocketServer(auto_clean_rooms=False) as server:
        starting = asyncio.Lock()

        async def handler(connection: ServerConnection) -> None:
            channel = Channel(connection)
            # pycrdt-websocket 0.16.5 starts a new room once per first client that arrives
            # before the room has started, and of several arriving together some never get
            # a sync: start each room once, here, before serving.
            async with starting:
                await server.get_room(channel.path)
            await server.serve(channel)

        async with serve(handler, "127.0.0.1", port, max_size=None, compression=None):
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
