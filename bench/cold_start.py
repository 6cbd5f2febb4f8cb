"""Cold start per entry point: import time, and import plus building the runtime (not a
test: it prints, never fails).

    .venv/bin/python -m bench.cold_start                      # the working tree
    .venv/bin/python -m bench.cold_start --before e387126     # and that commit's functions/

For each Lambda entry point, in fresh interpreters, `--runs` times, median (and min):
- `importtime`: the cumulative time of `import entry.<name>` as `python -X importtime`
  reports it (PYTHONPATH=functions), the way issue 10 measured it (off Lambda);
- then, with the environment Lambda gives a traced function (LAMBDA_TASK_ROOT set, tracing
  on: Powertools' Tracer only instruments there), wall and CPU time of the import alone
  (`import`, `import CPU`) and of the import plus building the environment's dependencies
  (`+build`, `+build CPU`: `runtime.current()` for messages and disconnect,
  `_dependencies()` for connect and the authorizer: clients and settings; Redis connects on
  first use; and awscrt, which every entry point's first AWS call loads: its native module
  seeds aws-lc's entropy as it loads). Interpreter start-up is not counted;
- `no .pyc CPU`: the import plus the build again, with every module outside the standard
  library compiled from source, as on Lambda before da9d91e: the layer and the function
  asset shipped no bytecode and /opt and /var/task are read-only, so nothing is cached
  between environments (they now ship 3.13's: `--lambda-bytecode` below). Lambda's own
  standard library has its bytecode, and keeps it here too.

`--before REV` measures `git archive REV functions` the same way, with awscrt hidden from
botocore when REV's layer did not have it (requirements.txt at REV), so it imports what
that layer imported. A REV whose functions loaded awscrt only for their posts (before the
lean JSON clients) is measured without that load in `+build`, as it ran.

`--first-request` measures what the first caller of a new environment waits for, along a
connection's life, each handler in a fresh interpreter: the authorizer admits a token for
a new scene, `entry.connect` records the connection, `entry.messages` handles its first
`sync` (the room's membership and access in moto's DynamoDB, the scene in a throwaway
redis-server, the replies posted to a stand-in Management API on loopback that answers
200), then `entry.disconnect` ends it; CPU (every thread of the handler's process) and
wall time from before the import to the handler's return.
DynamoDB, Redis and the Management API answer from other processes, as on AWS (where
their round trips are longer than loopback's).

`--floor` splits messages' import and build of the working tree into the libraries it
imports, in the order it imports them (each step's CPU in fresh interpreters): where the
time goes that no change of ours removes.

`--instructions` counts instead the instructions of the import plus the build, once per
entry point and tree, under valgrind's callgrind (the interpreter's own start-up, counted
the same way, subtracted): a figure the machine's load does not move, slow to get (about
40 s per count) and only as exact as the work is deterministic (aws-lc's jitter entropy
loops on timing; under valgrind it takes more of them).

`--lambda-bytecode` measures instead what Lambda gets: Python 3.13 (layers/bytecode.py's
compiler) importing the built function code (layers/function_code.py) and the built layer
(layers/build.py), with the 3.13 bytecode they ship and from copies without it, in turn,
run by run, with PYTHONDONTWRITEBYTECODE as /var/task and /opt are read-only; with
`--before REV`, REV's function code and the working tree's instead, both with bytecode, on
the same layer. The layer's
native modules are aarch64; on another machine the distributions holding them are put in
front of the layer for this machine (same versions, pip from the registry, compiled the
same way), so only their .so files differ from what Lambda loads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

from layers import build as layer_build
from layers import bytecode, function_code

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ("messages", "disconnect", "connect", "authorizer", "http_api")
HIDE_AWSCRT = "import sys; sys.modules['awscrt'] = None; "
# What the handlers read at start-up; nothing here is contacted while building.
HANDLER_ENV = {
    "CONNECTIONS_TABLE": "bench-connections",
    "ACCESS_TABLE": "bench-access",
    "DOCUMENTS_TABLE": "bench-documents",
    "SNAPSHOT_BUCKET": "bench-snapshots",
    "REDIS_URL": "redis://127.0.0.1:1",
    "AUTH_MODE": "hs256",
    "JWT_SECRET": "bench-secret-bench-secret-bench-secret",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "collab",
}
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "POWERTOOLS_TRACE_DISABLED": "false",
}
_BUILD = {
    "messages": "from collab import runtime; runtime.current()",
    "disconnect": "from collab import runtime; runtime.current()",
    "connect": "entry.connect._dependencies()",
    "authorizer": "entry.authorizer._dependencies()",
    "http_api": "from collab import runtime, http_routes; runtime.current(); http_routes.verifier()",
}
_AWSCRT = "; import collab.management_client as m; m.load_awscrt()"


def build_code(functions: Path, entry: str) -> str:
    """The build of `entry`, with awscrt's load where the tree's first AWS call needs it."""
    every_call_signs_with_awscrt = (functions / "collab" / "aws_json.py").exists()
    return _BUILD[entry] + (_AWSCRT if every_call_signs_with_awscrt else "")


# Installed before the timed import by `no .pyc`: a path hook whose source loader never
# finds bytecode (path_stats failing makes importlib compile, and then not write) for every
# directory but the standard library's.
FROM_SOURCE = """
import sys, sysconfig
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
    ExtensionFileLoader, FileFinder, SourceFileLoader, SourcelessFileLoader)
