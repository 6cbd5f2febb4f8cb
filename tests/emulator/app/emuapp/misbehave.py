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
