"""Faults inside the local stack's execution environments, for tests. A test names one of
the pause points of the handlers' code (the `pause` hook of collab.documents.Documents:
"append:start", "append:durable-written", ...) and what the next environment to reach it
does there:

- "pause": it stops there until the test releases it (the test may kill it meanwhile);
- "exit": os._exit(1), as a crashing native library would end it;
- "allocate": it allocates memory until the emulator ends it with Runtime.OutOfMemory.

Across processes, through files in one directory. `LocalStack(faults_dir=...)` sets
DEVSTACK_FAULT_DIR in the handlers' environment and has every execution environment run
`install` in its init phase (the emulator's `preload`), which hands collab.runtime.build
a pause hook, the seam the core tests use in-process (tests/support/pause.py).

  <point>.arm      the test writes the action
  <point>.reached  the environment that took the arm writes {"pid", "function"}
  <point>.go       the test writes it: a paused environment carries on
Only one environment takes an arm (an atomic rename), so each armed fault happens once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FAULT_DIR = "DEVSTACK_FAULT_DIR"
ACTIONS = ("pause", "exit", "allocate")
# A paused handler that is never released carries on after this, as PausePoints does.
PAUSE_LIMIT = 120.0
MIB = 1024 * 1024


def install() -> None:
    """Run by each execution environment at init (only with DEVSTACK_FAULT_DIR set)."""
    directory = os.environ.get(FAULT_DIR)
    if not directory:
        return
    from collab import runtime

    hook = FaultHook(Path(directory))
    build = runtime.build

    def build_with_faults(settings: Any, pause: Any = hook) -> Any:
        return build(settings, pause=pause)

    # runtime.current() looks `build` up at call time, so the environment's runtime gets it.
    runtime.build = build_with_faults


class FaultHook:
    """The pause hook inside an environment: one stat per pause point when nothing is armed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, point: str) -> None:
        arm = self.directory / f"{point}.arm"
        if not arm.exists():
            return
        taken = self.directory / f"{point}.taken-{os.getpid()}"
        try:
            os.rename(arm, taken)
        except FileNotFoundError:
            return  # another environment took it first
        action = taken.read_text().strip()
        _write_json(
            self.directory / f"{point}.reached",
            {"pid": os.getpid(), "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")},
        )
        if action == "pause":
            deadline = time.monotonic() + PAUSE_LIMIT
            while not (self.directory / f"{point}.go").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        elif action == "exit":
            os._exit(1)
        elif action == "allocate":
            _allocate_past_the_setting()


def _allocate_past_the_setting() -> None:
    setting = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    held = []
    for _ in range(2 * setting // 16):
        held.append(b"\x01" * (16 * MIB))  # non-zero bytes: every page is resident
    # Still alive at twice the setting: the emulator did not enforce it.
    raise RuntimeError(f"allocated {16 * len(held)} MB of a {setting} MB function and was not stopped")


class Faults:
    """The test's side: arm a point, wait until an environment reaches it, release it."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def arm(self, point: str, action: str = "pause") -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
        for stale in (f"{point}.reached", f"{point}.go"):
            (self.directory / stale).unlink(missing_ok=True)
        tmp = self.directory / f"{point}.arm.tmp"
        tmp.write_text(action)
        tmp.replace(self.directory / f"{point}.arm")

    def wait_reached(self, point: str, timeout: float = 60.0) -> dict[str, Any]:
        """{"pid", "function"} of the environment that reached `point`."""
        path = self.directory / f"{point}.reached"
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"no environment reached {point!r} within {timeout}s"
            time.sleep(0.01)
        reached: dict[str, Any] = json.loads(path.read_text())
        return reached

    def release(self, point: str) -> None:
        (self.directory / f"{point}.go").touch()

    def disarm(self, point: str) -> None:
        (self.directory / f"{point}.arm").unlink(missing_ok=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # readers never see half a file
