"""The synthesized template deploys exactly routes.json and tables.json, least privilege,
encrypted, with the functions that need the cache in the VPC and the others outside."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Template
from infratest import Synthesized, actions, refs, statements

from infra import FUNCTIONS_DIR, ROOT
from infra.needs import NEEDS
from infra.specs import load_routes, load_tables

ROUTES = load_routes()
TABLES = load_tables()


def granted(synthesized: Synthesized, function: str, action: str, needed: bool) -> dict[str, Any] | None:
    """The one statement granting `action` to the function when `needed`; asserts that no
    statement grants it otherwise."""
    found = [s for s in statements(synthesized, function) if action in actions(s)]
    if not needed:
        assert not found, (function, action)
        return None
    (statement,) = found
    return statement


def security_groups(synthesized: Synthesized) -> dict[str, str]:
    """ "functions" and "cache" -> logical id (by the group's description)."""
    found = {}
    for logical, group in synthesized.of_type("AWS::EC2::SecurityGroup").items():
        role = group["Properties"]["GroupDescription"].removeprefix(synthesized.config.prefix + " ")
        found[role.split(":")[0]] = logical
    return found


def table_ids(synthesized: Synthesized) -> dict[str, str]:
    """tables.json name -> logical id."""
    by_name = {synthesized.config.table_name(name): name for name in TABLES}
    return {
        by_name[v["Properties"]["TableName"]]: k
        for k, v in synthesized.of_type("AWS::DynamoDB::Table").items()
    }


def test_every_route_of_routes_json_invokes_its_function(synthesized: Synthesized) -> None:
    """The WebSocket API's; the HTTP API's in test_infra_http_api.py."""
    api = synthesized.resources[synthesized.api_id("WEBSOCKET")]
    assert api["Properties"]["RouteSelectionExpression"] == ROUTES.selection_expression
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synthesized.of_api("AWS::ApiGatewayV2::Route", "WEBSOCKET").values()
    }
    assert set(routes) == set(ROUTES.routes)
    integrations = synthesized.of_type("AWS::ApiGatewayV2::Integration")
    aliases = synthesized.of_type("AWS::Lambda::Alias")
    for route_key, function in ROUTES.routes.items():
        target = routes[route_key]["Target"]["Fn::Join"][1][1]["Ref"]
        invoked = refs(integrations[target]["Properties"]["IntegrationUri"])
        # An alias (provisioned concurrency) stands for its function.
        invoked |= {
            fn
            for alias in invoked & set(aliases)
            for fn in refs(aliases[alias]["Properties"]["FunctionName"])
        }
        assert synthesized.function_id(function) in invoked, route_key


def test_the_authorizer_guards_connect_only_and_requires_no_identity_source(synthesized: Synthesized) -> None:
    routes = synthesized.of_type("AWS::ApiGatewayV2::Route").values()
    guarded = {
        r["Properties"]["RouteKey"] for r in routes if r["Properties"].get("AuthorizationType") == "CUSTOM"
    }
    assert guarded == {ROUTES.authorizer_route} == {"$connect"}
    (authorizer,) = synthesized.of_type("AWS::ApiGatewayV2::Authorizer").values()
    properties = authorizer["Properties"]
    assert properties["AuthorizerType"] == "REQUEST"
    # A token comes in the query string or in Sec-WebSocket-Protocol: any identity source
    # would make API Gateway refuse the clients that use the other.
    assert not properties.get("IdentitySource")
    assert synthesized.function_id(ROUTES.authorizer_function) in refs(properties["AuthorizerUri"])


