"""A local emulator of an API Gateway WebSocket API with Lambda integrations, and of the
stage's HTTP API (v2) on a port of its own.

    from emulator import EmulatorConfig, run_in_thread
    with run_in_thread(EmulatorConfig(routes_file=..., code_dir=...)) as emu:
        emu.ws_url, emu.management_url, emu.port, emu.http_url, emu.http_port

See docs/emulator.md for what it emulates and what it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.config import EmulatorConfig, RouteTable, RouteTableError
    from emulator.server import Emulator, run_in_thread

__all__ = ["Emulator", "EmulatorConfig", "RouteTable", "RouteTableError", "run_in_thread"]

_HOMES = {
    "EmulatorConfig": "emulator.config",
    "RouteTable": "emulator.config",
    "RouteTableError": "emulator.config",
    "Emulator": "emulator.server",
    "run_in_thread": "emulator.server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so a worker process importing emulator.worker does not pay for aiohttp.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
