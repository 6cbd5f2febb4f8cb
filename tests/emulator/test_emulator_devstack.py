"""`python -m devstack`: ready output, a working emulator behind it, the state file collabctl
reads, free ports for everything with `--port 0`, and a clean shutdown on SIGTERM that
leaves no process behind (and no state file)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from collabctl.local_state import STATE_FILE_ENV, read_state
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


@contextmanager
def devstack(state_file: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """`python -m devstack --json --port 0` with its own Redis, until READY: the process
    and its ready line. Killed on the way out if the test did not stop it."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_CLUSTER")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "--json",
            "--no-demo",
            "--port",
            "0",
            "--state-file",
            str(state_file),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process, json.loads(process.stdout.readline())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def collabctl(state_file: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """collabctl from the repository root in a shell with nothing of the stack exported."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "collabctl", *argv],
        cwd=ROOT,
        env={**env, STATE_FILE_ENV: str(state_file)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def port(url: str) -> int:
    found = urlsplit(url).port
    assert found is not None, url
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc to find leftover processes")
def test_devstack_starts_prints_json_and_stops_cleanly(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with devstack(state_file) as (process, info):
        assert info["READY"] is True
        assert info["WS_URL"].startswith("ws://127.0.0.1:") and info["WS_URL"].endswith("/local")
        assert info["MANAGEMENT_URL"] == info["WS_URL"].replace("ws://", "http://")
        management = management_client(info["MANAGEMENT_URL"])
        with pytest.raises(management.exceptions.GoneException):
            management.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
        # The state file is written before READY, for this process, readable by its user only.
        state = read_state(state_file)
        assert state is not None and state.pid == process.pid
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600  # it holds the JWT secret
        assert state.env["MANAGEMENT_ENDPOINT"] == info["MANAGEMENT_URL"]
        assert state.env["AWS_ENDPOINT_URL_DYNAMODB"] == info["MOTO_URL"]
        assert state.ready["WS_URL"] == info["WS_URL"]
        granted = collabctl(state_file, "grant", "--scene", "s-1", "--user", "ada", "--role", "editor")
        assert granted.returncode == 0, granted.stderr
        assert collabctl(state_file, "grants", "--scene", "s-1").stdout == "ada\teditor\n"
        started = children(process.pid)
        assert started, "moto and Redis run as child processes"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while any(running(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in started if running(pid)] == []
        assert not state_file.exists()
        # With the stack gone, collabctl says what to do rather than timing out on moto.
        after = collabctl(state_file, "grants", "--scene", "s-1")
        assert after.returncode == 1 and "start the local stack with `make dev`" in after.stderr


def test_two_stacks_on_port_0_share_no_port_and_the_newer_owns_the_state_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with devstack(state_file) as (first, first_info), devstack(state_file) as (second, second_info):
        ports = [
            port(info[key])
            for info in (first_info, second_info)
            for key in ("WS_URL", "MOTO_URL", "REDIS_URL")
        ]
        assert len(set(ports)) == len(ports), f"a port taken twice: {ports}"
        for info in (first_info, second_info):
            assert port(info["MANAGEMENT_URL"]) == port(info["WS_URL"])  # one server, both APIs
            management = management_client(info["MANAGEMENT_URL"])
            with pytest.raises(management.exceptions.GoneException):
                management.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
        state = read_state(state_file)
        assert state is not None and state.pid == second.pid  # the one started last
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        state = read_state(state_file)
        assert state is not None and state.pid == second.pid, (
            "the first stack's stop removed the second's state"
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        assert not state_file.exists()
