"""One Lambda function per entry of routes.json "functions", with the dependency layer,
Powertools settings, X-Ray, and the grants each one needs (infra/needs.py) and no more.
The code asset is a built copy of functions/ with its Python 3.13 bytecode.

A function whose routes.json entry has `needsCache` gets the core's settings
(collab/settings.py) and, in a stage with a cache, runs in the VPC beside it: with
`egress: ipv6` allowed IPv6 out (Ipv6AllowedForDualStack) and told to post over IPv6 only
(FANOUT_IP_FAMILY), and pointed at EventBridge's dual-stack name when it sends change
events (infra/events.py). Without a cache (`cacheKind: none`) it runs outside any VPC,
with CACHE_KIND=none and no REDIS_URL."""

from __future__ import annotations

from aws_cdk import AssetHashType, Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from collab import settings
from infra.cache import Cache
from infra.config import StageConfig
from infra.events import Events
from infra.jwt_secret import JwtSecret
from infra.needs import BLOB_BUCKET_ACTIONS, BLOB_OBJECT_ACTIONS, NEEDS, TABLE_READ, TABLE_WRITE, Needs
from infra.network import Network
from infra.removal import removal_policy, retention
from infra.specs import FunctionSpec, RouteTable
from infra.storage import BLOB_PREFIX, EXPORTS_PREFIX, VERSIONS_PREFIX, Storage
from layers import function_code

