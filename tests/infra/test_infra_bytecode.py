"""Lambda gets Python 3.13 bytecode with the code and the layer (layers/bytecode.py): the
synthesized function asset holds `__pycache__/*.cpython-313.pyc` for every module, the
layer build compiles the layer, a real 3.13 loads those files instead of compiling the
sources, and two compilations of the same sources give the same bytes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from infratest import Synthesized

from infra.specs import load_routes
from layers import build as layer_build
from layers import bytecode, function_code

ROUTES = load_routes()
# The pyc header's flags word: bit 0 hash-based, bit 1 check the source. 1 = unchecked hash.
UNCHECKED_HASH = 1


def pyc_flags(pyc: Path) -> int:
    return int.from_bytes(pyc.read_bytes()[4:8], "little")


def code_asset(synthesized: Synthesized, name: str) -> Path:
    """The staged directory of a function's code asset in the cloud assembly."""
    code = synthesized.resources[synthesized.function_id(name)]["Properties"]["Code"]
    asset = synthesized.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"
    assert asset.is_dir(), asset
    return asset


def foreign_bytecode(root: Path) -> list[Path]:
    """Bytecode under `root` that Lambda's 3.13 would not load (another version's)."""
    return [p for p in root.rglob("*.pyc") if not p.name.endswith(f".{bytecode.CACHE_TAG}.pyc")]


