"""The dependency layer: aarch64 wheels for CPython 3.13, built from the lock, under
Lambda's 250 MB unzipped limit (together with the function code), cached by the lock."""

from __future__ import annotations

import json
import re

from layers import build as layer_build
from layers import function_code

# e_machine of ELF files: what the Graviton Lambda runtime loads.
EM_AARCH64 = 183


def test_the_lock_is_resolved_from_the_current_requirements() -> None:
    assert layer_build.lock_is_current(), "requirements.txt changed: run `python layers/build.py --lock`"
    pins = dict(
        line.split("==") for line in layer_build.REQUIREMENTS.read_text().splitlines() if "==" in line
    )
    lock = layer_build.LOCK_FILE.read_text()
    for name, version in pins.items():
        project = re.sub(r"\[.*\]", "", name).lower().replace("_", "-")
        assert f"\n{project}=={version.strip()} --hash=sha256:" in lock, project


def test_native_wheels_of_pycrdt_and_cryptography_are_aarch64(layer: layer_build.Layer) -> None:
    python_dir = layer.path / "python"
    shared = layer_build.shared_objects(python_dir)
    for package in ("pycrdt", "cryptography"):
        ours = [p for p in shared if p.relative_to(python_dir).parts[0] == package]
        assert ours, f"no native module of {package}"
    assert {layer_build.elf_machine(p) for p in shared} == {EM_AARCH64}
    assert not list(python_dir.rglob("*x86_64*.so"))


def test_layer_and_code_fit_lambdas_unzipped_limit(layer: layer_build.Layer) -> None:
    code = layer_build.tree_size(function_code.build().path)
    total = layer_build.tree_size(layer.path) + code
    assert total < layer_build.LAMBDA_UNZIPPED_LIMIT_BYTES
    manifest = json.loads(layer_build.MANIFEST_FILE.read_text())
    assert manifest["sizeBytes"] == layer_build.tree_size(layer.path / "python")
    assert any(d.startswith("boto3-") for d in manifest["distributions"])


def test_a_current_layer_is_reused_not_rebuilt(layer: layer_build.Layer) -> None:
    stamp = layer_build.STAMP_FILE.stat().st_mtime_ns
    again = layer_build.build()
    assert again.key == layer.key
    assert layer_build.STAMP_FILE.stat().st_mtime_ns == stamp


def test_the_layer_holds_nothing_machine_specific(layer: layer_build.Layer) -> None:
    python_dir = layer.path / "python"
    assert not (python_dir / "bin").exists()
    # Bytecode only for Lambda's 3.13 (layers/bytecode.py), none of this machine's Python.
    assert {p.name.split(".")[-2] for p in python_dir.rglob("*.pyc")} == {"cpython-313"}
    assert not list(python_dir.rglob("direct_url.json"))
