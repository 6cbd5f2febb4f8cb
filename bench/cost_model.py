"""Counts to dollars (bench/cost.py): what a measured window would bill per stage shape, and
what each shape's stack costs a month at rest, priced by bench/prices.py.

Stage shapes: `nat` (VPC, one NAT gateway, ElastiCache Serverless: cdk.json's dev today),
`ipv6` (VPC with an egress-only internet gateway, no NAT, ElastiCache Serverless) and
`none` (no VPC, no cache; presence in DynamoDB). The per-use figures are measured on the
local stack with its Redis, so they are the nat/ipv6 figures; the two differ only in the
NAT gateway's data processing. The at-rest figures come from each shape's synthesized
CloudFormation template (its resources, counted), so they follow infra/ as it changes.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cost_meter import Window
from bench.prices import HOURS_PER_MONTH, price

SHAPES = {"nat": {}, "ipv6": {"egress": "ipv6"}, "none": {"cacheKind": "none"}}
GIB = 2**30
# Estimates where nothing here can measure the real figure (docs/cost.md says why):
# - a POST @connections through NAT carries, besides the message, its HTTP request line
#   and headers (host, date, content type and length, a SigV4 Authorization header of
#   about 250 bytes) and the 200 response's headers, in TLS records over a kept-alive
#   connection: about 1.2 KB each way together;
POST_OVERHEAD_BYTES = 1200
# - Lambda writes START, END and REPORT lines per invocation (about 300 bytes together);
PLATFORM_LOG_BYTES = 300
# - X-Ray's default sampling: the first request each second, then 5 % (per function).
XRAY_RESERVOIR_PER_SECOND = 1.0
XRAY_RATE = 0.05


@dataclass
class Traffic:
    """The WebSocket side of a window, summed over the clients (bench/cost/room.mjs)."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    units_in: int = 0
    units_out: int = 0
    kinds_in: Counter[str] = field(default_factory=Counter)
    kinds_out: Counter[str] = field(default_factory=Counter)
    connection_ms: float = 0.0
    connects: int = 0

    @classmethod
    def between(cls, before: Mapping[str, Any], after: Mapping[str, Any]) -> Traffic:
        old = {c["id"]: c for c in before["clients"]}
        traffic = cls()
        for client in after["clients"]:
            prior = old.get(client["id"])
            for side in ("in", "out"):
                now, then = client[side], (prior[side] if prior else None)
                frames = now["frames"] - (then["frames"] if then else 0)
                setattr(traffic, f"frames_{side}", getattr(traffic, f"frames_{side}") + frames)
                traffic_bytes = now["bytes"] - (then["bytes"] if then else 0)
                setattr(traffic, f"bytes_{side}", getattr(traffic, f"bytes_{side}") + traffic_bytes)
                units = now["units"] - (then["units"] if then else 0)
                setattr(traffic, f"units_{side}", getattr(traffic, f"units_{side}") + units)
                kinds = getattr(traffic, f"kinds_{side}")
                for kind, n in now["kinds"].items():
                    kinds[kind] += n - (then["kinds"].get(kind, 0) if then else 0)
            traffic.connection_ms += client["connectedMs"] - (prior["connectedMs"] if prior else 0)
            traffic.connects += client["connects"] - (prior["connects"] if prior else 0)
        return traffic


@dataclass
class LambdaUse:
    invocations: int
    cold_starts: int
    billed_ms: int
    memory_mb: int
    duration_ms: float

    @property
    def gb_seconds(self) -> float:
        return self.billed_ms / 1000 * self.memory_mb / 1024


def lambda_use(invocations: Iterable[Mapping[str, Any]]) -> dict[str, LambdaUse]:
    """Per function: each invocation billed per 1 ms rounded up, its INIT too when it was a
    cold start (billed for ZIP functions on managed runtimes since 2025-08-01)."""
    use: dict[str, LambdaUse] = {}
    for record in invocations:
        entry = use.setdefault(
            record["function"], LambdaUse(0, 0, 0, int(record.get("memory_size_mb") or 0), 0.0)
        )
        entry.invocations += 1
        entry.duration_ms += float(record.get("duration_ms", 0.0))
        entry.billed_ms += math.ceil(float(record.get("duration_ms", 0.0)))
        if record.get("cold_start") and record.get("init_ms") is not None:
            entry.cold_starts += 1
            entry.billed_ms += math.ceil(float(record["init_ms"]))
    return use


