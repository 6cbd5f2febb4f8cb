"""Imported first by every entry point, before anything imports botocore: botocore is
imported with awscrt hidden, so it never loads awscrt nor signs with it.

botocore imports awscrt whenever it is installed, only to sign with it when present.
awscrt's native module seeds aws-lc's CPU-jitter entropy source as it loads, 40-70 ms of
CPU once per process (docs/benchmarks.md, "Cold start"), which buys the handlers' AWS
calls nothing: DynamoDB, S3, SSM and Secrets Manager are signed by botocore's own SigV4
signer instead, as on any machine without awscrt (botocore.compat.HAS_CRT is False; only
SigV4a, which none of them uses, needs the CRT). A None in sys.modules is Python's
documented way to make an import raise ImportError, which is what botocore checks for.

Hidden only while botocore.compat is imported: collab.management_client imports awscrt
itself for the fan-out, when the first post needs it, so $connect and the authorizer,
which never post, never load it, a $disconnect only once it posts, and messages after its
runtime is built (entry.messages starts that load as its first invocation begins).

Only inside a Lambda execution environment (LAMBDA_TASK_ROOT; the local emulator sets it
too, and runs each function in its own processes): a test process keeps botocore as it
comes.
"""

from __future__ import annotations

import os
import sys

if (
    os.environ.get("LAMBDA_TASK_ROOT")
    and "awscrt" not in sys.modules
    and "botocore.compat" not in sys.modules
):
    sys.modules["awscrt"] = None  # type: ignore[assignment]
    try:
        import botocore.compat  # noqa: F401  (reads HAS_CRT now, once per process)
    finally:
        del sys.modules["awscrt"]
