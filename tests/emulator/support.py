"""Helpers of the emulator tests: a real WebSocket client (websockets' sync client), the
real boto3 Management API client, and waiting on what the test app records."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
from websockets.sync.client import ClientConnection, connect

from devstack.services import LOCAL_AWS_ENV
from emulator import EmulatorConfig

APP_DIR = Path(__file__).parent / "app"


def app_config(record_dir: Path, routes: str = "routes.json", **overrides: Any) -> EmulatorConfig:
    return EmulatorConfig(
        routes_file=APP_DIR / routes,
        code_dir=APP_DIR,
        env={**LOCAL_AWS_ENV, "RECORD_DIR": str(record_dir)},
        **overrides,
    )


def open_ws(url: str, query: str = "token=allow", **kwargs: Any) -> ClientConnection:
    # Browsers offer permessage-deflate; API Gateway declines it. Ask for none, to keep
    # frame sizes on the wire exactly what the test sends.
    return connect(f"{url}?{query}" if query else url, compression=None, open_timeout=15, **kwargs)


def recv_json(ws: ClientConnection, timeout: float = 15.0) -> Any:
    return json.loads(ws.recv(timeout=timeout))


def send_json(ws: ClientConnection, payload: Any) -> None:
    ws.send(json.dumps(payload))


def management_client(endpoint_url: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name=LOCAL_AWS_ENV["AWS_REGION"],
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
    )


def wait_for_record(record_dir: Path, name: str, timeout: float = 15.0) -> Any:
    path = record_dir / f"{name}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"the test app never recorded {name}"
        time.sleep(0.01)
    return json.loads(path.read_text())


def whoami(ws: ClientConnection) -> dict[str, Any]:
    """The message event the test app's `whoami` route received."""
    send_json(ws, {"action": "whoami"})
    answer: dict[str, Any] = recv_json(ws)
    return answer
