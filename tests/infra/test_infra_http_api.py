"""The HTTP API, the change-event bus and version retention, as every shape synthesizes
them (docs/deploy.md, "HTTP API and events"): the routes of routes.json httpRoutes with
payload format 2.0 integrations and no authorizer, the bus and PutEvents on it alone, the
settings the functions get, the lifecycle rule, the ipv6 shape's way to EventBridge, and
the webhook snippet of the docs."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import botocore.session
import cfnlint.api
import pytest
from aws_cdk import App, Stack
from botocore.config import Config
from infratest import Synthesized, actions, refs, statements, synthesize

from infra import ROOT
from infra.needs import NEEDS
from infra.specs import load_routes

ROUTES = load_routes()
PUBLISHERS = {name for name in ROUTES.functions if NEEDS[name].publishes_events}
EVENTS_ENDPOINT = "AWS_ENDPOINT_URL_EVENTBRIDGE"


def environment(synthesized: Synthesized, name: str) -> dict[str, Any]:
    properties = synthesized.resources[synthesized.function_id(name)]["Properties"]
    return dict(properties["Environment"]["Variables"])


def invoked_functions(synthesized: Synthesized, uri: Any) -> set[str]:
    """The functions an integration invokes (an alias stands for its function)."""
    aliases = synthesized.of_type("AWS::Lambda::Alias")
    found = refs(uri)
    return found | {
        fn for alias in found & set(aliases) for fn in refs(aliases[alias]["Properties"]["FunctionName"])
    }


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory, layer: Any) -> Synthesized:
    """The two settings whose defaults dev keeps: CORS origins and a retention of 0."""
    overrides = {
        "httpCorsOrigins": "https://writers.example,http://localhost:5173",
        "versionRetentionDays": "0",
    }
    return synthesize(overrides, tmp_path_factory.mktemp("cdk-options"), layer)


# -- the HTTP API ----------------------------------------------------------------------------
def test_the_http_api_has_exactly_the_routes_of_routes_json_each_on_its_function(
    synthesized: Synthesized,
) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synthesized.of_api("AWS::ApiGatewayV2::Route", "HTTP").values()
    }
    assert set(routes) == set(ROUTES.http_routes) and len(routes) == 6
    integrations = synthesized.of_api("AWS::ApiGatewayV2::Integration", "HTTP")
    for route_key, function in ROUTES.http_routes.items():
        route = routes[route_key]
        # No API Gateway authorizer: the function checks the bearer token itself.
        assert route["AuthorizationType"] == "NONE" and "AuthorizerId" not in route, route_key
        target = route["Target"]["Fn::Join"][1][1]["Ref"]
        integration = integrations[target]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY", route_key
        assert integration["PayloadFormatVersion"] == "2.0", route_key
        assert synthesized.function_id(function) in invoked_functions(
            synthesized, integration["IntegrationUri"]
        ), route_key
    assert not synthesized.of_api("AWS::ApiGatewayV2::Authorizer", "HTTP")
    # API Gateway may invoke the function for each route of this API.
    api = synthesized.api_id("HTTP")
    permitted = [
        p["Properties"]
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if api in refs(p["Properties"].get("SourceArn"))
    ]
    assert len(permitted) == len(routes)
    assert all(p["Principal"] == "apigateway.amazonaws.com" for p in permitted)


def test_the_http_stage_is_default_auto_deployed_throttled_and_logs_no_token(
    synthesized: Synthesized,
) -> None:
    config = synthesized.config
    (stage,) = synthesized.of_api("AWS::ApiGatewayV2::Stage", "HTTP").values()
    properties = stage["Properties"]
    assert properties["StageName"] == "$default" and properties["AutoDeploy"] is True
    route_settings = properties["DefaultRouteSettings"]
    assert route_settings["ThrottlingRateLimit"] == config.throttleRateLimit
    assert route_settings["ThrottlingBurstLimit"] == config.throttleBurstLimit
    log_format = properties["AccessLogSettings"]["Format"]
    fields = json.loads(log_format)
    assert {"requestId", "routeKey", "path", "status"} <= set(fields)
    assert all(value.startswith("$context.") for value in fields.values())
    for leak in ("authorization", "querystring", "header", "body", "authorizer"):
        assert leak not in log_format.lower(), leak
    assert refs(properties["AccessLogSettings"]["DestinationArn"]) <= set(
        synthesized.of_type("AWS::Logs::LogGroup")
    )


def test_the_http_url_output_is_the_apis_endpoint(synthesized: Synthesized) -> None:
    output = synthesized.template["Outputs"]["HttpUrl"]["Value"]
    # https://{api}.execute-api.{region}.amazonaws.com, no stage segment ($default) and
    # no trailing slash, as the local stack prints HTTP_URL.
    assert output == {"Fn::GetAtt": [synthesized.api_id("HTTP"), "ApiEndpoint"]}


def test_every_5xx_of_the_http_api_is_alarmed(synthesized: Synthesized) -> None:
    """The function answers its own failures with a 500, which Lambda counts as a success:
    only the API's 5xx sees them."""
    api = synthesized.api_id("HTTP")
    (alarm,) = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "ApiId", "Value": {"Ref": api}}]
    ]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5xx", "Sum")
    assert alarm["Threshold"] == 5 and alarm["Period"] == 300
    assert alarm["AlarmName"] == f"{synthesized.config.prefix}-HttpApiErrors"


