"""The local stack's state file: how `make dev` (python -m devstack) tells collabctl where
it runs, so the README's commands work from the repository root with nothing exported.

`python -m devstack` writes `.devstack/state.json` (gitignored, mode 0600: it holds the
development JWT secret) once everything is up, and removes it when it stops. The file
holds the environment the handlers run with (table names, moto's endpoints, region, fake
credentials, MANAGEMENT_ENDPOINT, AUTH_MODE and JWT_SECRET) and the printed ready lines.

DEVSTACK_STATE_FILE names another file, for both sides (tests, a second stack); set to
`off`, collabctl ignores the local stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_FILE = ROOT / ".devstack" / "state.json"
STATE_FILE_ENV = "DEVSTACK_STATE_FILE"
OFF = "off"


def state_file_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the state file is (None: switched off)."""
    value = (os.environ if env is None else env).get(STATE_FILE_ENV, "")
    if value.strip().lower() == OFF:
        return None
    return Path(value) if value else DEFAULT_STATE_FILE


def display_path(path: Path) -> str:
    """`.devstack/state.json` for the usual file: messages read best relative to the root."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class LocalState:
    path: Path
    pid: int
    env: dict[str, str]
    ready: dict[str, str]

    @property
    def running(self) -> bool:
        """Whether the process that wrote it still runs (a `kill -9` leaves the file)."""
        return process_running(self.pid)

    @property
    def where(self) -> str:
        return f"the local stack of `make dev`, from {display_path(self.path)}"


def write_state(path: Path, env: Mapping[str, str], ready: Mapping[str, str], pid: int | None = None) -> None:
    """Write the state atomically (a reader never sees half a file), readable only by the
    user who started the stack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"pid": os.getpid() if pid is None else pid, "env": dict(env), "ready": dict(ready)}
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_state(path: Path) -> LocalState | None:
    """The state at `path`, or None if there is none (or it is not a state file)."""
    try:
        payload = json.loads(path.read_text())
        return LocalState(
            path,
            int(payload["pid"]),
            {str(k): str(v) for k, v in payload["env"].items()},
            {str(k): str(v) for k, v in payload.get("ready", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_state(path: Path, pid: int | None = None) -> None:
    """Remove the file if this process (or `pid`) wrote it: a second stack that started
    later owns the file now, and its state must survive the first one's stop."""
    state = read_state(path)
    if state is not None and state.pid == (os.getpid() if pid is None else pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
