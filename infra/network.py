"""The VPC the cache lives in, and the security groups that let only the functions reach it
(a stage with `cacheKind: none` has neither).

Functions in the VPC reach DynamoDB and S3 through free gateway endpoints, and the API
Gateway Management API (POST @connections) over the internet: an execute-api interface
endpoint does not serve WebSocket @connections. `egress` picks the way out:

- nat: public subnets with NAT gateways (natGateways), the private subnets' IPv4 default
  route through them;
- ipv6: a dual-stack VPC (an Amazon-provided /56, a /64 per subnet) with private subnets
  only, whose IPv6 default route (::/0) goes through an egress-only internet gateway (no
  charge of its own), and no IPv4 route out at all: no NAT gateway, no public subnet. The
  functions then reach @connections over IPv6 only (FANOUT_IP_FAMILY, infra/functions.py)
  on the dual-stack API (infra/api.py). CDK also attaches an internet gateway to a
  dual-stack VPC; with no public subnet nothing routes to it (it costs nothing).

What else the VPC functions call, and what serves it without NAT, is in docs/deploy.md,
"Stage shapes".
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig
from infra.removal import removal_policy, retention


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.dual_stack = config.dual_stack
        subnets = [
            # Where the NAT gateways live. The IPv6 shape has nothing to put there but keeps
            # the address space (reserved: no resources), so that the private subnets have
            # the same IPv4 ranges and logical ids in both shapes.
            ec2.SubnetConfiguration(
                name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, reserved=self.dual_stack
            ),
            ec2.SubnetConfiguration(
                name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
            ),
        ]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=config.prefix,
            ip_addresses=ec2.IpAddresses.cidr("10.42.0.0/16"),
            # Dual stack: CDK adds the egress-only internet gateway and the private subnets'
            # ::/0 routes to it, and gives every subnet IPv6 addresses.
            ip_protocol=ec2.IpProtocol.DUAL_STACK if self.dual_stack else ec2.IpProtocol.IPV4_ONLY,
            max_azs=config.maxAzs,
            nat_gateways=config.nat_gateways,
            subnet_configuration=subnets,
            gateway_endpoints={
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            },
            # Nothing is placed in the default security group.
            restrict_default_security_group=False,
        )
        # Rejected traffic only: enough to debug a security group, cheap at rest.
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(config.logRetentionDays),
            removal_policy=removal_policy(config),
        )
        self.vpc.add_flow_log(
            "RejectedFlows",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.function_security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=self.vpc,
            description=f"{config.prefix} functions: HTTPS out, the cache",
            allow_all_outbound=False,
        )
        # DynamoDB and S3 (gateway endpoints, IPv4) and the Management API (NAT, or IPv6
        # through the egress-only gateway) are all HTTPS.
        self.function_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs: DynamoDB, S3, SSM, @connections"
        )
        if self.dual_stack:
            self.function_security_group.add_egress_rule(
                ec2.Peer.any_ipv6(),
                ec2.Port.tcp(443),
                "over IPv6: @connections, EventBridge, Secrets Manager",
            )
        self.cache_security_group = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            description=f"{config.prefix} cache: reachable from the functions only",
            allow_all_outbound=False,
        )

    def allow_cache_port(self, first: int, last: int) -> None:
        """Open the cache's port range from the functions' security group, and nothing else."""
        ports = ec2.Port.tcp_range(first, last) if last != first else ec2.Port.tcp(first)
        self.cache_security_group.add_ingress_rule(self.function_security_group, ports, "functions to cache")
        self.function_security_group.add_egress_rule(self.cache_security_group, ports, "functions to cache")

    @property
    def private_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
