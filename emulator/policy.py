"""What API Gateway makes of a REQUEST authorizer's answer: the upgrade's fate and the
context that every later event of the connection carries in requestContext.authorizer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.environments import Outcome


@dataclass(frozen=True)
class Decision:
    status: int  # 200 admits the connection; otherwise the upgrade's HTTP status
    reason: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.status == 200


def decide(outcome: Outcome, method_arn: str) -> Decision:
    if not outcome.ok:
        # The one error message API Gateway gives a meaning: raise Exception("Unauthorized").
        if outcome.error and outcome.error.get("errorMessage") == "Unauthorized":
            return Decision(401, "Unauthorized")
        return Decision(500, f"authorizer failed: {outcome.status}")
    response = outcome.result
    if not isinstance(response, dict) or "principalId" not in response:
        return Decision(500, "authorizer response has no principalId")
    statements = _statements(response.get("policyDocument"))
    if statements is None:
        return Decision(500, "authorizer response has no valid policyDocument")
    context = _context(response.get("context"))
    if context is None:
        return Decision(500, "authorizer context values must be strings, numbers or booleans")
    matching = [s for s in statements if _covers(s, method_arn)]
    if any(str(s.get("Effect")).lower() == "deny" for s in matching):
        return Decision(403, "explicit deny")
    if not any(str(s.get("Effect")).lower() == "allow" for s in matching):
        return Decision(403, "no statement allows " + method_arn)
    return Decision(
        200,
        "allow",
        {
            **context,
            "principalId": str(response["principalId"]),
            "integrationLatency": int(outcome.duration_ms),
        },
    )


def _statements(document: Any) -> list[Mapping[str, Any]] | None:
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        return None
    return statements


def _context(raw: Any) -> dict[str, str] | None:
    """API Gateway rejects nested values and hands the rest over as strings."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return None
    context: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            context[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            context[key] = str(value)
        else:
            return None
    return context


def _as_list(value: Any) -> Sequence[str]:
    return [value] if isinstance(value, str) else list(value or ())


def _covers(statement: Mapping[str, Any], method_arn: str) -> bool:
    actions = _as_list(statement.get("Action"))
    if not any(_wildcard(a.lower(), "execute-api:invoke") for a in actions):
        return False
    return any(_wildcard(r, method_arn) for r in _as_list(statement.get("Resource")))


def _wildcard(pattern: str, value: str) -> bool:
    """IAM wildcards: '*' any run of characters, '?' one character; nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None
