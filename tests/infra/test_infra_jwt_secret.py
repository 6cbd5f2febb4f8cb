"""The HS256 key's three sources reach the authorizer as a name (never the key itself),
with read access to exactly that resource."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra.config import StageConfig
from infra.jwt_secret import JwtSecret


def synthesize(config: StageConfig) -> tuple[dict[str, str], str]:
    """The environment the secret gives the authorizer, and the policy granted to it."""
    stack = Stack(App(), "Test")
    secret = JwtSecret(stack, "JwtSecret", config=config)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    secret.grant_read(role)
    template = Template.from_stack(stack).to_json()
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    return secret.env(), json.dumps(policies)


def test_an_ssm_parameter_is_named_and_readable() -> None:
    env, policy = synthesize(StageConfig(stage="t", jwtSecretParameter="/collab/t/jwt"))
    assert env == {"AUTH_MODE": "hs256", "JWT_SECRET_PARAMETER": "/collab/t/jwt"}
    assert "ssm:GetParameter" in policy and ":parameter/collab/t/jwt" in policy
    assert "secretsmanager" not in policy


def test_a_secrets_manager_arn_is_named_and_readable() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:collab/t/jwt-AbCdEf"
    env, policy = synthesize(StageConfig(stage="t", jwtSecretArn=arn))
    assert env == {"AUTH_MODE": "hs256", "JWT_SECRET_ARN": arn}
    assert "secretsmanager:GetSecretValue" in policy and arn in policy


def test_without_either_a_key_is_generated() -> None:
    env, policy = synthesize(StageConfig(stage="t"))
    assert set(env) == {"AUTH_MODE", "JWT_SECRET_ARN"}
    assert "secretsmanager:GetSecretValue" in policy


@pytest.mark.parametrize("parameter", [None, "/ignored"])
def test_jwks_mode_reads_no_secret(parameter: str | None) -> None:
    config = StageConfig(stage="t", authMode="jwks", firebaseProjectId="demo", jwtSecretParameter=parameter)
    env, policy = synthesize(config)
    assert env == {"AUTH_MODE": "jwks", "FIREBASE_PROJECT_ID": "demo"}
    assert policy == "[]"
