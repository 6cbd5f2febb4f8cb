"""Whether Lambda is initialising this environment ahead of any request.

With provisioned concurrency, Lambda runs the init phase before traffic arrives, so what
init builds costs no caller anything: those environments build their clients and settings
while importing, not on their first request. On-demand environments build on the first
request as before (that time is the caller's either way, and a missing setting then fails
the invocation that needs it, with its name, rather than every init).
"""

from __future__ import annotations

import os

INITIALISED_AHEAD = frozenset({"provisioned-concurrency"})


def initialised_ahead_of_traffic() -> bool:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "") in INITIALISED_AHEAD
