"""The two stage shapes without a NAT gateway (docs/deploy.md, "Stage shapes"), as the
templates `-c egress=ipv6` and `-c cacheKind=none` synthesize, beside cdk.json's dev stage
(egress nat). cfn-lint and cdk-nag run on both in test_infra_compliance.py; the tests
common to every shape in test_infra_template.py and test_infra_alarms.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infratest import NO_CACHE, Synthesized, refs, synthesize

from infra.app import project_context
from infra.config import ConfigError, from_context
from infra.specs import load_routes

ROUTES = load_routes()
VPC_ACCESS = "service-role/AWSLambdaVPCAccessExecutionRole"


def environment(synthesized: Synthesized, name: str) -> dict[str, Any]:
    properties = synthesized.resources[synthesized.function_id(name)]["Properties"]
    return dict(properties["Environment"]["Variables"])


def routes_of(synthesized: Synthesized, route_table: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in synthesized.of_type("AWS::EC2::Route").values()
        if refs(r["Properties"]["RouteTableId"]) == {route_table}
    ]


def private_route_tables(synthesized: Synthesized) -> dict[str, str]:
    """Private subnet -> its route table."""
    private = {
        k
        for k, v in synthesized.of_type("AWS::EC2::Subnet").items()
        if not v["Properties"]["MapPublicIpOnLaunch"]
    }
    return {
        a["Properties"]["SubnetId"]["Ref"]: a["Properties"]["RouteTableId"]["Ref"]
        for a in synthesized.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"]["Ref"] in private
    }


# -- egress: ipv6 ----------------------------------------------------------------------------
def test_ipv6_has_no_nat_and_routes_ipv6_out_through_one_egress_only_gateway(ipv6: Synthesized) -> None:
    assert ipv6.config.egress == "ipv6" and ipv6.config.natGateways == 1  # cdk.json's, unused
    assert not ipv6.of_type("AWS::EC2::NatGateway")
    assert not ipv6.of_type("AWS::EC2::EIP")
    (gateway,) = ipv6.of_type("AWS::EC2::EgressOnlyInternetGateway")
    subnets = ipv6.of_type("AWS::EC2::Subnet")
    # Private subnets only: nothing would live in a public one.
    assert subnets and not any(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    tables = private_route_tables(ipv6)
    assert set(tables) == set(subnets) and len(tables) == ipv6.config.maxAzs
    for subnet, table in tables.items():
        properties = subnets[subnet]["Properties"]
        assert properties["AssignIpv6AddressOnCreation"] is True and "Ipv6CidrBlock" in properties
        # IPv6 anywhere through the egress-only gateway, and no IPv4 way out at all.
        assert routes_of(ipv6, table) == [
            {
                "DestinationIpv6CidrBlock": "::/0",
                "EgressOnlyInternetGatewayId": {"Ref": gateway},
                "RouteTableId": {"Ref": table},
            }
        ]
    (block,) = ipv6.of_type("AWS::EC2::VPCCidrBlock").values()
    assert block["Properties"]["AmazonProvidedIpv6CidrBlock"] is True


def test_the_nat_stage_routes_ipv4_through_nat_and_has_no_ipv6(dev: Synthesized) -> None:
    """The contrast: what the assertions above would see without egress ipv6."""
    assert not dev.of_type("AWS::EC2::EgressOnlyInternetGateway")
    assert len(dev.of_type("AWS::EC2::NatGateway")) == dev.config.natGateways
    for table in private_route_tables(dev).values():
        (route,) = routes_of(dev, table)
        assert route["DestinationCidrBlock"] == "0.0.0.0/0" and "NatGatewayId" in route
    for api in dev.of_type("AWS::ApiGatewayV2::Api").values():
        assert api["Properties"].get("IpAddressType", "ipv4") == "ipv4"
    for name in ROUTES.functions:
        vpc = dev.resources[dev.function_id(name)]["Properties"].get("VpcConfig", {})
        assert "Ipv6AllowedForDualStack" not in vpc, name
        assert "FANOUT_IP_FAMILY" not in environment(dev, name), name
        # NAT carries EventBridge's regional (IPv4) name: no endpoint override.
        assert "AWS_ENDPOINT_URL_EVENTBRIDGE" not in environment(dev, name), name


def test_the_private_subnets_keep_their_ids_and_ranges_across_the_two_egress_shapes(
    dev: Synthesized, ipv6: Synthesized
) -> None:
    """Where the cache and the functions live: switching a stage's egress must not make
    CloudFormation replace them (the public subnets' space stays reserved)."""

    def private(synthesized: Synthesized) -> dict[str, str]:
        subnets = synthesized.of_type("AWS::EC2::Subnet")
        return {k: subnets[k]["Properties"]["CidrBlock"] for k in private_route_tables(synthesized)}

    assert private(dev) == private(ipv6) and len(private(dev)) == dev.config.maxAzs


def test_ipv6_gateway_endpoints_serve_dynamodb_and_s3_on_the_private_route_tables(ipv6: Synthesized) -> None:
    tables = set(private_route_tables(ipv6).values())
    endpoints = ipv6.of_type("AWS::EC2::VPCEndpoint").values()
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints)
    assert len(services) == 2 and "dynamodb" in services[0] and "s3" in services[1]
    for endpoint in endpoints:
        assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
        assert refs(endpoint["Properties"]["RouteTableIds"]) == tables


