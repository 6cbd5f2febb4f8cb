"""The HTTP API (API Gateway v2, payload format 2.0): the routes of routes.json
"httpRoutes", each integrated with its function, on a `$default` stage that deploys
itself, throttled like the WebSocket stage, with an access log that never holds a token.

No API Gateway authorizer: the function verifies `Authorization: Bearer` itself
(collab/http_routes.py), with the same token modes as the WebSocket authorizer, so every
refusal (401, 403) is the JSON `{"code", "message"}` of the protocol rather than API
Gateway's own `{"message": "Unauthorized"}`. A request API Gateway refuses before the
function (throttled: 429; an unknown route: 404) still gets API Gateway's body.

CORS (httpCorsOrigins, none by default) is answered by API Gateway: it replies to the
preflight OPTIONS itself, without a route, and adds the headers to every answer.
"""

from __future__ import annotations

import re

from aws_cdk import CfnElement, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from constructs import Construct

from infra.access_logs import access_logged
from infra.config import StageConfig
from infra.functions import Functions
from infra.specs import RouteTable

# Context variables only: no Authorization header (the token), query string or body. The
# path names the scene and the version, which is what an operator looks for.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTimeEpoch",
    "routeKey": "$context.routeKey",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "error": "$context.error.message",
}
# What a browser's request sends beyond the CORS-safelisted headers: the bearer token,
# and the type of a body (application/octet-stream and application/json are not safelisted).
CORS_HEADERS = ["authorization", "content-type"]
CORS_MAX_AGE = Duration.hours(1)


class HttpApi(Construct):
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
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=config.http_api_name,
            description=f"{config.prefix}: scenes, updates and versions over HTTP",
            create_default_stage=False,
            cors_preflight=_cors(config),
            # As the WebSocket API (infra/api.py): a stage whose functions leave over IPv6
            # serves IPv6 clients too.
            ip_address_type=apigwv2.IpAddressType.DUAL_STACK if config.dual_stack else None,
        )
        by_function = {
            name: integrations.HttpLambdaIntegration(
                f"{name.capitalize()}Integration",
                functions.targets[name],
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            )
            for name in sorted(set(routes.http_routes.values()))
        }
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for route_key, function_name in routes.http_routes.items():
            method, path = route_key.split(" ", 1)
            self.routes[route_key] = apigwv2.HttpRoute(
                self,
                _logical(route_key),
                http_api=self.api,
                route_key=apigwv2.HttpRouteKey.with_(path, apigwv2.HttpMethod(method)),
                integration=by_function[function_name],
            )

        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttleRateLimit, burst_limit=config.throttleBurstLimit
            ),
        )
        # HTTP APIs deliver access logs themselves (CloudWatch Logs vended delivery): no
        # account-wide role is involved, unlike the WebSocket stage.
        self.access_logs = access_logged(self, self.stage, config, ACCESS_LOG_FORMAT)

    @property
    def url(self) -> str:
        """https://{api}.execute-api.{region}.amazonaws.com, the `$default` stage's, without
        a trailing slash, as the local stack prints HTTP_URL."""
        return self.api.api_endpoint

    @property
    def api_logical_id(self) -> str:
        api = self.api.node.default_child
        assert isinstance(api, CfnElement)
        return Stack.of(self).get_logical_id(api)


def _cors(config: StageConfig) -> apigwv2.CorsPreflightOptions | None:
    if not config.httpCorsOrigins:
        return None
    return apigwv2.CorsPreflightOptions(
        allow_origins=list(config.httpCorsOrigins),
        allow_methods=[apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST],
        allow_headers=CORS_HEADERS,
        max_age=CORS_MAX_AGE,
    )


def _logical(route_key: str) -> str:
    """A construct id for a route key: GET /scenes/{sceneId}/versions -> GetScenesSceneIdVersions."""
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[^A-Za-z0-9]+", route_key) if word)