def ecpu_range(window: Window) -> tuple[float, float]:
    """ElastiCache Serverless ECPUs: 1 per KB a simple command transfers (at least 1), more
    for commands that take more vCPU time than a simple one. Only a range can be had here:

    low:  each request at max(1, its request's KB) (MONITOR: exact), plus the replies' KB
          beyond one per request (INFO stats gives only their total);
    high: the same with every reply KB added in full, plus each script run (EVALSHA) at
          the extra time it executes for (commandstats, over a simple GET/SET's) divided
          by the whole server CPU a simple GET/SET costs, reading and replying included
          (/proc): the vCPU time a script takes beyond a simple command's, in simple
          commands."""
    # MONITOR's figures, never below what INFO's totals imply (every request is at least
    # 1 ECPU and at least its KB; every script run is a request): a monitor that missed
    # lines can only make the estimate fall back to those bounds.
    script_calls = window.redis.calls.get("evalsha", 0) + window.redis.calls.get("eval", 0)
    requests = max(sum(window.redis_requests.values()), script_calls)
    request_ecpu = max(window.redis_request_kb_ecpu, window.redis.input_bytes / 1024, float(requests))
    reply_kb = window.redis.output_bytes / 1024
    low = request_ecpu + max(0.0, reply_kb - requests)
    scripts = max(
        window.redis_requests.get("EVALSHA", 0) + window.redis_requests.get("EVAL", 0), script_calls
    )
    script_usec = window.redis.usec.get("evalsha", 0) + window.redis.usec.get("eval", 0)
    extra = 0.0
    if scripts and script_calls and window.simple_command_cpu_usec > 0:
        beyond = max(0.0, script_usec / script_calls - window.simple_command_usec)
        extra = scripts * beyond / window.simple_command_cpu_usec
    return low, request_ecpu + extra + reply_kb


def ecpu_estimate(window: Window) -> float:
    """What the cost model charges: the high end of `ecpu_range`."""
    return ecpu_range(window)[1]


def access_log_line_bytes(api_source: Path) -> int:
    """One API Gateway access log line (infra/api.py ACCESS_LOG_FORMAT, read without
    importing the CDK) with typical values: 12-24 characters each."""
    import ast

    tree = ast.parse(api_source.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ACCESS_LOG_FORMAT" for t in node.targets
        ):
            keys = ast.literal_eval(node.value)
            return len(json.dumps({k: "x" * 18 for k in keys}))
    return 400


@dataclass
class Item:
    label: str
    quantity: float
    unit: str
    usd: float


def usage_items(traffic: Traffic, window: Window, shape: str, access_line_bytes: int) -> list[Item]:
    """What the window would bill in a stage of `shape`: nat and ipv6 measured with Redis
    (they differ in the NAT's data processing only), none measured without a cache."""
    items: list[Item] = []
    units = traffic.units_in + traffic.units_out
    items.append(
        Item("API Gateway messages (32 KB units, in + out)", units, "units", units * price("apigw_message"))
    )
    minutes = traffic.connection_ms / 60000
    items.append(
        Item("API Gateway connection-minutes", minutes, "min", minutes * price("apigw_connection_minute"))
    )
    gb_out = traffic.bytes_out / GIB
    items.append(Item("data transfer out to clients", gb_out, "GB", gb_out * price("data_transfer_out_gb")))
    use = lambda_use(window.invocations)
    invocations = sum(u.invocations for u in use.values())
    items.append(Item("Lambda requests", invocations, "invocations", invocations * price("lambda_request")))
    gb_s = sum(u.gb_seconds for u in use.values())
    items.append(Item("Lambda duration (arm64)", gb_s, "GB-s", gb_s * price("lambda_gb_second_arm")))
    rru = sum(op["read_units"] for ops in window.moto["dynamodb"].values() for op in ops.values())
    wru = sum(op["write_units"] for ops in window.moto["dynamodb"].values() for op in ops.values())
    items.append(Item("DynamoDB read request units", rru, "RRU", rru * price("dynamodb_rru")))
    items.append(Item("DynamoDB write request units", wru, "WRU", wru * price("dynamodb_wru")))
    s3 = window.moto["s3"]
    tier1 = sum(n for op, n in s3.items() if op.split("-")[0] in {"PUT", "POST", "LIST", "COPY"})
    tier2 = sum(n for op, n in s3.items() if op.split("-")[0] in {"GET", "HEAD"})
    items.append(Item("S3 PUT/POST/LIST requests", tier1, "requests", tier1 * price("s3_tier1_request")))
    items.append(Item("S3 GET/HEAD requests", tier2, "requests", tier2 * price("s3_tier2_request")))
    if shape != "none":
        ecpu = ecpu_estimate(window)
        items.append(
            Item("ElastiCache ECPUs (estimated, high end)", ecpu, "ECPU", ecpu * price("valkey_ecpu"))
        )
    if shape == "nat":
        posted = (traffic.bytes_out + traffic.frames_out * POST_OVERHEAD_BYTES) / GIB
        items.append(
            Item("NAT data processing (posts, estimated)", posted, "GB", posted * price("nat_gateway_gb"))
        )
    log_bytes = (
        window.handler_log_bytes
        + invocations * PLATFORM_LOG_BYTES
        + (traffic.frames_in + 2 * traffic.connects) * access_line_bytes
    )
    items.append(
        Item(
            "CloudWatch Logs ingested (handlers, platform, access)",
            log_bytes / GIB,
            "GB",
            log_bytes / GIB * price("logs_ingest_gb"),
        )
    )
    traces = sum(
        min(u.invocations, window.seconds * XRAY_RESERVOIR_PER_SECOND)
        + XRAY_RATE * max(0.0, u.invocations - window.seconds * XRAY_RESERVOIR_PER_SECOND)
        for u in use.values()
    )
    items.append(Item("X-Ray traces recorded (estimated)", traces, "traces", traces * price("xray_trace")))
    return items


