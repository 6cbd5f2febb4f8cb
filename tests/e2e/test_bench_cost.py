"""The cost benchmark (bench/cost.py) in a very short run, so that it cannot rot silently: it
prints figures and asserts none of them, but its counters must count and agree with each
other. Plus the rules its moto counter and at-rest pricing apply, on fixed inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cost_model
from devstack.moto_server import item_size, read_units, write_units

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("cost") / "counts.json"
    command = [sys.executable, "-m", "bench.cost", "--parts", "typing,quiet", "--json", str(out)]
    # A third of a trace minute at 4x its pace (about 30 transactions), then 4 quiet clients
    # for 20 s (y-protocols renews every 15 to 18 s: each client at least once).
    command += ["--minutes", "0.3", "--speed", "4", "--settle", "1", "--tail", "2"]
    command += ["--quiet-clients", "4", "--quiet-seconds", "20", "--quiet-warmup", "3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=290, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "per active editor-hour" in done.stdout
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("cache", ["redis", "none"])
def test_typing_room_counters_count_and_agree(short_run: dict[str, Any], cache: str) -> None:
    typing = short_run["typing"][cache]
    traffic, window = typing["traffic"], typing["window"]
    assert typing["replayed"]["transactions"] > 20
    assert typing["converged"]["same"], typing["converged"]
    # Every edit goes in (alone or with its cursor move), and reaches the 4 others.
    assert traffic["frames_in"] >= typing["replayed"]["transactions"]
    pings = traffic["kinds_in"].get("ping", 0)
    assert traffic["frames_out"] >= traffic["frames_in"] - pings
    assert traffic["units_in"] >= traffic["frames_in"] and traffic["units_out"] >= traffic["frames_out"]
    assert traffic["connection_ms"] > 0
    # Each frame in is one invocation of the messages function, counted by the emulator.
    messages = [r for r in window["invocations"] if r["function"] == "messages"]
    assert abs(len(messages) - traffic["frames_in"]) <= 2
    assert all(r["memory_size_mb"] > 0 and r["duration_ms"] > 0 for r in messages)
    tables = window["moto"]["dynamodb"]
    writes = sum(op["write_units"] for ops in tables.values() for op in ops.values())
    reads = sum(op["read_units"] for ops in tables.values() for op in ops.values())
    assert writes >= typing["replayed"]["transactions"]  # each stored update is at least 1 WRU
    assert reads > 0
    assert not window["moto"]["uncounted"]
    # The cache is used when there is one, and only then.
    assert (sum(window["redis_requests"].values()) > 0) == (cache == "redis")


@pytest.mark.parametrize("cache", ["redis", "none"])
def test_quiet_room_counts_renewals(short_run: dict[str, Any], cache: str) -> None:
    quiet = short_run["quiet"][cache]
    traffic, window = quiet["traffic"], quiet["window"]
    # Each client renews its cursor every 15 s, so each sends at least one frame in 20 s.
    assert traffic["frames_in"] >= quiet["clients"]
    messages = [r for r in window["invocations"] if r["function"] == "messages"]
    assert abs(len(messages) - traffic["frames_in"]) <= 2
    assert traffic["connection_ms"] >= quiet["clients"] * 19_000


def test_item_sizes_follow_dynamodb_rules() -> None:
    # "DynamoDB item sizes and formats": names + values; numbers 1 byte per 2 digits + 1;
    # binary by raw bytes; maps and lists 3 bytes + 1 per element.
    assert item_size({"sceneId": {"S": "abc"}}) == 7 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"n": {"N": "0.0100"}}) == 1 + 2  # zeros trimmed: one digit
    assert item_size({"b": {"B": "AAAA"}}) == 1 + 3  # base64 of 3 bytes
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"BOOL": True}, {"NULL": True}]}}) == 1 + 3 + 2 * (1 + 1)
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(100, consistent=False) == 0.5 and read_units(0, consistent=True) == 1
    assert write_units(1024) == 1 and write_units(1025) == 2 and write_units(10, transactional=True) == 2


def test_at_rest_prices_what_the_template_creates() -> None:
    template = {
        "Resources": {
            "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
            "Ip": {"Type": "AWS::EC2::EIP", "Properties": {}},
            "Cache": {"Type": "AWS::ElastiCache::ServerlessCache", "Properties": {"Engine": "valkey"}},
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
            "Math": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"Metrics": [{"MetricStat": {}}, {"MetricStat": {}}, {"Expression": "a+b"}]},
            },
            "Endpoint": {
                "Type": "AWS::EC2::VPCEndpoint",
                "Properties": {"VpcEndpointType": "Interface", "SubnetIds": ["a", "b"]},
            },
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    items = {item.label: item for item in cost_model.at_rest_items(template)}
    assert items["NAT gateways"].quantity == 1
    assert items["CloudWatch alarm metrics"].quantity == 3
    assert items["interface VPC endpoints (per zone)"].quantity == 2
    assert items["NAT gateways"].usd == pytest.approx(0.045 * 730)
    empty = {item.label: item for item in cost_model.at_rest_items({"Resources": {}})}
    assert sum(item.usd for item in empty.values()) == 0
