"""Imported by the authorizer before PyJWT: on a stage whose tokens are HS256 (AUTH_MODE
hs256, the default), PyJWT is imported without the cryptography package.

PyJWT imports cryptography whenever it is installed, for the RSA and EC algorithms, about
45 ms of a cold environment's CPU (docs/benchmarks.md, "Cold start, second pass"). HS256 is
HMAC from the standard library, and the verifier accepts only the configured algorithm
(collab.auth.tokens), so an hs256 stage never uses it; a jwks stage (RS256) imports it as
before. A None in sys.modules makes the import raise ImportError, which PyJWT checks for.

Only inside a Lambda execution environment (LAMBDA_TASK_ROOT; the emulator sets it too and
runs the authorizer in processes of its own): a test process uses cryptography itself.
"""

from __future__ import annotations

import os
import sys

from collab.settings import AUTH_MODE

if os.environ.get("LAMBDA_TASK_ROOT") and os.environ.get(AUTH_MODE) == "hs256" and "jwt" not in sys.modules:
    sys.modules.setdefault("cryptography", None)  # type: ignore[arg-type]