class _FromSource(SourceFileLoader):
    def path_stats(self, path):
        raise OSError("compiled from source, as on Lambda")
_std = sysconfig.get_path("stdlib")  # the base interpreter's, also inside a venv
_cached = FileFinder.path_hook((ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES), (SourcelessFileLoader, BYTECODE_SUFFIXES))
_uncached = FileFinder.path_hook((ExtensionFileLoader, EXTENSION_SUFFIXES), (_FromSource, SOURCE_SUFFIXES))
sys.path_hooks.insert(0, lambda path: (_cached if path.startswith(_std) and "site-packages" not in path else _uncached)(path))
sys.path_importer_cache.clear()
"""
_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$")


def _python(
    functions: Path, code: str, env: dict[str, str], importtime: bool
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    full_env = {**os.environ, **HANDLER_ENV, **env, "PYTHONPATH": str(functions)}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(command, env=full_env, capture_output=True, text=True, check=True, cwd=functions)


def import_ms(functions: Path, entry: str, env: dict[str, str], prefix: str) -> float:
    done = _python(functions, f"{prefix}import entry.{entry}", env, importtime=True)
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match and match.group(2) == f"entry.{entry}":
            return int(match.group(1)) / 1000
    raise RuntimeError(f"no import time for entry.{entry}:\n{done.stderr[-2000:]}")


def from_source_cpu_ms(functions: Path, entry: str, prefix: str) -> float:
    """CPU of import plus build, traced as on Lambda, compiling what Lambda compiles."""
    code = (
        f"{prefix}{FROM_SOURCE}\nimport time; c = time.process_time(); import entry.{entry}; {build_code(functions, entry)}; "
        "print(round((time.process_time() - c) * 1000, 1))"
    )
    return float(_python(functions, code, LAMBDA_ENV, importtime=False).stdout.strip().splitlines()[-1])


def traced_ms(functions: Path, entry: str, prefix: str) -> tuple[float, float, float, float]:
    """(import wall, import CPU, import+build wall, import+build CPU), traced as on Lambda.
    CPU time counts only this interpreter's work, so it is steadier than wall time on a
    loaded machine."""
    code = (
        f"{prefix}import time; w, c = time.perf_counter(), time.process_time(); import entry.{entry}; "
        "iw, ic = time.perf_counter(), time.process_time(); "
        f"{build_code(functions, entry)}; "
        "bw, bc = time.perf_counter(), time.process_time(); "
        "print(*(round((x - y) * 1000, 1) for x, y in ((iw, w), (ic, c), (bw, w), (bc, c))))"
    )
    out = _python(functions, code, LAMBDA_ENV, importtime=False).stdout.strip().splitlines()[-1]
    import_wall, import_cpu, build_wall, build_cpu = (float(v) for v in out.split())
    return import_wall, import_cpu, build_wall, build_cpu


KINDS = ("importtime", "import", "import CPU", "+build", "+build CPU", "no .pyc CPU")


Figures = dict[str, dict[str, list[float]]]


def measure(trees: list[tuple[Path, str]], runs: int) -> list[Figures]:
    """Per tree (functions/ folder, code run first), its figures. Interleaved: each run
    measures every tree and every entry point in turn, so drifting load hits them alike."""
    figures: list[Figures] = [{e: {k: [] for k in KINDS} for e in ENTRY_POINTS} for _ in trees]
    for _ in range(runs):
        for entry in ENTRY_POINTS:
            for (functions, prefix), by_entry in zip(trees, figures, strict=True):
                by_entry[entry]["importtime"].append(import_ms(functions, entry, {}, prefix))
                for kind, value in zip(KINDS[1:-1], traced_ms(functions, entry, prefix), strict=True):
                    by_entry[entry][kind].append(value)
                by_entry[entry][KINDS[-1]].append(from_source_cpu_ms(functions, entry, prefix))
    return figures


def checkout(rev: str, into: Path) -> tuple[Path, bool]:
    """REV's functions/ in a temporary folder, and whether REV's layer had awscrt."""
    archive = subprocess.run(["git", "archive", rev, "functions"], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    requirements = subprocess.run(
        ["git", "show", f"{rev}:requirements.txt"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return into / "functions", "awscrt" in requirements


def report(title: str, figures: Figures) -> None:
    print(f"\n{title}  (ms, median / min)")
    print(f"  {'entry point':<12}" + "".join(f"{k:>15}" for k in next(iter(figures.values()))))
    for entry, by_kind in figures.items():
        cells = [f"{statistics.median(v):6.0f} /{min(v):5.0f}" for v in by_kind.values()]
        print(f"  {entry:<12}" + "".join(f"{c:>15}" for c in cells))


def _native_distributions(python_dir: Path) -> list[str]:
    """`name==version` of the layer's distributions that hold a shared object."""
    pins = []
    for dist_info in sorted(python_dir.glob("*.dist-info")):
        if any(".so" in line.split(",")[0] for line in (dist_info / "RECORD").read_text().splitlines()):
            name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
            pins.append(f"{name}=={version}")
    return pins


