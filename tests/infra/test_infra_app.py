"""`cdk synth` runs `.venv/bin/python -m infra.app` (cdk.json): run it the way the CLI does
(context and output directory in the environment) and check it imports no runtime library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra import ROOT
from infra.app import project_context
from layers import build as layer_build

# What the handlers import and the CDK app must not (docs/design.md §1).
RUNTIME_LIBRARIES = {"pycrdt", "redis", "boto3", "botocore", "jwt", "aws_lambda_powertools"}

PROBE = """
import json, runpy, sys
runpy.run_module("infra.app", run_name="__main__")
print(json.dumps(sorted(sys.modules)))
"""


def test_the_app_synthesizes_like_the_cli_runs_it_without_runtime_libraries(
    tmp_path: Path, layer: layer_build.Layer
) -> None:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps(project_context({"stage": "staging", "nag": "false"})),
        "CDK_DEFAULT_REGION": "us-east-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert not {m for m in modules if m.split(".")[0] in RUNTIME_LIBRARIES}
    assert {m for m in modules if m.split(".")[0] == "collab"} <= {"collab", "collab.settings"}
    template = json.loads((tmp_path / "Collab-staging.template.json").read_text())
    assert any(r["Type"] == "AWS::ApiGatewayV2::Api" for r in template["Resources"].values())
