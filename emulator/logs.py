"""One structured JSON line per invocation, on the `emulator` logger (stderr by default)."""

from __future__ import annotations

import json
import logging
from typing import Any

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
