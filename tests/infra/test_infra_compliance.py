"""The synthesized templates pass cfn-lint with no errors and cdk-nag's AwsSolutions checks
with every accepted finding acknowledged, with its reason, in infra/nag.py."""

from __future__ import annotations

import json

import cfnlint.api
from infratest import Synthesized


def test_cfn_lint_finds_no_errors_in_any_region(synthesized: Synthesized) -> None:
    text = json.dumps(synthesized.template)
    errors = [str(match) for match in cfnlint.api.lint_all(text) if match.rule.id.startswith("E")]
    assert errors == []


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    assert synthesized.validation_error is None, synthesized.validation_error
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert [r for r in report["pluginReports"] if r["conclusion"] != "success"] == []


def test_every_acknowledged_finding_has_a_written_reason(synthesized: Synthesized) -> None:
    acknowledged = {}
    for resource in synthesized.resources.values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            if rule["id"].startswith("AwsSolutions-"):
                acknowledged[rule["id"]] = rule["reason"]
    # The plugin ran and recorded what infra/nag.py accepts: at least the Lambda runtime.
    assert "AwsSolutions-L1" in acknowledged
    for rule, reason in acknowledged.items():
        assert len(reason.split()) >= 8, f"{rule}: {reason!r} is not a reason"