def _copy_without_bytecode(source: Path, into: Path) -> Path:
    shutil.copytree(source, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def lambda_paths(work: Path, before: Path | None = None) -> tuple[Path, dict[str, list[Path]]]:
    """Python 3.13, and the PYTHONPATH (function code first, as Lambda orders /var/task
    before /opt/python) with bytecode and without; or, given a `before` functions/ folder,
    that code's build and the working tree's, both with bytecode, on the same layer."""
    layer = layer_build.build().path / "python"
    code = function_code.build().path
    front: list[Path] = []
    if platform.machine() not in {"aarch64", "arm64"}:
        native = work / "native"
        arch = platform.machine()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(native),
             "--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_28_{arch}", "--only-binary=:all:",
             "--python-version", "3.13", "--implementation", "cp", *_native_distributions(layer)],
            check=True,
        )  # fmt: skip
        bytecode.compile_tree(native, layer_build.LAYER_RUNTIME_DIR)
        front = [native]
    with_pyc = [code, *front, layer]
    if before is not None:
        before_code = function_code.build(before, work / "before-code").path
        return bytecode.compiler().python, {"before": [before_code, *front, layer], "now": with_pyc}
    without = [_copy_without_bytecode(p, work / "sources" / str(i)) for i, p in enumerate(with_pyc)]
    return bytecode.compiler().python, {"bytecode": with_pyc, "no bytecode": without}


