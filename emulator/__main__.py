"""`python -m emulator --routes functions/routes.json --code functions --port 8080`:
serve the route table until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from emulator import gc_pauses
from emulator.config import EmulatorConfig
from emulator.server import Emulator


def parse_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--routes", type=Path, required=True, help="route table JSON (functions/routes.json)")
    parser.add_argument("--code", type=Path, required=True, help="code dir: first on the handlers' sys.path")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    parser.add_argument(
        "--http-port", type=int, default=0, help="the HTTP API's port; 0 picks a free one (the default)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="handler env (repeat)"
    )
    parser.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="copy NAME from this shell to handlers",
    )
    parser.add_argument("--max-environments", type=int, default=4, help="per function (default 4)")
    parser.add_argument("--idle-timeout", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--max-duration", type=float, default=7200.0, help="seconds (default 7200)")
    parser.add_argument("--function-timeout", type=float, default=29.0, help="seconds, unless routes set one")
    parser.add_argument(
        "--memory",
        action="append",
        default=[],
        metavar="FUNCTION=MB",
        help="a function's memory size, over the route table's memorySize (repeat)",
    )
    parser.add_argument(
        "--no-memory-limit", action="store_true", help="report memory use but never end an environment for it"
    )
    args = parser.parse_args(argv)
    memory: dict[str, int] = {}
    for item in args.memory:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            parser.error(f"--memory needs FUNCTION=MB, got {item!r}")
        memory[name] = int(value)
    env: dict[str, str] = {}
    for name in args.pass_env:
        if name in os.environ:
            env[name] = os.environ[name]
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--env needs NAME=VALUE, got {item!r}")
        env[name] = value
    return EmulatorConfig(
        routes_file=args.routes,
        code_dir=args.code,
        stage=args.stage,
        port=args.port,
        http_port=args.http_port,
        host=args.host,
        env=env,
        max_environments=args.max_environments,
        idle_timeout=args.idle_timeout,
        max_duration=args.max_duration,
        function_timeout=args.function_timeout,
        function_memory=memory,
        enforce_memory=not args.no_memory_limit,
    )


async def serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(config) as emulator:
        gc_pauses.freeze_startup_state()
        print(f"WS_URL={emulator.ws_url}", flush=True)
        print(f"MANAGEMENT_URL={emulator.management_url}", flush=True)
        print(f"HTTP_URL={emulator.http_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