def test_ipv6_apis_are_dual_stack_and_the_vpc_functions_post_over_ipv6_only(ipv6: Synthesized) -> None:
    apis = ipv6.of_type("AWS::ApiGatewayV2::Api").values()
    assert sorted(api["Properties"]["ProtocolType"] for api in apis) == ["HTTP", "WEBSOCKET"]
    assert all(api["Properties"]["IpAddressType"] == "dualstack" for api in apis)
    for name, spec in ROUTES.functions.items():
        properties = ipv6.resources[ipv6.function_id(name)]["Properties"]
        env = environment(ipv6, name)
        if spec.needs_cache:
            assert properties["VpcConfig"]["Ipv6AllowedForDualStack"] is True, name
            assert env["FANOUT_IP_FAMILY"] == "ipv6", name
            assert env["CACHE_KIND"] == "redis" and "REDIS_URL" in env, name
        else:  # outside the VPC: the internet either way
            assert "VpcConfig" not in properties and "FANOUT_IP_FAMILY" not in env, name
    assert ipv6.of_type("AWS::ElastiCache::ServerlessCache")


# -- cacheKind: none -------------------------------------------------------------------------
def test_no_cache_builds_no_network_and_no_cache(nocache: Synthesized) -> None:
    types = {r["Type"] for r in nocache.resources.values()}
    assert not {t for t in types if t.startswith(("AWS::EC2::", "AWS::ElastiCache::"))}, types
    assert not nocache.of_type("AWS::EC2::NatGateway")
    # The rest of the stage is all there.
    assert {"AWS::ApiGatewayV2::Api", "AWS::DynamoDB::Table", "AWS::S3::Bucket"} <= types


def test_no_cache_functions_run_outside_any_vpc_and_know_there_is_no_cache(nocache: Synthesized) -> None:
    for name, spec in ROUTES.functions.items():
        properties = nocache.resources[nocache.function_id(name)]["Properties"]
        env = environment(nocache, name)
        assert "VpcConfig" not in properties, name
        assert not {"REDIS_URL", "REDIS_CLUSTER", "FANOUT_IP_FAMILY"} & set(env), name
        if spec.needs_cache:
            assert env["CACHE_KIND"] == "none", name
            assert {"CONNECTIONS_TABLE", "DOCUMENTS_TABLE", "SNAPSHOT_BUCKET"} <= set(env), name
    # No network interfaces to manage: no role carries the VPC access policy.
    for role in nocache.of_type("AWS::IAM::Role").values():
        assert VPC_ACCESS not in json.dumps(role["Properties"].get("ManagedPolicyArns", []))
    # Nothing listens for cache failures that cannot happen.
    metrics = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]
        for f in nocache.of_type("AWS::Logs::MetricFilter").values()
    }
    assert metrics and "CacheUnavailable" not in metrics


# -- the settings ----------------------------------------------------------------------------
def shape(**context: Any) -> Any:
    return from_context(project_context(context).get)


def test_the_shapes_come_from_the_command_line_and_contradictions_fail() -> None:
    assert (shape().egress, shape().nat_gateways, shape().dual_stack) == ("nat", 1, False)
    assert (shape(egress="ipv6").nat_gateways, shape(egress="ipv6").dual_stack) == (0, True)
    assert (shape(cacheKind="none").has_vpc, shape(cacheKind="none").nat_gateways) == (False, 0)
    # natGateways 0 is fine where nothing uses NAT, and refused where the functions need it.
    assert shape(egress="ipv6", natGateways="0").nat_gateways == 0
    with pytest.raises(ConfigError) as refused:
        shape(natGateways="0")
    assert refused.value.name == "natGateways"
    for context in ({"egress": "ipv4"}, {"egress": "ipv6", "cacheKind": "none"}):
        with pytest.raises(ConfigError) as bad:
            shape(**context)
        assert bad.value.name == "egress", context


# -- a stage that pays for nothing at rest -----------------------------------------------------
@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, layer: Any) -> Synthesized:
    """cacheKind none without the dashboard and the alarms (docs/cost.md: a developer's
    stage at rest then pays only for the generated JWT secret)."""
    overrides = {**NO_CACHE, "dashboard": "false", "alarms": "false"}
    return synthesize(overrides, tmp_path_factory.mktemp("cdk-bare"), layer)


def test_a_stage_without_dashboard_and_alarms_has_neither_and_keeps_its_signals(
    bare: Synthesized, nocache: Synthesized
) -> None:
    assert bare.validation_error is None
    assert not bare.of_type("AWS::CloudWatch::Dashboard")
    assert not bare.of_type("AWS::CloudWatch::Alarm")
    assert "DashboardName" not in bare.template.get("Outputs", {})
    # The log metric filters stay (free): the signals can still be graphed or alarmed later.
    assert len(bare.of_type("AWS::Logs::MetricFilter")) == len(nocache.of_type("AWS::Logs::MetricFilter")) > 0
    # The default keeps both.
    assert nocache.of_type("AWS::CloudWatch::Dashboard") and nocache.of_type("AWS::CloudWatch::Alarm")
