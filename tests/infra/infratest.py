"""Helpers of the infra tests: synthesizing the app into a directory, and reading the
template it wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from infra.app import build_stack, project_context
from infra.config import StageConfig
from layers import build as layer_build

# A concrete account and region, as `cdk deploy` has (ARNs in findings then differ).
VARIANT_ENV = Environment(account="123456789012", region="eu-west-1")
VARIANT = {
    "stage": "prod",
    "cacheKind": "nodes",
    "cacheShards": 2,
    "authMode": "jwks",
    "firebaseProjectId": "demo-project",
    "alarmEmail": "ops@example.com",
    "functions": {"messages": {"provisionedConcurrency": 2, "reservedConcurrency": 100}},
}
# The two shapes without a NAT gateway, as `-c egress=ipv6` and `-c cacheKind=none` give
# them on top of cdk.json's dev stage (whose natGateways: 1 they do not use).
# cdk.json's dev stage has neither dashboard nor alarms (a developer's stage, docs/cost.md);
# the template tests check both on every shape, so they synthesize them in.
OBSERVED = {"dashboard": "true", "alarms": "true"}
IPV6 = {"egress": "ipv6", **OBSERVED}
NO_CACHE = {"cacheKind": "none", **OBSERVED}


@dataclass
class Synthesized:
    config: StageConfig
    template: dict[str, Any]
    outdir: Path
    validation_error: str | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template["Resources"])

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def api_id(self, protocol: str) -> str:
        """The logical id of the stage's API of `protocol`: WEBSOCKET or HTTP."""
        (logical,) = [
            k
            for k, v in self.of_type("AWS::ApiGatewayV2::Api").items()
            if v["Properties"]["ProtocolType"] == protocol
        ]
        return logical

    def of_api(self, resource_type: str, protocol: str) -> dict[str, dict[str, Any]]:
        """The resources of one API (routes, integrations, stages, authorizers)."""
        api = {"Ref": self.api_id(protocol)}
        return {k: v for k, v in self.of_type(resource_type).items() if v["Properties"]["ApiId"] == api}

    def function_id(self, name: str) -> str:
        """The logical id of a routes.json function."""
        wanted = self.config.function_name(name)
        (logical,) = [
            k
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if v["Properties"].get("FunctionName") == wanted
        ]
        return logical


def synthesize(
    overrides: Mapping[str, Any], outdir: Path, layer: layer_build.Layer, env: Environment | None = None
) -> Synthesized:
    app = App(context=project_context(overrides), outdir=str(outdir))
    stack = build_stack(app, layer, env or Environment())
    error = None
    try:
        app.synth()
    except Exception as failure:  # jsii wraps cdk's ValidationFailed in a RuntimeError
        if "Validation failed" not in str(failure):
            raise
        error = (outdir / "validation-report.json").read_text()
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synthesized(stack.config, template, outdir, error)


def refs(value: Any) -> set[str]:
    """Every logical id a template value points at (Ref and Fn::GetAtt), recursively."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs(item)
    return found


def statements(synthesized: Synthesized, function: str) -> list[dict[str, Any]]:
    """The statements of every inline policy attached to a routes.json function's role."""
    role = synthesized.resources[synthesized.function_id(function)]["Properties"]["Role"]["Fn::GetAtt"][0]
    found: list[dict[str, Any]] = []
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)
