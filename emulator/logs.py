"""One structured JSON line per invocation, on the `emulator` logger (stderr by default)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.environments import Outcome

logger = logging.getLogger("emulator")


def ensure_stderr_handler() -> None:
    """Route the emulator's lines to stderr, unless the caller configured logging (a test
    runner's log capture, an application's handlers): then they go where its lines go."""
    if not (logging.getLogger().handlers or logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def log_json(**fields: Any) -> None:
    logger.info(json.dumps({k: v for k, v in fields.items() if v is not None}, default=str))


def log_invocation(
    route: str, function: str, event: Mapping[str, Any], outcome: Outcome, **extra: Any
) -> None:
    """One line per invocation. awsRequestId is the handler's context.aws_request_id (what
    its own log lines carry); gatewayRequestId is the one API Gateway error messages show."""
    error = outcome.error or {}
    log_json(
        event="invocation",
        route=route,
        function=function,
        awsRequestId=outcome.request_id,
        gatewayRequestId=event["requestContext"]["requestId"],
        status=outcome.status,
        duration_ms=round(outcome.duration_ms, 1),
        environment=outcome.environment,
        cold_start=outcome.cold_start,
        init_ms=None if outcome.init_ms is None else round(outcome.init_ms, 1),
        # Lambda's REPORT line: "Memory Size" and "Max Memory Used".
        memory_size_mb=outcome.memory_mb,
        max_memory_used_mb=outcome.max_memory_used_mb,
        error=f"{error.get('errorType')}: {error.get('errorMessage')}" if error else None,
        **extra,
    )
