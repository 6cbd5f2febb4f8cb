"""`python -m devstack` (what `make dev` runs): start the local stack, print how to reach
it, one KEY=VALUE per line and then READY (or one JSON line with --json), and run until
SIGINT/SIGTERM, then stop everything it started."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.stack import LocalStack


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--port", type=int, help="emulator port, if free (default 8787); 0 for any free port")
    parser.add_argument("--json", action="store_true", help="print one JSON object line instead")
    parser.add_argument("--redis-cluster", action="store_true", help="run redis-server as a one-node cluster")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo scene and page")
    return parser.parse_args(argv)


def ready_info(stack: LocalStack) -> dict[str, str]:
    return {
        "WS_URL": stack.ws_url,
        "MANAGEMENT_URL": stack.management_url,
        "MOTO_URL": stack.moto_url,
        "REDIS_URL": stack.redis_url,
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
    stack = LocalStack(port=port, redis_cluster=args.redis_cluster, seed_demo=not args.no_demo)
    try:
        stack.start()
        info = ready_info(stack)
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
        stack.stop()


if __name__ == "__main__":
    main()
