"""`python -m devstack`: ready output, a working emulator behind it, and a clean shutdown
on SIGTERM that leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.emulator.support import management_client

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc to find leftover processes")
def test_devstack_starts_prints_json_and_stops_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_CLUSTER")}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--json", "--no-demo", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["READY"] is True
        assert info["WS_URL"].startswith("ws://127.0.0.1:") and info["WS_URL"].endswith("/local")
        assert info["MANAGEMENT_URL"] == info["WS_URL"].replace("ws://", "http://")
        management = management_client(info["MANAGEMENT_URL"])
        with pytest.raises(management.exceptions.GoneException):
            management.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
        started = children(process.pid)
        assert started, "moto and Redis run as child processes"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while any(running(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in started if running(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()