def test_cors_is_off_by_default_and_a_stage_setting(dev: Synthesized, options: Synthesized) -> None:
    assert "CorsConfiguration" not in dev.resources[dev.api_id("HTTP")]["Properties"]
    cors = options.resources[options.api_id("HTTP")]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://writers.example", "http://localhost:5173"]
    assert sorted(cors["AllowMethods"]) == ["GET", "POST"]
    assert sorted(cors["AllowHeaders"]) == ["authorization", "content-type"]
    assert "AllowCredentials" not in cors  # bearer tokens, never cookies
    assert options.validation_error is None


def test_the_bucket_answers_the_cors_origins_for_the_303_of_a_large_answer(
    dev: Synthesized, options: Synthesized
) -> None:
    """A page that may call the API follows the 303 of an answer over 6 MB to a presigned
    URL of the bucket: the bucket must answer it, for GET only. The browser sends it with
    `Origin: null` (a redirect between two origins other than the page's), so only "*"
    matches."""

    def bucket(synthesized: Synthesized) -> dict[str, Any]:
        (found,) = [r for r in synthesized.resources.values() if r["Type"] == "AWS::S3::Bucket"]
        return dict(found["Properties"])

    assert "CorsConfiguration" not in bucket(dev)
    (rule,) = bucket(options)["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == ["*"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert "AllowedHeaders" not in rule  # a presigned GET sends none beyond the safelisted


def test_the_http_api_is_dual_stack_with_egress_ipv6_only(dev: Synthesized, ipv6: Synthesized) -> None:
    assert "IpAddressType" not in dev.resources[dev.api_id("HTTP")]["Properties"]
    assert ipv6.resources[ipv6.api_id("HTTP")]["Properties"]["IpAddressType"] == "dualstack"


def test_the_http_function_has_what_messages_has_plus_the_token_settings_and_the_endpoint(
    synthesized: Synthesized,
) -> None:
    http, messages = environment(synthesized, "http"), environment(synthesized, "messages")
    # Tables, bucket, cache, tunables, retention, bus: the same as messages.
    assert {k: http.get(k) for k in messages} == messages, "http lacks or differs in a setting of messages"
    # The token settings the authorizer verifies with.
    authorizer = environment(synthesized, ROUTES.authorizer_function)
    token_settings = {
        k: v for k, v in authorizer.items() if k.startswith(("AUTH_", "JWT", "JWKS", "FIREBASE"))
    }
    assert token_settings and {k: http[k] for k in token_settings} == token_settings
    # The WebSocket stage it broadcasts to: the ManagementEndpoint output.
    assert http["MANAGEMENT_ENDPOINT"] == synthesized.template["Outputs"]["ManagementEndpoint"]["Value"]
    for name in set(ROUTES.functions) - {"http"}:
        assert "MANAGEMENT_ENDPOINT" not in environment(synthesized, name), name


# -- the bus ---------------------------------------------------------------------------------
def test_one_bus_per_stage_named_for_it_and_output(synthesized: Synthesized) -> None:
    ((bus_id, bus),) = synthesized.of_type("AWS::Events::EventBus").items()
    assert bus["Properties"]["Name"] == f"collab-{synthesized.config.stage}-events"
    assert synthesized.template["Outputs"]["EventBusName"]["Value"] == {"Ref": bus_id}
    # The stack sends to it and attaches nothing: consumers add their own rules.
    assert not synthesized.of_type("AWS::Events::Rule")


def test_put_events_is_granted_on_the_bus_alone_to_the_functions_that_publish(
    synthesized: Synthesized,
) -> None:
    assert {"http", "messages", "disconnect"} == PUBLISHERS
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    for name in ROUTES.functions:
        events_statements = [
            s for s in statements(synthesized, name) if any(a.startswith("events:") for a in actions(s))
        ]
        env = environment(synthesized, name)
        if name not in PUBLISHERS:
            assert not events_statements and "EVENT_BUS_NAME" not in env, name
            continue
        (statement,) = events_statements
        assert actions(statement) == ["events:PutEvents"], name
        assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}, name
        assert env["EVENT_BUS_NAME"] == {"Ref": bus_id}, name


