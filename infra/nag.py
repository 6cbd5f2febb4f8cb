"""The cdk-nag AwsSolutions findings this design accepts, each on the narrowest construct
and finding (`Rule[finding]`) that raises it, with the reason it is accepted.

cdk-nag 3 runs as a CDK policy-validation plugin: `app.synth()` fails on any finding that
is not acknowledged here, and writes cdk.out/validation-report.json.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct

from infra.api import WebSocket
from infra.cache import Cache
from infra.functions import Functions
from infra.http_api import HttpApi
from infra.jwt_secret import JwtSecret
from infra.storage import Storage

VPC_ACCESS_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
)
API_GATEWAY_LOGS_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)


def _pseudo(value: str, name: str) -> str:
    """How cdk-nag writes a pseudo parameter in a finding: the value when the stack's
    environment fixes it (the CLI always sets a region), else <AWS::Name>."""
    return f"<AWS::{name}>" if Token.is_unresolved(value) else value


def _connections_arn(websocket: WebSocket) -> str:
    stack = Stack.of(websocket)
    region, account = _pseudo(stack.region, "Region"), _pseudo(stack.account, "AccountId")
    api = f"<{websocket.api_logical_id}>"
    return f"arn:<AWS::Partition>:execute-api:{region}:{account}:{api}/{websocket.stage.stage_name}/*/@connections/*"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


def acknowledge_findings(
    *,
    storage: Storage,
    functions: Functions,
    websocket: WebSocket,
    http_api: HttpApi,
    cache: Cache | None,
    jwt_secret: JwtSecret,
) -> None:
    acknowledge(
        storage.bucket,
        "S1",
        "Only this stack's functions read and write the bucket, under scenes/, and CloudTrail "
        "records who did; server access logs would add a second bucket to audit nothing new.",
    )
    for name, function in functions.functions.items():
        acknowledge(
            function,
            "L1",
            "Python 3.13 is the design's runtime: the layer is built for cp313 (layers/build.py) and "
            "the code is tested on it. The runtime moves together with the layer build.",
        )
        role = function.role
        assert role is not None
        if functions.config.tracing:
            acknowledge(
                role,
                "IAM5[Resource::*]",
                "X-Ray tracing (added by Lambda's active tracing): xray:PutTraceSegments and "
                "xray:PutTelemetryRecords support no resource-level permissions.",
            )
        if function.is_bound_to_vpc:
            acknowledge(
                role,
                f"IAM4[{VPC_ACCESS_POLICY}]",
                "A function in a VPC must create and delete its network interfaces; these EC2 actions "
                "support no resource-level permissions, and this managed policy holds exactly them.",
            )
        if name in functions.manages_connections:
            acknowledge(
                role,
                f"IAM5[Resource::{_connections_arn(websocket)}]",
                "Connection ids exist only at runtime; the grant is this API's own stage and its "
                "@connections resource (post, get, delete), nothing else.",
            )
        if name in functions.uses_blobs:
            acknowledge(
                role,
                f"IAM5[Resource::<{storage.bucket_logical_id}.Arn>/scenes/*]",
                "Object keys are per scene and created at runtime (collab/durable_log.py); the grant "
                "is the scenes/ prefix of this stack's bucket only.",
            )
        if name in functions.uses_versions:
            acknowledge(
                role,
                f"IAM5[Resource::<{storage.bucket_logical_id}.Arn>/versions/*]",
                "Version payloads are keyed by scene and version id, created at runtime "
                "(collab/versions.py); the grant is the versions/ prefix of this stack's bucket only.",
            )
        if name in functions.uses_exports:
            acknowledge(
                role,
                f"IAM5[Resource::<{storage.bucket_logical_id}.Arn>/exports/*]",
                "Answers over Lambda's response limit get a fresh key each (collab/http_routes.py), "
                "read once by a presigned URL; the grant is the exports/ prefix of this stack's bucket only.",
            )
    for route_key, route in websocket.routes.items():
        if route_key != websocket.authorized_route:
            acknowledge(
                route,
                "APIG4",
                "A WebSocket API authorizes once, at $connect (the REQUEST authorizer); every later "
                "route runs on a connection it admitted and carries its identity in "
                "requestContext.authorizer. API Gateway allows an authorizer on $connect only.",
            )
    for http_route in http_api.routes.values():
        acknowledge(
            http_route,
            "APIG4",
            "The function verifies the bearer token itself (collab/http_routes.py), with the token "
            "modes of the WebSocket authorizer, so every refusal is the protocol's JSON {code, "
            "message}; an API Gateway authorizer would answer 401/403 with a body of its own.",
        )
    if websocket.account_role is not None:
        acknowledge(
            websocket.account_role,
            f"IAM4[{API_GATEWAY_LOGS_POLICY}]",
            "The account-wide role API Gateway writes stage logs with; this AWS managed policy is "
            "the one the API Gateway documentation prescribes for it.",
        )
    if jwt_secret.generated is not None:
        acknowledge(
            jwt_secret.generated,
            "SMG4",
            "The HS256 key is shared with the token issuer: rotating it here alone would reject every "
            "token. Rotate it together with the issuer (docs/deploy.md).",
        )
    if cache is not None and cache.replication_group is not None:
        acknowledge(
            cache.replication_group,
            "AEC6",
            "No AUTH token: only the functions' security group can reach the cache, in private "
            "subnets, over TLS (transit encryption required); a token would be one more secret to "
            "fetch at every cold start, matching what ElastiCache Serverless here does.",
        )
