"""The stage's EventBridge bus: change events (`Scene Changed`, `Version Created`, `Version
Restored`, source `collab`; collab/change_events.py) for webhooks and other consumers. The
stack adds no rule and no target: a consumer attaches its own (docs/deploy.md, "HTTP API
and events"). A bus with no rules costs nothing; PutEvents is $1.00 per million events.

How a function in the VPC reaches EventBridge without NAT (egress ipv6): EventBridge's
regional name (events.{region}.amazonaws.com) answers on IPv4 only, but the service has a
dual-stack name, events.{region}.api.aws (the EventBridge User Guide, "Dual-stack service
endpoints in Amazon EventBridge"). The functions are pointed at it with botocore's
AWS_ENDPOINT_URL_EVENTBRIDGE, which changes that one client and no other (the DynamoDB and
S3 clients keep their regional names, which the gateway endpoints serve), so PutEvents
leaves over IPv6 through the egress-only gateway, like the posts to @connections. No
interface endpoint: an `events` one would cost about $7.30 a month per zone at rest.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from collab import settings
from infra.config import StageConfig

# botocore's service-specific endpoint override for EventBridge (its service id).
EVENTS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_EVENTBRIDGE"
# Each partition's dual-stack DNS suffix (botocore's partitions.json, dualStackDnsSuffix).
DUAL_STACK_SUFFIXES = {
    "aws": "api.aws",
    "aws-cn": "api.amazonwebservices.com.cn",
    "aws-us-gov": "api.aws",
}


class Events(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=config.event_bus_name,
            description=f"{config.prefix}: Scene Changed, Version Created, Version Restored",
        )
        self._suffixes: CfnMapping | None = None

    def env(self, *, dual_stack: bool) -> dict[str, str]:
        """The bus's name, and for a function with IPv6 as its only way out (egress ipv6,
        in the VPC) the dual-stack endpoint."""
        env = {settings.EVENT_BUS_NAME: self.bus.event_bus_name}
        if dual_stack:
            env[EVENTS_ENDPOINT_ENV] = f"https://events.{Aws.REGION}.{self._dual_stack_suffix()}"
        return env

    def grant_put_events(self, grantee: iam.IGrantable) -> None:
        """events:PutEvents on this bus only."""
        self.bus.grant_put_events_to(grantee)

    def _dual_stack_suffix(self) -> str:
        if self._suffixes is None:
            self._suffixes = CfnMapping(
                Stack.of(self),
                "DualStackDnsSuffix",
                mapping={partition: {"suffix": suffix} for partition, suffix in DUAL_STACK_SUFFIXES.items()},
            )
        return self._suffixes.find_in_map(Aws.PARTITION, "suffix")