# -- at rest -----------------------------------------------------------------------------------
def synthesize(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudFormation template of the stage with `overrides` (cdk.json's context plus
    these), without cdk-nag and with an empty dependency layer (the layer's content costs
    nothing at rest). Raises whatever the CDK app raises for a shape it does not support."""
    import os

    # As the Makefile does: jsii's banner about Node 20 would land in the report.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from aws_cdk import App, Environment

    from infra.app import build_stack, project_context
    from layers import build as layer_build

    with tempfile.TemporaryDirectory(prefix="collab-cost-synth-") as out:
        layer_dir = Path(out) / "layer"
        (layer_dir / "python").mkdir(parents=True)
        app = App(context=project_context({**overrides, "nag": "false"}), outdir=str(Path(out) / "cdk.out"))
        stack = build_stack(
            app, layer_build.Layer(path=layer_dir, key="bench-cost", size_bytes=0), Environment()
        )
        app.synth()
        return dict(json.loads((Path(out) / "cdk.out" / f"{stack.stack_name}.template.json").read_text()))


def _alarm_metrics(properties: Mapping[str, Any]) -> int:
    """An alarm is billed per metric it watches (a math alarm: each metric it reads)."""
    metrics = properties.get("Metrics")
    if not metrics:
        return 1
    return max(1, sum(1 for m in metrics if "MetricStat" in m))


def at_rest_items(template: Mapping[str, Any]) -> list[Item]:
    """A month of the stack with nobody connected, from its template's resources."""
    resources = template.get("Resources", {})
    by_type: Counter[str] = Counter(r["Type"] for r in resources.values())
    hours = HOURS_PER_MONTH
    items: list[Item] = []
    nat = by_type["AWS::EC2::NatGateway"]
    items.append(Item("NAT gateways", nat, "gateways", nat * hours * price("nat_gateway_hour")))
    eips = by_type["AWS::EC2::EIP"]
    items.append(
        Item(
            "public IPv4 addresses (Elastic IPs)", eips, "addresses", eips * hours * price("public_ipv4_hour")
        )
    )
    serverless = [r for r in resources.values() if r["Type"] == "AWS::ElastiCache::ServerlessCache"]
    items.append(
        Item(
            "ElastiCache Serverless minimum storage",
            len(serverless),
            "caches",
            len(serverless) * price("valkey_minimum_gb") * hours * price("valkey_storage_gb_hour"),
        )
    )
    if by_type["AWS::ElastiCache::ReplicationGroup"]:
        items.append(
            Item(
                "ElastiCache node-based cache (not priced here)",
                by_type["AWS::ElastiCache::ReplicationGroup"],
                "groups",
                float("nan"),
            )
        )
    interface = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    zones = sum(len(r["Properties"].get("SubnetIds", [])) or 1 for r in interface)
    items.append(
        Item(
            "interface VPC endpoints (per zone)",
            zones,
            "endpoint-zones",
            zones * hours * price("interface_endpoint_az_hour"),
        )
    )
    secrets = by_type["AWS::SecretsManager::Secret"]
    items.append(Item("Secrets Manager secrets", secrets, "secrets", secrets * price("secret_month")))
    keys = by_type["AWS::KMS::Key"]
    items.append(Item("KMS customer managed keys", keys, "keys", keys * price("kms_key_month")))
    alarm_metrics = sum(
        _alarm_metrics(r.get("Properties", {}))
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    )
    items.append(
        Item("CloudWatch alarm metrics", alarm_metrics, "metrics", alarm_metrics * price("alarm_month"))
    )
    dashboards = by_type["AWS::CloudWatch::Dashboard"]
    items.append(
        Item("CloudWatch dashboards", dashboards, "dashboards", dashboards * price("dashboard_month"))
    )
    groups = by_type["AWS::Logs::LogGroup"]
    # Nothing is written at rest; what traffic wrote is kept for RetentionInDays at
    # $0.03/GB-month (docs/cost.md), which belongs to the traffic, not to the idle stack.
    items.append(Item("log groups (storage of what traffic wrote only)", groups, "groups", 0.0))
    free = [
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::Lambda::Function",
        "AWS::SNS::Topic",
        "AWS::EC2::EgressOnlyInternetGateway",
    ]
    counted = ", ".join(f"{by_type[t]} {t.split('::')[-1]}" for t in free if by_type[t])
    items.append(Item(f"no charge at rest: {counted}", 0, "", 0.0))
    provisioned = sum(
        1
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Alias" and r["Properties"].get("ProvisionedConcurrencyConfig")
    )
    if provisioned:
        items.append(
            Item("Lambda provisioned concurrency (not priced here)", provisioned, "aliases", float("nan"))
        )
    return items
