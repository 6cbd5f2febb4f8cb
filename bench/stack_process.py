"""The local stack in a process of its own, for benchmarks that count its CPU from /proc
(bench/openloop.py): `python -m bench.stack_process LOGFILE` starts devstack's LocalStack on
free ports with its own redis-server, prints one JSON line (URLs, the development JWT secret,
the handlers' environment) and runs until its stdin closes, then stops everything.

In its own process so that the stack's CPU (this process: the emulator; its children: the
execution environments, redis-server, moto) is not mixed with the benchmark's clients.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from devstack.stack import LocalStack  # noqa: E402
from emulator import gc_pauses  # noqa: E402


def main() -> None:
    # The handlers log every invocation to the inherited stdout/stderr: those go to the log,
    # the one JSON line to a private copy of stdout.
    report = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(sys.argv[1] if len(sys.argv) > 1 else os.devnull, "a")  # noqa: SIM115 (for the process's life)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    # Its own redis-server, never a shared one: its CPU is part of the figure.
    os.environ.pop("REDIS_URL", None)
    with LocalStack(port=0, seed_demo=False) as stack:
        gc_pauses.freeze_startup_state()  # as `make dev` does (devstack/__main__.py)
        info = {
            "ws_url": stack.ws_url,
            "management_url": stack.management_url,
            "moto_url": stack.moto_url,
            "redis_url": stack.redis_url,
            "jwt_secret": stack.jwt_secret,
            "env": stack.env,
        }
        report.write(json.dumps(info) + "\n")
        sys.stdin.read()  # until the benchmark closes the pipe (or dies)


if __name__ == "__main__":
    main()
