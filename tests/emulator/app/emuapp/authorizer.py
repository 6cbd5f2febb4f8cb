"""REQUEST authorizer: the `token` query parameter says what to answer."""

from __future__ import annotations

from typing import Any


def _policy(effect: str, resource: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    answer: dict[str, Any] = {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    }
    if context is not None:
        answer["context"] = context
    return answer


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token", "")
    arn = event["methodArn"]
    if token == "allow":
        return _policy("Allow", arn, {"userId": "u-1", "level": 3, "admin": True})
    if token == "deny":
        return _policy("Deny", arn)
    if token == "elsewhere":
        return _policy("Allow", arn.rsplit("/", 2)[0] + "/other-stage/*")
    if token == "wildcard":
        return _policy("Allow", arn.split("/", 1)[0] + "/*")
    raise Exception("Unauthorized")
