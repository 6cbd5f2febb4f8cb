"""The whole deployment of one stage: network, storage, cache, functions, the WebSocket
and HTTP APIs, the change-event bus, monitoring, and the outputs a frontend and an
operator need. docs/deploy.md, "Stage shapes", says what each shape (egress nat or ipv6,
or cacheKind none) builds."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.api import WebSocket
from infra.cache import Cache
from infra.config import PROJECT, StageConfig
from infra.events import Events
from infra.functions import Functions
from infra.http_api import HttpApi
from infra.jwt_secret import JwtSecret
from infra.monitoring import Monitoring
from infra.nag import acknowledge_findings
from infra.network import Network
from infra.specs import load_routes, load_tables
from infra.storage import Storage


class CollabStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        layer_dir: str,
        layer_key: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, description=f"Yjs collaboration backend ({config.stage})", **kwargs
        )
        Tags.of(self).add("project", PROJECT)
        Tags.of(self).add("stage", config.stage)
        routes = load_routes()
        self.config = config
        # The VPC exists for the cache alone: `cacheKind: none` has neither.
        self.network = Network(self, "Network", config=config) if config.has_vpc else None
        self.storage = Storage(self, "Storage", config=config, tables=load_tables())
        self.cache = (
            Cache(self, "Cache", config=config, network=self.network) if self.network is not None else None
        )
        self.jwt_secret = JwtSecret(self, "JwtSecret", config=config)
        self.events = Events(self, "Events", config=config)
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            routes=routes,
            layer_dir=layer_dir,
            layer_key=layer_key,
            storage=self.storage,
            network=self.network,
            cache=self.cache,
            jwt_secret=self.jwt_secret,
            events=self.events,
        )
        self.websocket = WebSocket(self, "WebSocket", config=config, routes=routes, functions=self.functions)
        self.functions.grant_manage_connections(self.websocket.stage)
        self.http_api = HttpApi(self, "Http", config=config, routes=routes, functions=self.functions)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            websocket=self.websocket,
            http_api=self.http_api,
            functions=self.functions.functions,
        )

        CfnOutput(self, "WebSocketUrl", value=self.websocket.url, description="wss:// URL clients connect to")
        CfnOutput(
            self,
            "ManagementEndpoint",
            value=self.websocket.management_endpoint,
            description="API Gateway Management API (POST @connections) of the stage",
        )
        CfnOutput(self, "HttpUrl", value=self.http_api.url, description="https:// URL of the HTTP API")
        CfnOutput(
            self,
            "EventBusName",
            value=self.events.bus.event_bus_name,
            description="EventBridge bus of the change events (Scene Changed, Version Created, Version Restored)",
        )
        for name, table in self.storage.tables.items():
            CfnOutput(self, f"{name.capitalize()}TableName", value=table.table_name)
        CfnOutput(self, "SnapshotBucketName", value=self.storage.bucket.bucket_name)
        if config.dashboard:
            CfnOutput(self, "DashboardName", value=config.dashboard_name)
        acknowledge_findings(
            storage=self.storage,
            functions=self.functions,
            websocket=self.websocket,
            http_api=self.http_api,
            cache=self.cache,
            jwt_secret=self.jwt_secret,
        )
