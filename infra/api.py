"""The WebSocket API: the routes of routes.json, the REQUEST authorizer on $connect, and a
throttled stage whose access log never holds a token.

The authorizer has no identity sources. API Gateway refuses a connection (401, without
calling the authorizer) when any identity source is missing, and a client sends its token
in the query string *or* in Sec-WebSocket-Protocol, so listing either would lock out the
other. The ApiGatewayV2 CreateAuthorizer reference: "For a REQUEST authorizer, this is
optional"; it is left out of the template, and the authorizer reads both places itself
(collab/auth/handshake.py). The cost is that API Gateway caches nothing, which WebSocket
authorizers do not do anyway.
"""

from __future__ import annotations

from aws_cdk import CfnElement, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.access_logs import access_logged
from infra.config import StageConfig
from infra.functions import Functions
from infra.specs import RouteTable

# Context variables only: no $context.requestOverride, query string, headers or bodies,
# which is where a token travels. $context.authorizer.principalId is the user id.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTimeEpoch",
    "connectionId": "$context.connectionId",
    "routeKey": "$context.routeKey",
    "eventType": "$context.eventType",
    "messageDirection": "$context.messageDirection",
    "status": "$context.status",
    "ip": "$context.identity.sourceIp",
    "userId": "$context.authorizer.principalId",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "authorizerStatus": "$context.authorizer.status",
    "authorizerLatency": "$context.authorizer.latency",
    "error": "$context.error.message",
}


class WebSocket(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        routes: RouteTable,
        functions: Functions,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=config.api_name,
            description=f"{config.prefix}: Yjs collaboration over WebSockets",
            route_selection_expression=routes.selection_expression,
            # egress ipv6: the functions post to @connections over IPv6, which the API
            # answers on only when dual-stack (its clients may still use IPv4).
            ip_address_type=apigwv2.IpAddressType.DUAL_STACK if config.dual_stack else None,
        )
        authorizer = authorizers.WebSocketLambdaAuthorizer(
            "Authorizer",
            functions.targets[routes.authorizer_function],
            authorizer_name=f"{config.prefix}-authorizer",
            identity_source=[],
        )
        self.authorized_route = routes.authorizer_route
        self.routes: dict[str, apigwv2.WebSocketRoute] = {}
        for route_key, function_name in routes.routes.items():
            self.routes[route_key] = self.api.add_route(
                route_key,
                integration=integrations.WebSocketLambdaIntegration(
                    f"{_logical(route_key)}Integration", functions.targets[function_name]
                ),
                authorizer=authorizer if route_key == routes.authorizer_route else None,
            )
        self._drop_identity_sources()

        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=config.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttleRateLimit, burst_limit=config.throttleBurstLimit
            ),
        )
        stage_resource = self.stage.node.default_child
        assert isinstance(stage_resource, apigwv2.CfnStage)
        self.access_logs = access_logged(self, self.stage, config, ACCESS_LOG_FORMAT)
        # Execution logs and data traces would record request data; access logs suffice.
        stage_resource.add_property_override("DefaultRouteSettings.LoggingLevel", "OFF")
        stage_resource.add_property_override("DefaultRouteSettings.DataTraceEnabled", False)
        self.account_role: iam.Role | None = None
        if config.apiGatewayAccountRole:
            stage_resource.node.add_dependency(self._account_logging_role())

    def _drop_identity_sources(self) -> None:
        for child in self.api.node.find_all():
            if isinstance(child, apigwv2.CfnAuthorizer):
                child.add_property_deletion_override("IdentitySource")

    def _account_logging_role(self) -> apigw.CfnAccount:
        """API Gateway writes a WebSocket stage's access log with the region's account-wide
        CloudWatch role. Kept on deletion: other APIs of the account rely on it."""
        role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.account_role = role
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        return account

    @property
    def api_logical_id(self) -> str:
        api = self.api.node.default_child
        assert isinstance(api, CfnElement)
        return Stack.of(self).get_logical_id(api)

    @property
    def url(self) -> str:
        """wss://{api}.execute-api.{region}.amazonaws.com/{stage}"""
        return self.stage.url

    @property
    def management_endpoint(self) -> str:
        """https://{api}.execute-api.{region}.amazonaws.com/{stage}"""
        return self.stage.callback_url


def _logical(route_key: str) -> str:
    """A construct id for a route key: $connect -> Connect, sync -> Sync."""
    return route_key.lstrip("$").capitalize()
