"""Start the local services the stack and the tests use: Redis (standalone or as a
one-node cluster), moto's server, and the DynamoDB tables of functions/tables.json.

Everything binds to 127.0.0.1 on a free port and is stopped by the returned handle.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
TABLES_FILE = FUNCTIONS_DIR / "tables.json"

# Any credentials work against moto and the emulator; real ones are never needed locally.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            time.sleep(0.05)


@dataclass
class Service:
    """A running local service: its URL and how to stop it."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None = None
    workdir: tempfile.TemporaryDirectory[str] | None = None
    stop_hooks: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for hook in self.stop_hooks:
            hook()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.workdir is not None:
            self.workdir.cleanup()


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def start_redis(cluster: bool = False, port: int | None = None) -> Service:
    """A throwaway redis-server on a free port; as a one-node cluster owning every slot
    when `cluster` (the shape of ElastiCache Serverless), so cluster clients and hash tags
    are exercised for real. `port`: this one instead, so tests can restart a stopped
    server (empty: a fresh data dir and cluster identity) where its clients expect it."""
    binary = redis_server_binary()
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install redis-server)")
    if port is None:
        port = free_port()
        while cluster and port > 55535:  # a cluster node also listens on port + 10000
            port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix="collab-redis-")
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    args += ["--dir", workdir.name, "--protected-mode", "no"]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = Service(
        "redis-cluster" if cluster else "redis", f"redis://127.0.0.1:{port}/0", process, workdir
    )
    try:
        wait_for_port(port)
        if cluster:
            _assign_all_slots(port)
            service.url = f"redis://127.0.0.1:{port}"
    except BaseException:
        service.stop()
        raise
    return service


def _assign_all_slots(port: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 15
    while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
        if time.monotonic() > deadline:
            raise TimeoutError("one-node Redis cluster did not reach cluster_state:ok")
        time.sleep(0.05)
    client.close()


def start_fake_redis() -> Service:
    """The last resort of `make dev` when no redis-server is installed: fakeredis over TCP,
    in its own process (devstack/fake_redis.py says why)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.fake_redis", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = Service("fakeredis", f"redis://127.0.0.1:{port}/0", process)
    try:
        wait_for_port(port)
    except BaseException:
        service.stop()
        raise
    return service


def start_moto() -> Service:
    """moto's server (DynamoDB, S3, SSM, Secrets Manager, EventBridge, SQS) on a free
    loopback port."""
    port = free_port()
    env = {**os.environ, **LOCAL_AWS_ENV}
    # On waitress, not moto_server's Werkzeug, so connections stay alive (moto_server.py).
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    service = Service("moto", f"http://127.0.0.1:{port}", process)
    try:
        wait_for_port(port)
        _wait_http(service.url + "/moto-api/")
    except BaseException:
        service.stop()
        raise
    return service


def _wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def table_specs() -> dict[str, dict[str, str]]:
    specs = json.loads(TABLES_FILE.read_text())
    return {name: spec for name, spec in specs.items() if not name.startswith("_")}


def table_env(prefix: str) -> dict[str, str]:
    """The table-name environment variables for tables named `{prefix}-{logical name}`."""
    return {spec["env"]: f"{prefix}-{name}" for name, spec in table_specs().items()}


def create_tables(endpoint_url: str, prefix: str) -> dict[str, str]:
    """Create every table of functions/tables.json (with TTL enabled, as the CDK app does)
    and return the environment variables naming them."""
    client = local_client("dynamodb", endpoint_url)
    names = table_env(prefix)
    for name, spec in table_specs().items():
        table_name = f"{prefix}-{name}"
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": spec["partitionKey"], "KeyType": "HASH"},
                {"AttributeName": spec["sortKey"], "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": spec["partitionKey"], "AttributeType": "S"},
                {"AttributeName": spec["sortKey"], "AttributeType": "S"},
            ],
        )
        if "ttlAttribute" in spec:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["ttlAttribute"]},
            )
    return names


def create_bucket(endpoint_url: str, name: str) -> None:
    local_client("s3", endpoint_url).create_bucket(Bucket=name)


def allow_cors_gets(endpoint_url: str, name: str) -> None:
    """CORS on the bucket as the CDK app sets it when the HTTP API has CORS origins
    (infra/storage.py `_cors`): GET and HEAD from any origin, so that a page follows a 303
    of the HTTP API to a presigned URL (the browser sends `Origin: null` there)."""
    rule = {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "MaxAgeSeconds": 3600}
    local_client("s3", endpoint_url).put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [rule]})


def local_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client of `service` at moto, with the local credentials and region."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def aws_endpoint_env(moto_url: str) -> dict[str, str]:
    """Point boto3 (in this process and in the emulator's workers) at moto, per service."""
    return {
        **LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ENDPOINT_URL_SSM": moto_url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_url,
        "AWS_ENDPOINT_URL_SQS": moto_url,
    }
