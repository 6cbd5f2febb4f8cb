"""`python -m devstack` (what `make dev` runs): start the local stack, print how to reach
it, one KEY=VALUE per line and then READY (or one JSON line with --json), and run until
SIGINT/SIGTERM, then stop everything it started.

Once ready it also writes .devstack/state.json (collabctl/local_state.py), which collabctl
reads so that its commands reach this stack with nothing exported; stopping removes it."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from collabctl.local_state import (
    OFF,
    STATE_FILE_ENV,
    display_path,
    remove_state,
    state_file_path,
    write_state,
)
from emulator import gc_pauses

if TYPE_CHECKING:
    from devstack.stack import LocalStack


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        help="the emulator's port (WebSocket and Management API), if free (default 8787); 0 for a free "
        "port (moto and Redis always take free ports)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        help="the HTTP API's port, if free (default 8789; with --port 0 a free one); 0 for a free port",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object line instead")
    parser.add_argument("--redis-cluster", action="store_true", help="run redis-server as a one-node cluster")
    parser.add_argument(
        "--cache",
        choices=("redis", "none"),
        default="redis",
        help="none: no Redis at all, as a stage deployed with cacheKind none (the handlers get "
        "CACHE_KIND=none and serve everything from DynamoDB)",
    )
    parser.add_argument("--no-demo", action="store_true", help="skip the demo scene and page")
    parser.add_argument(
        "--state-file",
        help=f"where collabctl finds this stack (default: ${STATE_FILE_ENV}, else "
        f"{display_path(state_file_path({}) or Path())}; '{OFF}': write none)",
    )
    args = parser.parse_args(argv)
    if args.cache == "none" and args.redis_cluster:
        parser.error("--redis-cluster needs a cache; it cannot go with --cache none")
    return args


def ready_info(stack: LocalStack) -> dict[str, str]:
    # Without a cache there is no REDIS_URL to give, and the block says why instead.
    cache = {"REDIS_URL": stack.redis_url} if stack.cache != "none" else {"CACHE_KIND": "none"}
    return {
        "WS_URL": stack.ws_url,
        "MANAGEMENT_URL": stack.management_url,
        "HTTP_URL": stack.http_url,
        "MOTO_URL": stack.moto_url,
        **cache,
        **stack.ready_info,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported here, not at the top: every worker process the emulator spawns re-imports
    # this module (multiprocessing's spawn does), and that should stay cheap.
    from devstack.stack import DEFAULT_PORT, LocalStack

    # Both unwind like Ctrl-C, so every service and worker is stopped on the way out (set
    # explicitly: a shell starts background jobs with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    port = DEFAULT_PORT if args.port is None else args.port
    state_file = state_file_path({STATE_FILE_ENV: args.state_file} if args.state_file else None)
    stack = LocalStack(
        port=port,
        http_port=args.http_port,
        redis_cluster=args.redis_cluster,
        seed_demo=not args.no_demo,
        warm=True,
        cache=args.cache,
    )
    try:
        stack.start()
        gc_pauses.freeze_startup_state()  # the emulator runs in this process
        info = ready_info(stack)
        if state_file is not None:
            # Before READY: whoever waits for READY can run collabctl right away.
            write_state(state_file, stack.env, info)
        if args.json:
            print(json.dumps({**info, "READY": True}), flush=True)
        else:
            for key, value in info.items():
                print(f"{key}={value}", flush=True)
            print("READY", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C (or a signal sent to the whole process group) must not cut the
        # shutdown short and leave services behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if state_file is not None:
            remove_state(state_file)  # first: collabctl must not aim at a stack going away
        stack.stop()


if __name__ == "__main__":
    main()
