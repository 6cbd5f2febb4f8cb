"""The CDK app: `cdk synth` / `cdk deploy` run `.venv/bin/python -m infra.app` (cdk.json).

It builds the dependency layer first when layers/build/ has no current one (a cached,
reproducible pip build, see layers/build.py), then synthesizes the stage named by the
`stage` context key, checked by cdk-nag's AwsSolutions rules (unless `-c nag=false`).
Run directly (without the CLI) it reads cdk.json's context itself and writes to cdk.out,
so `python -m infra.app` and `cdk synth` produce the same template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra import ROOT
from infra.config import from_context
from infra.stack import CollabStack
from layers import build as layer_build

CDK_JSON = ROOT / "cdk.json"


def project_context(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """cdk.json's context with `overrides` on top (what `cdk synth -c k=v` would pass)."""
    context = dict(json.loads(CDK_JSON.read_text()).get("context", {}))
    context.update(overrides or {})
    return context


def build_stack(
    app: App, layer: layer_build.Layer | None = None, env: Environment | None = None
) -> CollabStack:
    """The stage's stack in `app`, with cdk-nag unless the `nag` context key is false.
    `env` defaults to the CLI's account and region (CDK_DEFAULT_*)."""
    config = from_context(app.node.try_get_context)
    layer = layer or layer_build.build()
    stack = CollabStack(
        app,
        config.stack_name,
        config=config,
        layer_dir=str(layer.path),
        layer_key=layer.key,
        # Without an account and region (run without the CLI) the stack is environment-
        # agnostic: the VPC then spans two availability zones.
        env=env
        or Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        ),
    )
    if str(app.node.try_get_context("nag")).lower() != "false":
        # Acknowledged findings are also written to each resource's Metadata (cdk_nag),
        # so the template itself records why each one is accepted.
        Validations.of(app).add_plugins(
            AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
        )
    return stack


def main() -> None:
    # Run by the CLI, the context (cdk.json and -c) comes in CDK_CONTEXT_JSON.
    by_cli = "CDK_CONTEXT_JSON" in os.environ
    app = App() if by_cli else App(context=project_context(), outdir="cdk.out")
    try:
        build_stack(app)
    except layer_build.LayerBuildError as error:
        raise SystemExit(f"could not build the Lambda layer ({error}); run `make layer` to see why") from None
    app.synth()


if __name__ == "__main__":
    main()
