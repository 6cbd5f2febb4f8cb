"""The hot-state cache: ElastiCache Serverless for Valkey by default, or a node-based
replication group (cluster mode, one or more shards) with `cacheKind: nodes`.

Both are cluster mode with TLS, so the code always uses a cluster client over rediss://
(REDIS_CLUSTER=true), and both are encrypted at rest. No AUTH token: only the functions'
security group can reach the port (see infra/nag.py for the reasoning).
"""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_elasticache as elasticache
from constructs import Construct

from infra.config import StageConfig
from infra.network import Network

REDIS_PORT = 6379
# ElastiCache Serverless serves reads from replicas on the next port.
SERVERLESS_READER_PORT = 6380


class Cache(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, network: Network) -> None:
        super().__init__(scope, construct_id)
        subnet_ids = network.vpc.select_subnets(subnet_type=network.private_subnets.subnet_type).subnet_ids
        security_group_ids = [network.cache_security_group.security_group_id]
        self.serverless: elasticache.CfnServerlessCache | None = None
        self.replication_group: elasticache.CfnReplicationGroup | None = None
        if config.cacheKind == "serverless":
            host, port = self._serverless(config, subnet_ids, security_group_ids)
            network.allow_cache_port(REDIS_PORT, SERVERLESS_READER_PORT)
        else:
            host, port = self._nodes(config, subnet_ids, security_group_ids)
            network.allow_cache_port(REDIS_PORT, REDIS_PORT)
        self.url = Fn.join("", ["rediss://", host, ":", port])
        self.cluster = True

    def _serverless(
        self, config: StageConfig, subnet_ids: list[str], security_group_ids: list[str]
    ) -> tuple[str, str]:
        limits = None
        if config.cacheMaxDataGb or config.cacheMaxEcpuPerSecond:
            limits = elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    unit="GB", maximum=config.cacheMaxDataGb
                )
                if config.cacheMaxDataGb
                else None,
                ecpu_per_second=elasticache.CfnServerlessCache.ECPUPerSecondProperty(
                    maximum=config.cacheMaxEcpuPerSecond
                )
                if config.cacheMaxEcpuPerSecond
                else None,
            )
        cache = elasticache.CfnServerlessCache(
            self,
            "Serverless",
            engine="valkey",
            major_engine_version=config.cacheEngineVersion,
            serverless_cache_name=config.cache_name,
            description=f"{config.prefix} hot document state",
            subnet_ids=subnet_ids,
            security_group_ids=security_group_ids,
            cache_usage_limits=limits,
        )
        self.serverless = cache
        return cache.attr_endpoint_address, cache.attr_endpoint_port

    def _nodes(
        self, config: StageConfig, subnet_ids: list[str], security_group_ids: list[str]
    ) -> tuple[str, str]:
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            cache_subnet_group_name=config.cache_name,
            description=f"{config.prefix} cache subnets",
            subnet_ids=subnet_ids,
        )
        replicated = config.cacheReplicas > 0
        group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_id=config.cache_name,
            replication_group_description=f"{config.prefix} hot document state",
            engine="valkey",
            engine_version=f"{config.cacheEngineVersion}.0",
            cache_parameter_group_name=f"default.valkey{config.cacheEngineVersion}.cluster.on",
            cache_node_type=config.cacheNodeType,
            cluster_mode="enabled",
            num_node_groups=config.cacheShards,
            replicas_per_node_group=config.cacheReplicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=security_group_ids,
            port=REDIS_PORT,
        )
        self.replication_group = group
        return group.attr_configuration_end_point_address, group.attr_configuration_end_point_port