def lambda_cpu_ms(python: Path, path: list[Path], entry: str) -> tuple[float, float]:
    """(import CPU, import+build CPU) of `entry` in a fresh Python 3.13, traced as on Lambda."""
    code = (
        f"import time; c = time.process_time(); import entry.{entry}; ic = time.process_time(); "
        f"{build_code(path[0], entry)}; bc = time.process_time(); "
        "print(round((ic - c) * 1000, 1), round((bc - c) * 1000, 1))"
    )
    env = {**os.environ, **HANDLER_ENV, **LAMBDA_ENV, "PYTHONPATH": ":".join(map(str, path))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONHOME", None)
    done = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, check=True, cwd=path[0]
    )
    import_cpu, build_cpu = (float(v) for v in done.stdout.strip().splitlines()[-1].split())
    return import_cpu, build_cpu


# The first invocation, timed from before the import to the handler's return (CPU of every
# thread: a load left running on a thread of its own is counted while it runs).
FIRST_REQUEST = """
import json, sys, time
class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench-request"
event = json.loads(sys.argv[1])
c, w = time.process_time(), time.perf_counter()
import entry.{entry} as handler
ic, iw = time.process_time(), time.perf_counter()
answer = handler.lambda_handler(event, Context())
fc, fw = time.process_time(), time.perf_counter()
assert "{entry}" != "authorizer" or answer["policyDocument"]["Statement"][0]["Effect"] == "Allow", answer
print(json.dumps([round((x - y) * 1000, 1) for x, y in ((ic, c), (iw, w), (fc, c), (fw, w))]))
"""
FIRST_KINDS = ("import CPU", "import wall", "+first CPU", "+first wall")
FIRST_ENTRIES = ("authorizer", "connect", "messages", "disconnect")


class _ManagementApi(ThreadingHTTPServer):
    """Answers every post and delete with 200 on a kept-alive connection, counting them."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        self.posts = 0
        self._count = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._count:
                    server.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_DELETE = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@contextmanager
def _local_stack() -> Iterator[tuple[dict[str, str], _ManagementApi, object]]:
    """redis-server, moto with the tables and the bucket, the stand-in Management API; the
    handlers' environment for them, and a SceneAccess to grant roles with."""
    from devstack import services

    redis = services.start_redis()
    moto = services.start_moto()
    api = _ManagementApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        prefix = f"cold{uuid.uuid4().hex[:8]}"
        aws = services.aws_endpoint_env(moto.url)
        env = {
            **aws,
            **services.create_tables(moto.url, prefix),
            "SNAPSHOT_BUCKET": f"{prefix}-snapshots",
            "REDIS_URL": redis.url,
            "MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{api.server_address[1]}/local",
        }
        services.create_bucket(moto.url, env["SNAPSHOT_BUCKET"])
        os.environ.update(aws)
        sys.path.insert(0, str(ROOT / "functions"))
        from collab.access import SceneAccess

        yield env, api, SceneAccess(env["ACCESS_TABLE"])
    finally:
        api.shutdown()
        moto.stop()
        redis.stop()


def _event(scene: str, connection: str, route: str, body: str | None) -> dict[str, object]:
    context = {
        "connectionId": connection,
        "routeKey": route,
        "requestId": uuid.uuid4().hex,
        "domainName": "local",
        "stage": "local",
        "connectedAt": int(time.time() * 1000),
        "authorizer": {
            "sceneId": scene,
            "userId": "ada",
            "userName": "Ada",
            "role": "editor",
            "exp": int(time.time()) + 3600,
        },
    }
    return {"requestContext": context, "body": body}


def _authorizer_event(scene: str) -> dict[str, object]:
    import jwt

    now = int(time.time())
    token = jwt.encode(
        {"sub": "ada", "iat": now, "exp": now + 3600}, HANDLER_ENV["JWT_SECRET"], algorithm="HS256"
    )
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/local/$connect",
        "queryStringParameters": {"sceneId": scene, "token": token},
        "requestContext": {"routeKey": "$connect", "requestId": uuid.uuid4().hex},
    }


