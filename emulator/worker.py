"""The inside of one execution environment: a spawned process that imports a handler once
(Lambda's init phase) and then serves one invocation at a time, keeping module state warm.

Nothing here runs in the emulator's own process. Messages on the pipe:
  parent -> worker: (event_json, request_id, deadline_epoch_s) or None to stop
  worker -> parent: ("ready", init_ms) | ("init_error", error) once, then per invocation
                    ("started",) as soon as it has the event, then
                    ("result", result_json) | ("error", error)
"started" tells the emulator the invocation was handed over: an environment that dies
before it (killed while idle) never ran it, and the emulator gives it to a fresh one.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

# Variables a handler may legitimately need from the host; everything else it sees is
# the configured env plus what Lambda itself sets.
HOST_VARIABLES = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class WorkerSpec:
    function_name: str
    handler: str
    code_dir: str
    env: dict[str, str]
    memory_mb: int
    timeout: float
    region: str
    account_id: str
    environment_id: str
    # "module" or "module:function" to import (and call) before the handler, in the init
    # phase: test instrumentation (devstack/faults.py); AWS has no such thing.
    preload: tuple[str, ...] = ()
    enforce_memory: bool = True


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers use."""

    def __init__(self, spec: WorkerSpec, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{spec.region}:{spec.account_id}:function:{spec.function_name}"
        )
        # The Python runtime hands this over as a string (it reads it from the environment).
        self.memory_limit_in_mb = str(spec.memory_mb)
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = lambda_log_stream(spec)
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def lambda_log_stream(spec: WorkerSpec) -> str:
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{spec.environment_id}"


def lambda_variables(spec: WorkerSpec) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": lambda_log_stream(spec),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "LAMBDA_TASK_ROOT": spec.code_dir,
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        # Lambda has no ~/.aws; never let a handler pick up a developer's real profile.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of the spawned process."""
    _enter_environment(spec)
    started = time.perf_counter()
    try:
        for hook in spec.preload:
            _run_preload(hook)
        handler = _load_handler(spec.handler)
    except Exception as exc:
        traceback.print_exc()
        conn.send(("init_error", error_payload(exc, "Runtime.ImportModuleError")))
        return
    _exit_with_parent()
    if spec.enforce_memory:
        _cap_address_space(spec.memory_mb)
    conn.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        conn.send(("started",))
        event_json, request_id, deadline = message
        reply = _invoke(handler, json.loads(event_json), LambdaContext(spec, request_id, deadline))
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(reply)


def _enter_environment(spec: WorkerSpec) -> None:
    # Ctrl-C reaches the whole process group; the emulator, not each worker, handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    host = {name: os.environ[name] for name in HOST_VARIABLES if name in os.environ}
    os.environ.clear()
    os.environ.update(host)
    os.environ.update(lambda_variables(spec))
    os.environ.update(spec.env)
    code_dir = os.path.abspath(spec.code_dir)
    # Relative entries ('' for the current directory) would change meaning at the chdir
    # below; the emulator's own modules (preload hooks) must stay importable.
    sys.path[:] = [os.path.abspath(entry) for entry in sys.path]
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)  # Lambda's working directory is the code dir (/var/task)
    # Handler logs must reach the emulator's output promptly, as CloudWatch gets them.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def _run_preload(hook: str) -> None:
    module_name, _, func_name = hook.partition(":")
    module = importlib.import_module(module_name)
    if func_name:
        getattr(module, func_name)()


def _cap_address_space(memory_mb: int) -> None:
    """A ceiling on address space far above the memory setting (emulator/memory.py says
    why it is not the setting itself): one absurd allocation fails at once with
    MemoryError instead of taking the machine's memory before the guard sees it."""
    try:
        import resource
    except ImportError:  # not on this platform; the setting is not enforced there either
        return
    from emulator.memory import ADDRESS_SPACE_HEADROOM, MIB, mapped_bytes

    mapped = mapped_bytes(os.getpid())
    if mapped is None:
        return
    ceiling = mapped + memory_mb * MIB + ADDRESS_SPACE_HEADROOM
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, func_name = handler.rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    func = getattr(module, func_name, None)
    if not callable(func):
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_name}'")
    return func


def _invoke(
    handler: Callable[[Any, LambdaContext], Any], event: Any, context: LambdaContext
) -> tuple[str, Any]:
    try:
        result = handler(event, context)
    except Exception as exc:
        # Lambda logs the error and returns it to the caller (here: API Gateway), as one
        # log event. `Unauthorized` is how an authorizer refuses a connection (the 401
        # API Gateway answers): a routine outcome, so one line without the traceback; the
        # authorizer logs its reason itself.
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        if str(exc) != "Unauthorized":
            traceback.print_exc()
        return ("error", error_payload(exc))
    try:
        return ("result", json.dumps(result, default=_json_default))
    except (TypeError, ValueError) as exc:
        return ("error", error_payload(exc, "Runtime.MarshalError"))


def _json_default(value: Any) -> Any:
    # The Python runtime serializes Decimal (what boto3's DynamoDB resource returns).
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _exit_with_parent() -> None:
    """A worker whose emulator died (SIGKILL, crash) must not linger as an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
