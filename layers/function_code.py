"""The function code asset: a copy of functions/ with its 3.13 bytecode, which
infra/functions.py packages instead of functions/ itself.

    python -m layers.function_code    # build layers/build/functions/<key> (skipped when current)

Lambda unpacks the code under /var/task, read-only, so without bytecode every new
execution environment compiles our modules from source (layers/bytecode.py). The copy
holds every file of functions/ but caches (`__pycache__`, whatever this machine's Python
wrote there, and tool caches), plus `__pycache__/*.cpython-313.pyc`.

Each build lives in a directory named by its key (the digest of every file's path and
content, the build format and the compiler), so a build never replaces a directory another
process may be packaging; builds older than 10 minutes are removed. About 50 files: a rebuild takes well
under a second, so the CDK app builds it on every synthesis that needs it, and `cdk
deploy` alone works on a fresh clone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from layers import build as layer_build
from layers import bytecode

SOURCE_DIR = layer_build.ROOT / "functions"
CODE_ROOT = layer_build.BUILD_DIR / "functions"
RUNTIME_DIR = "/var/task"
# Bump when the way the copy is assembled changes.
CODE_FORMAT = "1"
SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
PRUNE_AFTER_SECONDS = 600


@dataclass(frozen=True)
class FunctionCode:
    """A built copy of functions/: the directory to package and its key."""

    path: Path
    key: str


def source_files(source: Path = SOURCE_DIR) -> list[Path]:
    """What the asset holds of `source`, relative to it, sorted."""
    found = []
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if SKIPPED_DIRS.intersection(relative.parts):
            continue
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES:
            found.append(relative)
    return sorted(found)


def code_key(source: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    digest.update(f"{CODE_FORMAT}\n{bytecode.settings_key()}\n".encode())
    for relative in source_files(source):
        digest.update(f"{relative.as_posix()}\n".encode())
        digest.update(hashlib.sha256((source / relative).read_bytes()).digest())
    return digest.hexdigest()


def stage(source: Path, target: Path) -> None:
    """Copy `source`'s files into the new directory `target` and compile them there."""
    for relative in source_files(source):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target / relative)
    bytecode.compile_tree(target, RUNTIME_DIR)
    missing = bytecode.missing_bytecode(target)
    if missing:
        raise bytecode.BytecodeError(f"no 3.13 bytecode for {', '.join(map(str, missing[:5]))}")


def _prune(code_root: Path, keep: Path) -> None:
    """Remove other builds (and crashed stagings) once they are old enough that no synth
    that chose them can still be packaging them."""
    now = time.time()
    for old in code_root.iterdir():
        if old.is_dir() and old != keep and now - old.stat().st_mtime > PRUNE_AFTER_SECONDS:
            shutil.rmtree(old, ignore_errors=True)


def build(source: Path = SOURCE_DIR, code_root: Path = CODE_ROOT) -> FunctionCode:
    """The copy of `source` with bytecode, built when missing. LayerBuildError (what the
    CDK app reports) when there is no Python 3.13 or a module does not compile."""
    try:
        with layer_build._exclusive(code_root / ".build.lock"):
            key = code_key(source)
            target = code_root / key[:24]
            if not target.is_dir():
                staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=code_root))
                try:
                    stage(source, staging)
                    os.replace(staging, target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
            _prune(code_root, keep=target)
            return FunctionCode(target, key)
    except bytecode.BytecodeError as error:
        raise layer_build.LayerBuildError(f"function code: {error}") from None


def main() -> int:
    try:
        code = build()
    except layer_build.LayerBuildError as error:
        print(f"layers: {error}", file=sys.stderr)
        return 1
    print(f"{code.path.relative_to(layer_build.ROOT)}: {layer_build.tree_size(code.path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