SYNC_FROM_NOTHING = json.dumps({"action": "sync", "data": "AAABAA=="})  # SyncStep1, empty state vector


def first_request(trees: list[tuple[Path, str]], runs: int) -> list[Figures]:
    figures: list[Figures] = [{e: {k: [] for k in FIRST_KINDS} for e in FIRST_ENTRIES} for _ in trees]
    with _local_stack() as (env, api, access):
        for _ in range(runs):
            for (functions, prefix), by_entry in zip(trees, figures, strict=True):
                scene, connection = f"cold-{uuid.uuid4().hex[:10]}", f"c{uuid.uuid4().hex[:10]}="
                access.grant(scene, "ada", "editor")  # type: ignore[attr-defined]
                # A connection's life, each handler in a new environment: the authorizer's
                # verdict, $connect's row, the first sync, $disconnect.
                for entry, route, body in (
                    ("authorizer", "", None),
                    ("connect", "$connect", None),
                    ("messages", "sync", SYNC_FROM_NOTHING),
                    ("disconnect", "$disconnect", None),
                ):
                    posts = api.posts
                    code = prefix + FIRST_REQUEST.format(entry=entry)
                    event = json.dumps(
                        _authorizer_event(scene)
                        if entry == "authorizer"
                        else _event(scene, connection, route, body)
                    )
                    full_env = {
                        **os.environ,
                        **HANDLER_ENV,
                        **LAMBDA_ENV,
                        **env,
                        "PYTHONPATH": str(functions),
                    }
                    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
                    done = subprocess.run(
                        [sys.executable, "-c", code, event],
                        env=full_env,
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=functions,
                    )
                    values = json.loads(done.stdout.strip().splitlines()[-1])
                    if entry == "messages" and api.posts - posts < 3:  # connected, step 2, step 1
                        raise RuntimeError(
                            f"the sync posted {api.posts - posts} replies:\n{done.stdout[-3000:]}"
                        )
                    for kind, value in zip(FIRST_KINDS, values, strict=True):
                        by_entry[entry][kind].append(value)
    return figures


# messages' imports, library by library, in the order entry.messages reaches them.
FLOOR_STEPS = (
    ("the standard library's basics", "import typing, re, logging, json, dataclasses, inspect"),
    ("botocore.exceptions (the error classes)", "import botocore.exceptions"),
    ("awscrt (aws-lc's entropy, auth, http, io)", "import awscrt.auth, awscrt.http, awscrt.io"),
    ("Powertools Logger, Metrics, Tracer", "from aws_lambda_powertools import Logger, Metrics, Tracer"),
    (
        "the first DynamoDB client (collab.aws_json)",
        "from collab import aws_clients; aws_clients.json_client('dynamodb')",
    ),
    ("redis (collab.cache)", "import collab.cache"),
    ("pycrdt and anyio", "import pycrdt"),
    ("our modules (entry.messages)", "import entry.messages"),
    ("the rest of the build", "from collab import runtime; runtime.current()"),
)


def floor(runs: int) -> None:
    code = "import json, time\nout = []\n"
    for _, step in FLOOR_STEPS:
        code += f"c = time.process_time()\n{step}\nout.append((time.process_time() - c) * 1000)\n"
    code += "print(json.dumps(out))"
    steps: list[list[float]] = [[] for _ in FLOOR_STEPS]
    for _ in range(runs):
        done = _python(ROOT / "functions", code, LAMBDA_ENV, importtime=False)
        for values, value in zip(steps, json.loads(done.stdout.strip().splitlines()[-1]), strict=True):
            values.append(value)
    print(f"\nmessages' import and build, step by step  (CPU ms, median / min of {runs})")
    for (name, _), values in zip(FLOOR_STEPS, steps, strict=True):
        print(f"  {statistics.median(values):6.0f} /{min(values):5.0f}  {name}")
    totals = [sum(run) for run in zip(*steps, strict=True)]
    print(f"  {statistics.median(totals):6.0f} /{min(totals):5.0f}  in all")