# -- versions --------------------------------------------------------------------------------
def test_versions_expire_a_day_after_the_retention_and_zero_keeps_them(
    synthesized: Synthesized, options: Synthesized
) -> None:
    days = synthesized.config.versionRetentionDays
    assert days == 90  # the default
    for name in ROUTES.functions:
        env = environment(synthesized, name)
        assert env.get("VERSION_RETENTION_DAYS") == ("90" if NEEDS[name].versions else None), name
    (bucket,) = synthesized.of_type("AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    (versions,) = [r for r in rules if r.get("Prefix") == "versions/"]
    assert versions == {
        "Id": "ExpireVersions",
        "Prefix": "versions/",
        "ExpirationInDays": 91,
        "Status": "Enabled",
    }
    # The HTTP API's big answers (read once, by a 5-minute URL) go after a day.
    exports = {"Id": "ExpireExports", "Prefix": "exports/", "ExpirationInDays": 1, "Status": "Enabled"}
    # Nothing else in the bucket expires (scenes/ is the live data).
    assert [r for r in rules if "ExpirationInDays" in r] == [exports, versions]

    (kept,) = options.of_type("AWS::S3::Bucket").values()
    kept_rules = kept["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r for r in kept_rules if "ExpirationInDays" in r] == [exports]
    assert environment(options, "http")["VERSION_RETENTION_DAYS"] == "0"


# -- EventBridge from the VPC without NAT ------------------------------------------------------
def resolved(value: Any, template: dict[str, Any], region: str, partition: str) -> str:
    """An environment value of the template as CloudFormation would resolve it."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return {"AWS::Region": region, "AWS::Partition": partition}[value["Ref"]]
    if "Fn::FindInMap" in value:
        name, key, attribute = value["Fn::FindInMap"]
        return str(template["Mappings"][name][resolved(key, template, region, partition)][attribute])
    (separator, parts) = value["Fn::Join"]
    return str(separator).join(resolved(part, template, region, partition) for part in parts)


def test_ipv6_vpc_functions_reach_eventbridge_at_its_dual_stack_name(
    ipv6: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No interface endpoint: the functions that publish are pointed at the name botocore
    itself gives EventBridge's dual-stack endpoint, and botocore's events client (the
    handlers' collab.aws_clients builds them the same way) then calls it."""
    assert not [
        e
        for e in ipv6.of_type("AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] != "Gateway"
    ]
    # As on Lambda: no endpoint configured but the stack's (the session's moto sets some).
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    for region, partition in (("eu-west-1", "aws"), ("cn-north-1", "aws-cn")):
        monkeypatch.delenv(EVENTS_ENDPOINT, raising=False)
        dual_stack = (
            botocore.session.get_session()
            .create_client("events", region_name=region, config=Config(use_dualstack_endpoint=True))
            .meta.endpoint_url
        )
        for name in PUBLISHERS:
            endpoint = resolved(environment(ipv6, name)[EVENTS_ENDPOINT], ipv6.template, region, partition)
            assert endpoint == dual_stack, (name, region)
            monkeypatch.setenv(EVENTS_ENDPOINT, endpoint)
            client = botocore.session.get_session().create_client("events", region_name=region)
            assert client.meta.endpoint_url == dual_stack
            # ... and only that client: DynamoDB keeps the name its gateway endpoint serves.
            dynamodb = botocore.session.get_session().create_client("dynamodb", region_name=region)
            assert ".api." not in dynamodb.meta.endpoint_url
    assert dual_stack.startswith("https://events.cn-north-1.api.")
    for name in set(ROUTES.functions) - PUBLISHERS:
        assert EVENTS_ENDPOINT not in environment(ipv6, name), name


def test_shapes_with_nat_or_without_a_vpc_keep_eventbridges_regional_name(
    dev: Synthesized, nocache: Synthesized
) -> None:
    for synthesized in (dev, nocache):
        for name in ROUTES.functions:
            assert EVENTS_ENDPOINT not in environment(synthesized, name), name
        assert "DualStackDnsSuffix" not in synthesized.template.get("Mappings", {})


# -- the docs' webhook -----------------------------------------------------------------------
def webhook_snippet() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### Attach a webhook to the bus", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/deploy.md has no webhook snippet"
    return match.group(1)


def test_the_webhook_snippet_of_the_docs_synthesizes_a_rule_on_scene_changed() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(webhook_snippet(), "docs/deploy.md", "exec"), namespace)  # our own docs, run as written
    app = App()
    stack: Stack = namespace["SceneWebhook"](app, "Webhook")
    template = app.synth().get_stack_by_name(stack.stack_name).template
    resources = template["Resources"].values()
    (rule,) = [r["Properties"] for r in resources if r["Type"] == "AWS::Events::Rule"]
    assert rule["EventBusName"] == "collab-prod-events"
    assert rule["EventPattern"] == {"source": ["collab"], "detail-type": ["Scene Changed"]}
    (destination,) = [r["Properties"] for r in resources if r["Type"] == "AWS::Events::ApiDestination"]
    assert destination["HttpMethod"] == "POST" and destination["InvocationEndpoint"].startswith("https://")
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][1] == "Arn" and "RoleArn" in target
    (connection,) = [r["Properties"] for r in resources if r["Type"] == "AWS::Events::Connection"]
    assert connection["AuthorizationType"] == "API_KEY"
    # In one region that has API destinations (not every region does, which is cfn-lint's
    # only finding in all of them).
    found = cfnlint.api.lint(json.dumps(template), regions=["us-east-1"])
    assert [str(m) for m in found if m.rule.id.startswith("E")] == []
