"""The access log of an API Gateway stage (WebSocket or HTTP): a log group of the stage's
retention and removal policy, and the stage's settings writing one JSON line per request
into it, in a format that names no token (infra/api.py, infra/http_api.py)."""

from __future__ import annotations

import json

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig
from infra.removal import removal_policy, retention


def access_logged(
    scope: Construct,
    stage: apigwv2.WebSocketStage | apigwv2.HttpStage,
    config: StageConfig,
    fields: dict[str, str],
) -> logs.LogGroup:
    """`scope`'s "AccessLogs" group, which `stage` now writes `fields` (JSON) into."""
    group = logs.LogGroup(
        scope,
        "AccessLogs",
        retention=retention(config.logRetentionDays),
        removal_policy=removal_policy(config),
    )
    stage_resource = stage.node.default_child
    assert isinstance(stage_resource, apigwv2.CfnStage)
    stage_resource.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
        destination_arn=group.log_group_arn, format=json.dumps(fields)
    )
    return group