METRICS_NAMESPACE = "Collab"
LAYER_COMPATIBLE_RUNTIME = lambda_.Runtime.PYTHON_3_13


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        routes: RouteTable,
        layer_dir: str,
        layer_key: str,
        storage: Storage,
        network: Network | None,
        cache: Cache | None,
        jwt_secret: JwtSecret,
        events: Events,
    ) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(routes.functions) - set(NEEDS))
        if missing:
            raise ValueError(f"routes.json functions {missing} have no entry in infra/needs.py NEEDS")
        self.config = config
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                layer_dir, asset_hash=layer_key, asset_hash_type=AssetHashType.CUSTOM
            ),
            compatible_runtimes=[LAYER_COMPATIBLE_RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description=f"{config.prefix} dependencies (requirements.txt, cp313 aarch64)",
            removal_policy=removal_policy(config),
        )
        # functions/ with its 3.13 bytecode (layers/function_code.py): /var/task is
        # read-only, so sources alone would be compiled again in every new environment.
        self.code = lambda_.Code.from_asset(str(function_code.build().path))
        self.manages_connections = {name for name in routes.functions if NEEDS[name].manages_connections}
        self.uses_blobs = {name for name in routes.functions if NEEDS[name].blobs}
        self.uses_versions = {name for name in routes.functions if NEEDS[name].versions}
        self.uses_exports = {name for name in routes.functions if NEEDS[name].exports}
        self.events = events
        self.functions: dict[str, lambda_.Function] = {}
        # What API Gateway invokes: the function, or its alias when it has provisioned
        # concurrency (which only an alias or version can carry).
        self.targets: dict[str, lambda_.IFunction] = {}
        for name, spec in routes.functions.items():
            function = self._function(spec, NEEDS[name], storage, network, cache, jwt_secret)
            self.functions[name] = function
            self.targets[name] = self._target(name, function)

    def _function(
        self,
        spec: FunctionSpec,
        needs: Needs,
        storage: Storage,
        network: Network | None,
        cache: Cache | None,
        jwt_secret: JwtSecret,
    ) -> lambda_.Function:
        config = self.config
        options = config.function_options(spec.name)
        function_name = config.function_name(spec.name)
        log_group = logs.LogGroup(
            self,
            f"{spec.name.capitalize()}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention(config.logRetentionDays),
            removal_policy=removal_policy(config),
        )
        role = iam.Role(
            self,
            f"{spec.name.capitalize()}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: least privilege",
        )
        # Logs go to this function's group only (not logs:* on *, as the managed policy has).
        log_group.grant_write(role)
        # Beside the cache, in the VPC; no cache, no VPC.
        vpc = network if spec.needs_cache else None
        if vpc is not None:
            # Creating and deleting its network interfaces in the VPC; these EC2 actions
            # support no resource-level restriction.
            role.add_managed_policy(
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            )
        environment = self._environment(spec, needs, storage, cache, jwt_secret, in_vpc=vpc is not None)
        function = lambda_.Function(
            self,
            spec.name.capitalize(),
            function_name=function_name,
            description=f"{config.prefix} {spec.name} ({spec.handler})",
            runtime=LAYER_COMPATIBLE_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=self.code,
            layers=[self.layer],
            role=role,
            memory_size=options.memoryMb or config.memoryMb,
            timeout=Duration.seconds(options.timeoutSeconds or config.timeoutSeconds),
            reserved_concurrent_executions=options.reservedConcurrency,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            log_group=log_group,
            environment=environment,
            vpc=vpc.vpc if vpc else None,
            vpc_subnets=vpc.private_subnets if vpc else None,
            security_groups=[vpc.function_security_group] if vpc else None,
            # IPv6 out of a dual-stack VPC: the only way to @connections with egress ipv6.
            ipv6_allowed_for_dual_stack=True if vpc and vpc.dual_stack else None,
        )
        self._grant(function, needs, storage, jwt_secret)
        return function

    def _environment(
        self,
        spec: FunctionSpec,
        needs: Needs,
        storage: Storage,
        cache: Cache | None,
        jwt_secret: JwtSecret,
        *,
        in_vpc: bool,
    ) -> dict[str, str]:
        config = self.config
        env = {
            "POWERTOOLS_SERVICE_NAME": config.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": config.logLevel,
        }
        if not config.tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        for table in needs.tables:
            env[storage.specs[table].env] = storage.tables[table].table_name
        if needs.verifies_tokens:
            env.update(jwt_secret.env())
        if spec.needs_cache:
            # collab.settings.Settings: every table, the bucket and the cache, plus tunables.
            env.update(storage.env())
            env[settings.SNAPSHOT_BUCKET] = storage.bucket.bucket_name
            if cache is None:
                env[settings.CACHE_KIND] = "none"
            else:
                env[settings.CACHE_KIND] = "redis"
                env[settings.REDIS_URL] = cache.url
                env[settings.REDIS_CLUSTER] = "true" if cache.cluster else "false"
            if config.dual_stack:
                # The VPC routes no IPv4 out: an IPv4 address of execute-api is a dead end.
                env[settings.FANOUT_IP_FAMILY] = "ipv6"
            env.update(config.settings)
        if needs.versions:
            env[settings.VERSION_RETENTION_DAYS] = str(config.versionRetentionDays)
        if needs.publishes_events:
            # IPv6 is the only way out of the VPC with egress ipv6 (infra/events.py).
            env.update(self.events.env(dual_stack=in_vpc and config.dual_stack))
        return env

    def _grant(
        self, function: lambda_.Function, needs: Needs, storage: Storage, jwt_secret: JwtSecret
    ) -> None:
        for table, level in needs.tables.items():
            storage.tables[table].grant(function, *(TABLE_WRITE if level == "write" else TABLE_READ))
        prefixes = [
            prefix
            for prefix, used in (
                (BLOB_PREFIX, needs.blobs),
                (VERSIONS_PREFIX, needs.versions),
                (EXPORTS_PREFIX, needs.exports),
            )
            if used
        ]
        if prefixes:
            bucket = storage.bucket
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=list(BLOB_OBJECT_ACTIONS),
                    resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
                )
            )
            function.add_to_role_policy(
                iam.PolicyStatement(actions=list(BLOB_BUCKET_ACTIONS), resources=[bucket.bucket_arn])
            )
        if needs.verifies_tokens:
            jwt_secret.grant_read(function)
        if needs.publishes_events:
            self.events.grant_put_events(function)

    def _target(self, name: str, function: lambda_.Function) -> lambda_.IFunction:
        provisioned = self.config.function_options(name).provisionedConcurrency
        if not provisioned:
            return function
        return lambda_.Alias(
            self,
            f"{name.capitalize()}Live",
            alias_name="live",
            version=function.current_version,
            provisioned_concurrent_executions=provisioned,
        )

    def grant_manage_connections(self, stage: apigwv2.WebSocketStage) -> None:
        """execute-api:ManageConnections on this API's stage, `@connections/*` only, and
        its endpoint to the functions whose events come from another API."""
        for name in self.manages_connections:
            stage.grant_management_api_access(self.functions[name])
            if NEEDS[name].needs_management_endpoint:
                self.functions[name].add_environment(settings.MANAGEMENT_ENDPOINT, stage.callback_url)
