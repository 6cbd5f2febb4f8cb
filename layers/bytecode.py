"""Bytecode for Lambda's Python 3.13, compiled on this machine by a CPython 3.13.

Lambda's /opt (layers) and /var/task (function code) are read-only, so a module shipped
without its `.pyc` is compiled from source in every new execution environment, and the
result is thrown away (~1 s of CPU per cold start for `messages`, docs/benchmarks.md).
The build machine's own Python (3.11 here) cannot produce them: a `.pyc` is only loaded by
the interpreter version that wrote it (its cache tag, `cpython-313`, and magic number).

How it is compiled, and why:
- `--invalidation-mode unchecked-hash`: the `.pyc` records a hash of its source instead of
  the source's mtime, and the loader never checks it. Zipped assets do not keep reliable
  mtimes, and the files under /opt and /var/task never change, so checking would only cost.
- `-s <dir> -p <runtime dir>`: each code object names its file as Lambda will see it
  (/opt/python/..., /var/task/...), not this machine's (random) staging directory, so
  tracebacks read right and two builds of the same input give the same bytes.
- `-j 0`: one worker per CPU; the output does not depend on which worker compiled what.

The interpreter: $LAMBDA_PYTHON if set, else `python3.13` on PATH, else the newest pyenv
3.13 (pyenv's own `python3.13` shim only answers when 3.13 is selected). Without one the
build fails (see `MISSING`) instead of shipping sources: a deploy without bytecode works,
so nobody would notice the second of CPU it adds to every cold start.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PYTHON_ENV = "LAMBDA_PYTHON"
CACHE_TAG = "cpython-313"
INVALIDATION_MODE = "unchecked-hash"
# What the compiled output depends on besides the interpreter and the sources.
COMPILE_ARGS = ("-m", "compileall", "-q", "-j", "0", "--invalidation-mode", INVALIDATION_MODE)
MISSING = (
    "no CPython 3.13 found to compile the Lambda bytecode with (Lambda runs 3.13, and a .pyc "
    "is only loaded by the version that wrote it). Install one: `pyenv install 3.13`, "
    "`uv python install 3.13`, or your system's python3.13 package (e.g. deadsnakes on "
    f"Ubuntu); or point ${PYTHON_ENV} at one."
)


class BytecodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Compiler:
    """A CPython 3.13: its path and full version (bytecode may differ between patch
    releases, so the version belongs in every build key)."""

    python: Path
    version: str


def _candidates() -> list[Path]:
    found: list[Path] = []
    if chosen := os.environ.get(PYTHON_ENV):
        return [Path(chosen)]
    if on_path := shutil.which("python3.13"):
        found.append(Path(on_path))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))

    def version_key(path: Path) -> tuple[int, ...]:
        parts = path.parent.parent.name.split(".")
        return tuple(int(p) if p.isdigit() else -1 for p in parts)

    found += sorted(pyenv_root.glob("versions/3.13.*/bin/python3.13"), key=version_key, reverse=True)
    return found


def _probe(python: Path) -> str | None:
    """The interpreter's version when it is a CPython 3.13, else None."""
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print(sys.implementation.cache_tag, sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return None
    tag, _, version = done.stdout.strip().partition(" ")
    return version if done.returncode == 0 and tag == CACHE_TAG else None


@functools.cache
def compiler() -> Compiler:
    """The CPython 3.13 to compile with; BytecodeError saying how to get one if none."""
    for python in _candidates():
        if (version := _probe(python)) is not None:
            return Compiler(python, version)
    if chosen := os.environ.get(PYTHON_ENV):
        raise BytecodeError(f"${PYTHON_ENV}={chosen} is not a CPython 3.13. {MISSING}")
    raise BytecodeError(MISSING)


def settings_key() -> str:
    """What to put in a build key so a different compiler or mode rebuilds."""
    return " ".join([CACHE_TAG, compiler().version, *COMPILE_ARGS])


def compile_tree(root: Path, runtime_dir: str) -> None:
    """Write `__pycache__/<name>.cpython-313.pyc` next to every .py under `root`, naming
    files as if `root` were `runtime_dir` (where Lambda unpacks it)."""
    root = root.resolve()  # compileall strips the prefix only from paths spelled alike
    command = [str(compiler().python), *COMPILE_ARGS, "-s", str(root), "-p", runtime_dir, str(root)]
    # A PYTHONPATH or PYTHONHOME meant for this machine's Python must not reach 3.13.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"}
    }
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise BytecodeError(f"compiling {root} with Python {compiler().version} failed:\n{output}")


def pyc_of(source: Path) -> Path:
    """Where the 3.13 bytecode of a source file goes."""
    return source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"


def missing_bytecode(root: Path) -> list[Path]:
    """The .py files under `root` without a 3.13 .pyc."""
    return sorted(p for p in root.rglob("*.py") if p.is_file() and not pyc_of(p).is_file())
