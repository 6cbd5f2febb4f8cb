"""Handlers that misbehave the ways Lambda functions do, and one that reports its environment."""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def sleep_handler(event: dict[str, Any], context: Any) -> None:
    time.sleep(float(event.get("seconds", 30)))


def exit_handler(event: dict[str, Any], context: Any) -> None:
    os._exit(3)


def unserializable_handler(event: dict[str, Any], context: Any) -> object:
    return object()


def environment_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }


MIB = 1024 * 1024


def allocate_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Touch `mb` MB (bytes filled with non-zero, so every page is resident) and hold it."""
    held = [b"\x01" * MIB for _ in range(int(event["mb"]))]
    return {"allocated_mb": len(held)}


def reserve_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Ask for `gib` GiB in one allocation without touching it (address space, not memory)."""
    block = bytearray(int(event["gib"]) * 1024 * MIB)
    return {"reserved": len(block)}


def act_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One handler for every way an invocation can end, chosen by the event's `do`:
    ok, hold (record RECORD_DIR/hold-NAME.json with the pid, then wait for go-NAME),
    exit (os._exit(3)), allocate (MB touched)."""
    from emuapp.record import record, wait_for_file

    do = event.get("do", "ok")
    if do == "hold":
        record(f"hold-{event['name']}", {"pid": os.getpid()})
        wait_for_file(f"go-{event['name']}", timeout=120)
    elif do == "exit":
        os._exit(3)
    elif do == "allocate":
        return allocate_handler(event, context)
    return {"did": do, "pid": os.getpid()}
