"""Build the dependency layer of the Lambda functions: Python 3.13 on arm64, without Docker.

    python layers/build.py           # build layers/build/layer (skipped when up to date)
    python layers/build.py --lock    # re-resolve requirements.txt into layers/requirements.lock
    python layers/build.py --force   # rebuild even when up to date

pip downloads manylinux aarch64 wheels for CPython 3.13 (`--platform ... --only-binary`),
so no native code is built here and the build machine's own architecture does not matter.
The Python modules are then compiled to 3.13 bytecode by a local CPython 3.13
(layers/bytecode.py): Lambda's /opt is read-only, so without it every new execution
environment would compile them again.

Reproducible: requirements.txt pins the direct dependencies; layers/requirements.lock pins
every transitive one with its sha256, and the layer is installed from the lock alone
(`--no-deps --require-hashes`), and the bytecode is hash-based with Lambda's paths, so the
same lock and compiler give the same bytes. The lock records the digest of the requirements.txt it was
resolved from; when they differ the lock is re-resolved first. The build is cached under
layers/build/ by the digest of the lock, of these build settings and of the 3.13 compiler's
version, so a second run (or a `cdk synth`) does nothing.

boto3 and botocore are kept in the layer although the Lambda runtime ships them: the
runtime's copy changes version without notice, and the handlers are tested against the
pinned one. They cost about 25 MB of the 250 MB unzipped limit (see docs/deploy.md).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python layers/build.py`: make `layers` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import bytecode

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LOCK_FILE = ROOT / "layers" / "requirements.lock"
BUILD_DIR = ROOT / "layers" / "build"
# The layer asset: Lambda unpacks a layer under /opt, and python/ is on its sys.path.
LAYER_DIR = BUILD_DIR / "layer"
LAYER_RUNTIME_DIR = "/opt/python"
STAMP_FILE = BUILD_DIR / "layer.stamp"
MANIFEST_FILE = BUILD_DIR / "manifest.json"

PYTHON_VERSION = "3.13"
PLATFORM_ARGS = [
    "--platform",
    "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version",
    PYTHON_VERSION,
    "--implementation",
    "cp",
]
# Bump when the way the layer is assembled changes, so cached builds are not reused.
BUILD_FORMAT = "3"  # 3: 3.13 bytecode in the layer
LOCK_HEADER = "# requirements.txt sha256: "

# Lambda's limit for a function's code plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
EM_AARCH64 = 183


class LayerBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Layer:
    """A built layer: the directory to deploy (it contains python/) and its cache key."""

    path: Path
    key: str
    size_bytes: int


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def requirements_digest(requirements: Path = REQUIREMENTS) -> str:
    return sha256_text(requirements.read_text())


def lock_is_current(requirements: Path = REQUIREMENTS, lock_file: Path = LOCK_FILE) -> bool:
    if not lock_file.exists():
        return False
    lines = lock_file.read_text().splitlines()
    return bool(lines) and lines[0] == LOCK_HEADER + requirements_digest(requirements)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerBuildError(f"{' '.join(command)} failed:\n{result.stderr.strip()}")
    return result


def lock(requirements: Path = REQUIREMENTS, lock_file: Path = LOCK_FILE) -> Path:
    """Resolve requirements.txt for the Lambda platform and pin every distribution with
    the sha256 of the wheel pip chose."""
    with tempfile.TemporaryDirectory(prefix="collab-lock-") as work:
        report_path = Path(work) / "report.json"
        _pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report_path),
            *PLATFORM_ARGS,
            "-r",
            str(requirements),
        )
        report = json.loads(report_path.read_text())
    lines = []
    for item in report["install"]:
        name = item["metadata"]["name"].lower().replace("_", "-")
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={item['metadata']['version']} --hash=sha256:{digest}")
    header = [
        LOCK_HEADER + requirements_digest(requirements),
        "# Every distribution of the Lambda layer (cp313, manylinux2014_aarch64), resolved",
        "# from requirements.txt by `python layers/build.py --lock`. Do not edit by hand.",
    ]
    lock_file.write_text("\n".join(header + sorted(lines)) + "\n")
    return lock_file


def build_key(lock_file: Path = LOCK_FILE) -> str:
    """What the cached layer depends on: the pinned wheels, how they are installed, and
    the compiler of their bytecode."""
    try:
        compiler = bytecode.settings_key()
    except bytecode.BytecodeError as error:
        raise LayerBuildError(str(error)) from None
    return sha256_text("\n".join([BUILD_FORMAT, *PLATFORM_ARGS, compiler, lock_file.read_text()]))


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One build at a time across processes (a test session and a synth may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def elf_machine(path: Path) -> int | None:
    """The e_machine field of an ELF file (183 is AArch64, 62 is x86-64), None otherwise."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def shared_objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.so*") if p.is_file() and elf_machine(p) is not None)


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _strip(python_dir: Path) -> None:
    """Drop what Lambda never uses and what would make two builds differ: console scripts
    (their shebang names this machine's Python), any bytecode a wheel shipped (compiled by
    whoever built it; `_compile` writes 3.13's) and pip's record of where each wheel came
    from."""
    shutil.rmtree(python_dir / "bin", ignore_errors=True)
    for cache in list(python_dir.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for path in list(python_dir.rglob("*")):
        if path.is_file() and (path.suffix in {".pyc", ".pyo"} or path.name == "direct_url.json"):
            path.unlink()


def _compile(python_dir: Path) -> None:
    try:
        bytecode.compile_tree(python_dir, LAYER_RUNTIME_DIR)
    except bytecode.BytecodeError as error:
        raise LayerBuildError(str(error)) from None
    missing = bytecode.missing_bytecode(python_dir)
    if missing:
        names = ", ".join(str(p.relative_to(python_dir)) for p in missing[:5])
        raise LayerBuildError(f"{len(missing)} modules of the layer have no 3.13 bytecode: {names}")


def _check(python_dir: Path) -> None:
    foreign = [p for p in shared_objects(python_dir) if elf_machine(p) != EM_AARCH64]
    if foreign:
        names = ", ".join(str(p.relative_to(python_dir)) for p in foreign[:5])
        raise LayerBuildError(f"the layer holds native code for another architecture: {names}")
    size = tree_size(python_dir)
    if size >= LAMBDA_UNZIPPED_LIMIT_BYTES:
        raise LayerBuildError(f"the layer is {size / 2**20:.1f} MiB unzipped, over Lambda's 250 MB limit")


def _manifest(python_dir: Path, key: str) -> dict[str, object]:
    distributions = sorted(p.name.removesuffix(".dist-info") for p in python_dir.glob("*.dist-info"))
    return {
        "key": key,
        "python": PYTHON_VERSION,
        "platform": "manylinux2014_aarch64",
        "sizeBytes": tree_size(python_dir),
        "bytecode": {
            "compiler": f"CPython {bytecode.compiler().version}",
            "invalidationMode": bytecode.INVALIDATION_MODE,
            "files": sum(1 for _ in python_dir.rglob(f"*.{bytecode.CACHE_TAG}.pyc")),
            "sizeBytes": sum(p.stat().st_size for p in python_dir.rglob(f"*.{bytecode.CACHE_TAG}.pyc")),
        },
        "distributions": distributions,
        "sharedObjects": [str(p.relative_to(python_dir)) for p in shared_objects(python_dir)],
    }


def current_layer() -> Layer | None:
    """The cached layer if it was built from the current lock, else None."""
    if not (lock_is_current() and STAMP_FILE.exists() and (LAYER_DIR / "python").is_dir()):
        return None
    key = build_key()  # raises LayerBuildError without a Python 3.13 to compile with
    if STAMP_FILE.read_text().strip() != key:
        return None
    size = json.loads(MANIFEST_FILE.read_text())["sizeBytes"] if MANIFEST_FILE.exists() else 0
    return Layer(LAYER_DIR, key, int(size))


def build(force: bool = False) -> Layer:
    """The layer for the current requirements, built when missing or stale."""
    with _exclusive(BUILD_DIR / ".build.lock"):
        if not force and (layer := current_layer()) is not None:
            return layer
        if not lock_is_current():
            print("layers: requirements.txt changed, re-resolving layers/requirements.lock", file=sys.stderr)
            lock()
        key = build_key()
        print(f"layers: building the arm64 layer into {LAYER_DIR.relative_to(ROOT)}", file=sys.stderr)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=BUILD_DIR))
        try:
            python_dir = staging / "python"
            _pip(
                "install",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--no-compile",
                "--target",
                str(python_dir),
                *PLATFORM_ARGS,
                "-r",
                str(LOCK_FILE),
            )
            _strip(python_dir)
            _compile(python_dir)
            _check(python_dir)
            manifest = _manifest(python_dir, key)
            shutil.rmtree(LAYER_DIR, ignore_errors=True)
            os.replace(staging, LAYER_DIR)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        MANIFEST_FILE.write_text(json.dumps(manifest, indent=2) + "\n")
        STAMP_FILE.write_text(key + "\n")
        return Layer(LAYER_DIR, key, int(str(manifest["sizeBytes"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", action="store_true", help="re-resolve layers/requirements.lock and exit")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached layer is current")
    args = parser.parse_args(argv)
    try:
        if args.lock:
            print(f"wrote {lock().relative_to(ROOT)}")
            return 0
        layer = build(force=args.force)
    except LayerBuildError as error:
        print(f"layers: {error}", file=sys.stderr)
        return 1
    print(f"{layer.path.relative_to(ROOT)}: {layer.size_bytes / 2**20:.1f} MiB unzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