def test_functions_are_those_of_routes_json_on_python_313_arm64_with_the_layer(
    synthesized: Synthesized,
) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function")
    (layer,) = synthesized.of_type("AWS::Lambda::LayerVersion")
    ours = {
        v["Properties"]["FunctionName"]: v["Properties"]
        for v in functions.values()
        if "FunctionName" in v["Properties"]
    }
    assert set(ours) == {synthesized.config.function_name(name) for name in ROUTES.functions}
    for name, spec in ROUTES.functions.items():
        properties = ours[synthesized.config.function_name(name)]
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Handler"] == spec.handler
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Layers"] == [{"Ref": layer}]
        env = properties["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == synthesized.config.service_name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Collab"
        assert env["POWERTOOLS_LOG_LEVEL"] == synthesized.config.logLevel


def test_handlers_exist_relative_to_the_code_asset_root() -> None:
    for spec in ROUTES.functions.values():
        module, _, function = spec.handler.rpartition(".")
        path = FUNCTIONS_DIR / (module.replace(".", "/") + ".py")
        assert path.is_file(), spec.handler
        assert f"def {function}(" in path.read_text(), spec.handler


def test_functions_that_need_the_cache_run_in_the_vpc_and_the_others_outside(
    synthesized: Synthesized,
) -> None:
    if not synthesized.config.has_cache:
        return  # no cache, no VPC: test_infra_shapes.py checks that shape
    function_sg = security_groups(synthesized)["functions"]
    private = {
        k
        for k, v in synthesized.of_type("AWS::EC2::Subnet").items()
        if v["Properties"]["MapPublicIpOnLaunch"] is False
    }
    for name, spec in ROUTES.functions.items():
        properties = synthesized.resources[synthesized.function_id(name)]["Properties"]
        if spec.needs_cache:
            vpc = properties["VpcConfig"]
            assert refs(vpc["SecurityGroupIds"]) == {function_sg}, name
            assert refs(vpc["SubnetIds"]) == private, name
            assert properties["Environment"]["Variables"]["CACHE_KIND"] == "redis"
            assert properties["Environment"]["Variables"]["REDIS_URL"]["Fn::Join"][1][0] == "rediss://"
            assert properties["Environment"]["Variables"]["REDIS_CLUSTER"] == "true"
        else:
            assert "VpcConfig" not in properties, name
            assert "REDIS_URL" not in properties["Environment"]["Variables"], name
    assert not ROUTES.functions[ROUTES.authorizer_function].needs_cache


def test_tables_match_tables_json_with_the_ttl_attribute_the_code_writes(synthesized: Synthesized) -> None:
    tables = synthesized.of_type("AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)
    for name, logical in table_ids(synthesized).items():
        spec = TABLES[name]
        properties = tables[logical]["Properties"]
        assert properties["KeySchema"] == [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["SSESpecification"]["SSEEnabled"] is True
        if spec.ttl_attribute:
            assert properties["TimeToLiveSpecification"] == {
                "AttributeName": spec.ttl_attribute,
                "Enabled": True,
            }
        else:
            assert "TimeToLiveSpecification" not in properties


def test_table_names_reach_the_functions_under_the_names_in_tables_json(synthesized: Synthesized) -> None:
    ids = table_ids(synthesized)
    for name, spec in ROUTES.functions.items():
        env = synthesized.resources[synthesized.function_id(name)]["Properties"]["Environment"]["Variables"]
        wanted = set(NEEDS[name].tables) | (set(TABLES) if spec.needs_cache else set())
        for table in wanted:
            assert env[TABLES[table].env] == {"Ref": ids[table]}, (name, table)


def test_dynamodb_grants_name_only_the_tables_each_function_uses(synthesized: Synthesized) -> None:
    ids = table_ids(synthesized)
    for name in ROUTES.functions:
        granted: set[str] = set()
        for statement in statements(synthesized, name):
            if any(a.startswith("dynamodb:") for a in actions(statement)):
                assert "*" not in json.dumps(statement["Resource"]), (name, statement)
                assert not any(a.endswith("*") for a in actions(statement)), (name, statement)
                granted |= refs(statement["Resource"])
        assert granted == {ids[table] for table in NEEDS[name].tables}, name
        writes = {
            r
            for s in statements(synthesized, name)
            if "dynamodb:PutItem" in actions(s)
            for r in refs(s["Resource"])
        }
        assert writes == {ids[t] for t, level in NEEDS[name].tables.items() if level == "write"}, name


def test_manage_connections_is_scoped_to_this_api_stage(synthesized: Synthesized) -> None:
    api = synthesized.api_id("WEBSOCKET")
    for name in ROUTES.functions:
        grant = granted(synthesized, name, "execute-api:ManageConnections", NEEDS[name].manages_connections)
        if grant is None:
            continue
        parts = grant["Resource"]["Fn::Join"][1]
        assert {"Ref": api} in parts
        assert parts[-1] == f"/{synthesized.config.stage_name}/*/@connections/*"
    assert not any(
        "execute-api:" in a and "ManageConnections" not in a
        for name in ROUTES.functions
        for s in statements(synthesized, name)
        for a in actions(s)
    )


def test_only_the_token_verifier_reads_the_jwt_secret_and_only_its_own(synthesized: Synthesized) -> None:
    secrets = set(synthesized.of_type("AWS::SecretsManager::Secret"))
    for name in ROUTES.functions:
        needed = NEEDS[name].verifies_tokens and synthesized.config.authMode == "hs256"
        grant = granted(synthesized, name, "secretsmanager:GetSecretValue", needed)
        if grant is not None:
            assert refs(grant["Resource"]) == secrets
        assert not any(a.startswith("ssm:") for s in statements(synthesized, name) for a in actions(s))


def test_snapshot_bucket_is_encrypted_private_tls_only_and_granted_by_prefix(
    synthesized: Synthesized,
) -> None:
    (bucket_id, bucket) = next(iter(synthesized.of_type("AWS::S3::Bucket").items()))
    properties = bucket["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (policy,) = synthesized.of_type("AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    for name in ROUTES.functions:
        needs = NEEDS[name]
        grant = granted(synthesized, name, "s3:PutObject", needs.blobs or needs.versions or needs.exports)
        if grant is None:
            continue
        # Payloads under scenes/, versions under versions/, the HTTP API's big answers under
        # exports/ (infra/storage.py), nothing else.
        used_prefixes = (
            ("/scenes/*", needs.blobs),
            ("/versions/*", needs.versions),
            ("/exports/*", needs.exports),
        )
        prefixes = [p for p, used in used_prefixes if used]
        resources = grant["Resource"] if isinstance(grant["Resource"], list) else [grant["Resource"]]
        assert [r["Fn::Join"][1] for r in resources] == [
            [{"Fn::GetAtt": [bucket_id, "Arn"]}, p] for p in prefixes
        ]


def test_only_the_functions_reach_the_cache_port(synthesized: Synthesized) -> None:
    if not synthesized.config.has_cache:
        assert not synthesized.of_type("AWS::EC2::SecurityGroup")
        return
    groups = synthesized.of_type("AWS::EC2::SecurityGroup")
    by_role = security_groups(synthesized)
    assert set(by_role) == {"functions", "cache"}
    cache_group = groups[by_role["cache"]]["Properties"]
    assert not cache_group.get("SecurityGroupIngress"), "no CIDR may reach the cache"
    ingress = [v["Properties"] for v in synthesized.of_type("AWS::EC2::SecurityGroupIngress").values()]
    into_cache = [i for i in ingress if refs(i["GroupId"]) == {by_role["cache"]}]
    assert into_cache and all(refs(i["SourceSecurityGroupId"]) == {by_role["functions"]} for i in into_cache)
    assert all(i["FromPort"] >= 6379 and i["ToPort"] <= 6380 for i in into_cache)
    # Out of the functions: HTTPS anywhere (AWS APIs, @connections via NAT or over IPv6)
    # and the cache.
    rules = groups[by_role["functions"]]["Properties"]["SecurityGroupEgress"]
    wanted = ["0.0.0.0/0", "::/0"] if synthesized.config.dual_stack else ["0.0.0.0/0"]
    assert [r.get("CidrIp") or r.get("CidrIpv6") for r in rules] == wanted
    for rule in rules:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    egress = [v["Properties"] for v in synthesized.of_type("AWS::EC2::SecurityGroupEgress").values()]
    assert [refs(e["DestinationSecurityGroupId"]) for e in egress] == [{by_role["cache"]}]


def test_the_cache_is_encrypted(synthesized: Synthesized) -> None:
    if synthesized.config.cacheKind == "none":
        assert not [
            t for r in synthesized.resources.values() if (t := r["Type"]).startswith("AWS::ElastiCache::")
        ]
        return
    if synthesized.config.cacheKind == "serverless":
        (cache,) = synthesized.of_type("AWS::ElastiCache::ServerlessCache").values()
        # Serverless is always TLS and encrypted at rest; the clients connect with rediss://.
        assert cache["Properties"]["Engine"] == "valkey"
        return
    (group,) = synthesized.of_type("AWS::ElastiCache::ReplicationGroup").values()
    properties = group["Properties"]
    assert properties["TransitEncryptionEnabled"] is True
    assert properties["TransitEncryptionMode"] == "required"
    assert properties["AtRestEncryptionEnabled"] is True
    assert properties["ClusterMode"] == "enabled"
    assert properties["NumNodeGroups"] == synthesized.config.cacheShards


def test_vpc_has_the_configured_nat_gateways_and_free_gateway_endpoints(synthesized: Synthesized) -> None:
    config = synthesized.config
    # natGateways with egress nat (cdk.json's dev has 1); none with egress ipv6 or no cache.
    expected_nat = config.natGateways if config.has_cache and config.egress == "nat" else 0
    assert len(synthesized.of_type("AWS::EC2::NatGateway")) == expected_nat
    if not config.has_vpc:
        assert not synthesized.of_type("AWS::EC2::VPCEndpoint")
        return
    endpoints = synthesized.of_type("AWS::EC2::VPCEndpoint").values()
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints)
    assert len(services) == 2 and "dynamodb" in services[0] and "s3" in services[1]
    assert all(e["Properties"]["VpcEndpointType"] == "Gateway" for e in endpoints)
    assert not any("execute-api" in json.dumps(e["Properties"]["ServiceName"]) for e in endpoints), (
        "an execute-api endpoint does not serve @connections"
    )


def test_stage_is_throttled_and_its_access_log_holds_no_token(synthesized: Synthesized) -> None:
    (stage,) = synthesized.of_api("AWS::ApiGatewayV2::Stage", "WEBSOCKET").values()
    properties = stage["Properties"]
    assert properties["StageName"] == synthesized.config.stage_name
    settings = properties["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == synthesized.config.throttleRateLimit
    assert settings["ThrottlingBurstLimit"] == synthesized.config.throttleBurstLimit
    assert settings["DataTraceEnabled"] is False and settings["LoggingLevel"] == "OFF"
    log_format = properties["AccessLogSettings"]["Format"]
    fields = json.loads(log_format)
    assert {"requestId", "connectionId", "routeKey", "status"} <= set(fields)
    assert all(value.startswith("$context.") for value in fields.values())
    for leak in ("requestOverride", "querystring", "queryString", "header", "body", "identity.apiKey"):
        assert leak.lower() not in log_format.lower(), leak


def test_outputs_name_the_urls_and_the_tables(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    url = outputs["WebSocketUrl"]["Value"]["Fn::Join"][1]
    assert url[0] == "wss://" and url[-1] == f"/{synthesized.config.stage_name}"
    management = outputs["ManagementEndpoint"]["Value"]["Fn::Join"][1]
    assert management[0] == "https://" and management[2].startswith(".execute-api.")
    assert management[-1] == f"/{synthesized.config.stage_name}"
    for name in TABLES:
        assert f"{name.capitalize()}TableName" in outputs


def test_dashboard_and_alarms_cover_errors_throttles_and_fanout(synthesized: Synthesized) -> None:
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("FanoutDuration", "ConnectCount", "MessageCount", "Duration", "Throttles", "Errors"):
        assert metric in body, metric
    alarms = [a["Properties"] for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()]
    for name in ROUTES.functions:
        function_id = synthesized.function_id(name)
        watched = {a["MetricName"] for a in alarms if refs(a.get("Dimensions", [])) == {function_id}}
        assert watched == {"Errors", "Throttles"}, name


def test_context_drives_retention_removal_and_sizes(synthesized: Synthesized) -> None:
    config = synthesized.config
    for group in synthesized.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == config.logRetentionDays
        assert group["DeletionPolicy"] == ("Retain" if config.retain else "Delete")
    for table in synthesized.of_type("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == ("Retain" if config.retain else "Delete")
        assert table["Properties"].get("DeletionProtectionEnabled", False) is config.retain
    for name in ROUTES.functions:
        properties = synthesized.resources[synthesized.function_id(name)]["Properties"]
        options = config.function_options(name)
        assert properties["MemorySize"] == (options.memoryMb or config.memoryMb)
        assert properties["Timeout"] == (options.timeoutSeconds or config.timeoutSeconds)
        assert properties.get("ReservedConcurrentExecutions") == options.reservedConcurrency


def test_variant_options(variant: Synthesized) -> None:
    template = Template.from_json(variant.template)
    template.has_resource_properties(
        "AWS::Lambda::Alias", {"ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}}
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    env = variant.resources[variant.function_id("authorizer")]["Properties"]["Environment"]["Variables"]
    assert env["AUTH_MODE"] == "jwks" and env["FIREBASE_PROJECT_ID"] == "demo-project"
    assert not variant.of_type("AWS::SecretsManager::Secret")
    alarms = variant.of_type("AWS::CloudWatch::Alarm").values()
    assert all(a["Properties"]["AlarmActions"] for a in alarms)


def test_the_function_ids_in_the_sam_instructions_exist(dev: Synthesized) -> None:
    """docs/deploy.md names template logical ids for `sam local invoke`; they must exist."""
    documented = set(
        re.findall(r"\bFunctions[A-Z][a-z]+[0-9A-F]{8}\b", (ROOT / "docs" / "deploy.md").read_text())
    )
    assert documented
    functions = set(dev.of_type("AWS::Lambda::Function"))
    assert documented <= functions
    for name in ROUTES.functions:
        assert f"Functions{name.capitalize()}" in dev.function_id(name)
