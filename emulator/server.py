"""Assembles the emulator (route table, execution environments, the WebSocket and
Management API on one aiohttp server, the HTTP API on another port) and runs it in the
caller's event loop or in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from aiohttp import web

from emulator import management
from emulator.config import MESSAGE_LIMIT, EmulatorConfig
from emulator.connections import Registry
from emulator.environments import Lambdas
from emulator.gateway import Gateway
from emulator.http_api import HttpApi
from emulator.logs import ensure_stderr_handler

# In-flight HTTP requests get this long to finish when the emulator stops.
HTTP_SHUTDOWN_GRACE = 2.0


HTTP_HEADER_LIMIT = 10 * 1024


class Emulator:
    """One emulated stage: its WebSocket API and its HTTP API. Use `async with
    Emulator(cfg) as emu:` inside an event loop, or `with run_in_thread(cfg) as emu:` from
    synchronous code."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        table = config.route_table()  # a bad route table fails here, before any socket opens
        self.lambdas = Lambdas(
            table.functions,
            config.code_dir,
            config.env,
            config.max_environments,
            config.region,
            config.account_id,
            preload=tuple(config.preload),
            enforce_memory=config.enforce_memory,
        )
        self.gateway = Gateway(config, table, self.lambdas, Registry())
        # Room for a body over the Management API's limit, so the 413 is ours, not aiohttp's.
        self.app = web.Application(client_max_size=4 * MESSAGE_LIMIT)
        self.app.add_routes(management.routes(self.gateway))
        self.app.add_routes(
            [web.get("/{stage}", self.gateway.handle), web.get("/{stage}/", self.gateway.handle)]
        )
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.http_api = HttpApi(config, table, self.lambdas)
        self._http_runner: web.ServerRunner | None = None
        self.http_port = config.http_port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/{self.config.stage}"

    @property
    def management_url(self) -> str:
        return f"http://{self.config.host}:{self.port}/{self.config.stage}"

    @property
    def http_url(self) -> str:
        """The HTTP API's endpoint: its $default stage has no path of its own."""
        return f"http://{self.config.host}:{self.http_port}"

    async def start(self) -> None:
        ensure_stderr_handler()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        # A low-level server: every request reaches the HTTP API as sent, with no router
        # of aiohttp's in between (the route table's rules are API Gateway's).
        # API Gateway's HTTP APIs take 10 KB of request line and headers (a token with many
        # group claims comes near it); aiohttp's default cap on one header is 8,190 bytes.
        server = web.Server(
            self.http_api.handle,
            access_log=None,
            max_line_size=HTTP_HEADER_LIMIT,
            max_field_size=HTTP_HEADER_LIMIT,
        )
        self._http_runner = web.ServerRunner(
            server, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_GRACE
        )
        await self._http_runner.setup()
        await web.TCPSite(self._http_runner, self.config.host, self.config.http_port).start()
        self.http_port = int(self._http_runner.addresses[0][1])

    async def stop(self) -> None:
        try:
            await self.http_api.shutdown()
            if self._http_runner is not None:
                await self._http_runner.cleanup()
            await self.gateway.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self.lambdas.stop)

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


@contextmanager
def run_in_thread(config: EmulatorConfig, start_timeout: float = 30.0) -> Iterator[Emulator]:
    """Serve the emulator from a background thread with its own event loop."""
    emulator = Emulator(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="emulator", daemon=True)
    thread.start()
    try:
        try:
            asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(start_timeout)
        except BaseException:
            asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(60)
            raise
        try:
            yield emulator
        finally:
            asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