def run_313(code: str, *path: Path) -> str:
    """Run `code` in the 3.13 compiler with `path` as PYTHONPATH; its stdout."""
    done = subprocess.run(
        [str(bytecode.compiler().python), "-c", code],
        env={"PYTHONPATH": ":".join(map(str, path)), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# In 3.13: import `modules`, and print the source files importlib compiled on the way
# (source_to_code is what SourceFileLoader calls when it found no usable bytecode).
COUNT_COMPILED = """
import importlib, sys
from importlib.machinery import SourceFileLoader
compiled = []
original = SourceFileLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return original(self, data, path, _optimize=_optimize)
SourceFileLoader.source_to_code = source_to_code
for name in sys.argv[1:] or {modules!r}:
    importlib.import_module(name)
print("\\n".join(p for p in compiled if p.startswith({root!r})))
print("loaded", {root!r}, sum(1 for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith({root!r})))
"""


def test_every_function_asset_holds_313_bytecode_for_its_entry_module(synthesized: Synthesized) -> None:
    for name, spec in ROUTES.functions.items():
        asset = code_asset(synthesized, name)
        module = spec.handler.rpartition(".")[0]
        source = asset / (module.replace(".", "/") + ".py")
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert pyc.is_file(), (name, pyc)
        assert pyc_flags(pyc) == UNCHECKED_HASH
        assert bytecode.missing_bytecode(asset) == []
        assert foreign_bytecode(asset) == []
        # The sources stay (tracebacks show their lines), and nothing else of functions/ is lost.
        assert function_code.source_files(asset) == function_code.source_files()


def compiled_from_source(root: Path, modules: list[str]) -> tuple[list[str], int]:
    """In the 3.13 compiler, with `root` on the path: the files under `root` it compiled
    from source while importing `modules`, and how many modules it loaded from there."""
    out = run_313(COUNT_COMPILED.format(modules=modules, root=str(root)), root).splitlines()
    assert out[-1].startswith("loaded"), out
    return [line for line in out[:-1] if line], int(out[-1].split()[-1])


# Modules of ours that import only the standard library: the layer's native modules are
# aarch64, and this machine may not be.
STDLIB_ONLY = ["collab.settings", "collab.errors", "entry"]


def test_python_313_loads_the_function_bytecode_without_compiling(dev: Synthesized, tmp_path: Path) -> None:
    asset = code_asset(dev, "messages").resolve()
    compiled, loaded = compiled_from_source(asset, STDLIB_ONLY)
    assert loaded >= len(STDLIB_ONLY)
    assert compiled == []
    # The same sources without their bytecode are compiled: what Lambda did before.
    sources = tmp_path / "sources"
    for relative in function_code.source_files(asset):
        (sources / relative).parent.mkdir(parents=True, exist_ok=True)
        (sources / relative).write_bytes((asset / relative).read_bytes())
    compiled, loaded = compiled_from_source(sources, STDLIB_ONLY)
    assert len(compiled) == loaded >= len(STDLIB_ONLY)


def test_the_layer_is_compiled_for_313_with_lambdas_paths(layer: layer_build.Layer) -> None:
    python_dir = layer.path / "python"
    assert bytecode.missing_bytecode(python_dir) == []
    assert foreign_bytecode(python_dir) == []
    pyc = bytecode.pyc_of(python_dir / "botocore" / "client.py")
    assert pyc_flags(pyc) == UNCHECKED_HASH
    filename = run_313(
        f"import marshal; print(marshal.loads(open({str(pyc)!r}, 'rb').read()[16:]).co_filename)"
    )
    assert filename.strip() == "/opt/python/botocore/client.py"
    compiled, loaded = compiled_from_source(python_dir, ["jmespath", "dateutil.parser", "botocore.session"])
    assert loaded > 50
    assert compiled == []


def test_compiling_the_same_sources_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    trees = []
    for copy in ("one", "two"):
        source = tmp_path / copy / "src"
        (source / "pkg").mkdir(parents=True)
        (source / "pkg" / "__init__.py").write_text("from pkg.mod import greet\n")
        (source / "pkg" / "mod.py").write_text("def greet(name):\n    return f'hello {name}'\n")
        (source / "routes.json").write_text("{}\n")
        target = tmp_path / copy / "out"
        target.mkdir()
        function_code.stage(source, target)
        trees.append(target)
    files = {p.relative_to(trees[0]) for p in trees[0].rglob("*") if p.is_file()}
    assert files == {
        Path("routes.json"),
        Path("pkg/__init__.py"),
        Path("pkg/mod.py"),
        Path("pkg/__pycache__/__init__.cpython-313.pyc"),
        Path("pkg/__pycache__/mod.cpython-313.pyc"),
    }
    for relative in files:
        assert (trees[0] / relative).read_bytes() == (trees[1] / relative).read_bytes(), relative
    # Each code object names the file where Lambda unpacks it, not this build's directory.
    pyc = trees[0] / "pkg/__pycache__/mod.cpython-313.pyc"
    filename = run_313(
        f"import marshal; print(marshal.loads(open({str(pyc)!r}, 'rb').read()[16:]).co_filename)"
    )
    assert filename.strip() == "/var/task/pkg/mod.py"


def test_the_function_code_build_is_reused_and_follows_the_sources(tmp_path: Path) -> None:
    source = tmp_path / "functions"
    (source / "entry").mkdir(parents=True)
    (source / "entry" / "__init__.py").write_text("")
    (source / "entry" / "messages.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    root = tmp_path / "built"
    first = function_code.build(source, root)
    assert function_code.build(source, root) == first
    (source / "entry" / "messages.py").write_text("def lambda_handler(event, context):\n    return 2\n")
    second = function_code.build(source, root)
    assert second.path != first.path
    assert (second.path / "entry" / "messages.py").read_text().endswith("return 2\n")
    assert bytecode.pyc_of(second.path / "entry" / "messages.py").is_file()


@pytest.fixture
def no_cached_compiler() -> Iterator[None]:
    bytecode.compiler.cache_clear()
    yield
    bytecode.compiler.cache_clear()


def test_without_python_313_the_build_says_how_to_get_one(
    no_cached_compiler: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(bytecode.PYTHON_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(layer_build.LayerBuildError, match=r"pyenv install 3\.13"):
        layer_build.build_key()
    # A named program that is not a CPython 3.13 is refused, not used.
    monkeypatch.setenv(bytecode.PYTHON_ENV, "/bin/true")
    with pytest.raises(bytecode.BytecodeError, match=f"{bytecode.PYTHON_ENV}=.* is not a CPython 3.13"):
        bytecode.compiler()
