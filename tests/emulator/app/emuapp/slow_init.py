"""A module whose import (the init phase) takes INIT_SECONDS: something to kill mid-init."""

from __future__ import annotations

import os
import time
from typing import Any

time.sleep(float(os.environ.get("INIT_SECONDS", "0")))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return {"init": "done"}
