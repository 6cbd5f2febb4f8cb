"""Execution environments on their own: what a handler's process looks like, and how
timeouts, crashes, unserializable results and import errors come out."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from emulator import run_in_thread
from emulator.config import FunctionSpec
from emulator.environments import Lambdas, Outcome
from tests.emulator.support import APP_DIR, app_config, open_ws, recv_json, send_json

FUNCTIONS = {
    "env": FunctionSpec("env", "emuapp.misbehave.environment_handler", timeout=5, memory_mb=256),
    "slow": FunctionSpec("slow", "emuapp.misbehave.sleep_handler", timeout=0.5),
    "exits": FunctionSpec("exits", "emuapp.misbehave.exit_handler"),
    "unserializable": FunctionSpec("unserializable", "emuapp.misbehave.unserializable_handler"),
    "missing": FunctionSpec("missing", "emuapp.nowhere.lambda_handler"),
}


def invoke_all(calls: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
    async def scenario() -> list[Outcome]:
        lambdas = Lambdas(FUNCTIONS, APP_DIR, {"APP_SETTING": "yes"}, 2, "eu-west-1", "111122223333")
        try:
            return [await lambdas.invoke(name, event) for name, event in calls]
        finally:
            lambdas.stop()

    return asyncio.run(scenario())


def test_handler_sees_lambdas_environment_not_the_hosts() -> None:
    os.environ["EMULATOR_HOST_ONLY"] = "leak"
    try:
        (outcome,) = invoke_all([("env", {})])
    finally:
        del os.environ["EMULATOR_HOST_ONLY"]
    assert outcome.ok and outcome.cold_start
    environ = outcome.result["environ"]
    assert environ["APP_SETTING"] == "yes"
    assert "EMULATOR_HOST_ONLY" not in environ
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environ["AWS_REGION"] == "eu-west-1"
    assert environ["LAMBDA_TASK_ROOT"] == str(APP_DIR.resolve())
    assert outcome.result["cwd"] == str(APP_DIR.resolve())
    assert outcome.result["path0"] == str(APP_DIR.resolve())
    context = outcome.result["context"]
    assert context["aws_request_id"] == outcome.request_id
    assert context["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:env"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"
    assert context["log_group_name"] == "/aws/lambda/env"
    assert 4000 < context["remaining"] <= 5000


def test_timeout_stops_the_environment_and_the_next_call_starts_fresh() -> None:
    timed_out, again = invoke_all([("slow", {"seconds": 5}), ("slow", {"seconds": 0})])
    assert timed_out.status == "timeout"
    assert timed_out.error is not None and "timed out" in timed_out.error["errorMessage"]
    assert again.ok and again.cold_start and again.environment != timed_out.environment


def test_crash_unserializable_result_and_import_error() -> None:
    exits, unserializable, missing = invoke_all([("exits", {}), ("unserializable", {}), ("missing", {})])
    assert exits.status == "crash"
    assert unserializable.status == "error"
    assert unserializable.error is not None and unserializable.error["errorType"] == "Runtime.MarshalError"
    assert missing.status == "init_error"
    assert missing.error is not None and missing.error["errorType"] == "Runtime.ImportModuleError"


def test_prewarm_starts_one_environment_per_function_and_the_first_message_uses_it(tmp_path: Path) -> None:
    with run_in_thread(app_config(tmp_path, max_environments=2)) as emu:
        functions = {"authorizer", "connect", "disconnect", "messages", "fallback"}
        assert emu.lambdas.prewarm() == dict.fromkeys(functions, True)
        warm = {env.function: env.pid for env in emu.lambdas.environments()}
        assert set(warm) == functions and not any(env.busy for env in emu.lambdas.environments())
        emu.lambdas.prewarm()  # already warm: nothing more starts
        assert len(emu.lambdas.environments()) == len(functions)
        with open_ws(emu.ws_url) as ws:
            send_json(ws, {"action": "count"})
            # The first invocation of the environment started ahead of traffic.
            assert recv_json(ws) == {"count": 1, "pid": warm["messages"], "env": "messages"}