_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _instructions(functions: Path, code: str, prefix: str) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        prefix + code,
    ]
    full_env = {**os.environ, **HANDLER_ENV, **LAMBDA_ENV, "PYTHONPATH": str(functions)}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(command, env=full_env, capture_output=True, text=True, check=True, cwd=functions)
    match = _REFS.search(done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def instructions(trees: list[tuple[Path, str]]) -> list[Figures]:
    """Millions of instructions of import plus build (the `+build` columns' work)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    figures: list[Figures] = [{e: {"+build Minstr": []} for e in ENTRY_POINTS} for _ in trees]
    for (functions, prefix), by_entry in zip(trees, figures, strict=True):
        start = _instructions(functions, "import time", prefix)
        for entry in ENTRY_POINTS:
            work = _instructions(
                functions, f"import time, entry.{entry}; {build_code(functions, entry)}", prefix
            )
            by_entry[entry]["+build Minstr"].append((work - start) / 1e6)
    return figures


def lambda_bytecode(runs: int, before_rev: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="cold-start-313-") as work:
        before = checkout(before_rev, Path(work) / "before")[0] if before_rev else None
        python, paths = lambda_paths(Path(work), before)
        # kind -> entry point -> (import CPU, import+build CPU) of each run
        figures: dict[str, dict[str, tuple[list[float], list[float]]]] = {
            k: {e: ([], []) for e in ENTRY_POINTS} for k in paths
        }
        for _ in range(runs):
            for entry in ENTRY_POINTS:
                for kind, path in paths.items():
                    import_cpu, build_cpu = lambda_cpu_ms(python, path, entry)
                    figures[kind][entry][0].append(import_cpu)
                    figures[kind][entry][1].append(build_cpu)
    what = f"{before_rev}'s and the working tree's function code" if before_rev else "the built function code"
    print(f"\n{python}: {what} and layer  (CPU ms, median / min of {runs})")
    heads = [f"{what} {kind}" for kind in paths for what in ("import", "+build")]
    print(f"  {'entry point':<12}" + "".join(f"{h:>24}" for h in heads))
    for entry in ENTRY_POINTS:
        cells = [
            f"{statistics.median(values):6.0f} /{min(values):5.0f}"
            for kind in paths
            for values in figures[kind][entry]
        ]
        print(f"  {entry:<12}" + "".join(f"{c:>24}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", metavar="REV", help="also measure this commit's functions/")
    parser.add_argument(
        "--first-request",
        action="store_true",
        help="import plus the first invocation (messages: a sync; disconnect) on a local stack",
    )
    parser.add_argument("--floor", action="store_true", help="messages' import and build, library by library")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instructions of import plus build, under valgrind (once per entry point; slow)",
    )
    parser.add_argument(
        "--lambda-bytecode",
        action="store_true",
        help="Python 3.13 on the built code and layer, with and without their bytecode",
    )
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {os.getloadavg()}")
    if args.floor:
        floor(args.runs)
        print(f"\nload average after: {os.getloadavg()}")
        return 0
    if args.lambda_bytecode:
        lambda_bytecode(args.runs, args.before)
        print(f"\nload average after: {os.getloadavg()}")
        return 0
    with tempfile.TemporaryDirectory(prefix="cold-start-") as work:
        trees: list[tuple[Path, str]] = []
        titles: list[str] = []
        if args.before:
            functions, had_awscrt = checkout(args.before, Path(work))
            trees.append((functions, "" if had_awscrt else HIDE_AWSCRT))
            titles.append(
                f"before: {args.before}" + ("" if had_awscrt else " (awscrt hidden: its layer had none)")
            )
        trees.append((ROOT / "functions", ""))
        titles.append("now: the working tree")
        if args.instructions:
            results = instructions(trees)
        elif args.first_request:
            results = first_request(trees, args.runs)
        else:
            results = measure(trees, args.runs)
        for title, figures in zip(titles, results, strict=True):
            report(title, figures)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
