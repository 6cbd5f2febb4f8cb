"""Imported first by the functions that never post to the Management API ($connect and the
authorizer), to keep awscrt out of their cold start.

botocore imports awscrt whenever it is installed, only to sign with it when present.
awscrt's native module seeds aws-lc's CPU-jitter entropy source as it loads, about 40 ms of
CPU once per process (docs/benchmarks.md, "Cold start"), which buys these two functions
nothing: their AWS calls (DynamoDB, SSM, Secrets Manager) are signed by botocore's own
SigV4 signer instead, as on any machine without awscrt (botocore.compat.HAS_CRT is False).
A None in sys.modules is Python's documented way to make an import raise ImportError,
which is what botocore checks for.

Only inside a Lambda execution environment (LAMBDA_TASK_ROOT; the local emulator sets it
too, and runs each function in its own processes): a test process imports the outbox,
which needs awscrt, beside these entry points.
"""

from __future__ import annotations

import os
import sys

if os.environ.get("LAMBDA_TASK_ROOT") and "awscrt" not in sys.modules:
    sys.modules["awscrt"] = None  # type: ignore[assignment]
