"""What the deployed stage gives each function, so the local stack runs with the same: the
memory size the CDK app sets on each Lambda function (infra/functions.py:
`options.memoryMb or config.memoryMb`), read from cdk.json's context the way the CDK app
reads it (infra/config.py, the stage named by the `stage` key).

infra.config needs only the standard library and collab.settings, never aws_cdk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from devstack.services import ROOT
from infra.config import from_context

CDK_JSON = ROOT / "cdk.json"


def function_memory(functions: Iterable[str], stage: str | None = None) -> dict[str, int]:
    """MB per function of `functions` for `stage` (default: cdk.json's `stage`)."""
    context = dict(json.loads(CDK_JSON.read_text()).get("context", {}))
    if stage is not None:
        context["stage"] = stage
    config = from_context(context.get)
    return {name: config.function_options(name).memoryMb or config.memoryMb for name in functions}
