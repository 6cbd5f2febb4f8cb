"""Shared helpers of the test handlers: record events, wait on test-controlled files, reply."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3

_client: Any = None


def record_dir() -> Path:
    return Path(os.environ["RECORD_DIR"])


def record(name: str, data: Any) -> None:
    path = record_dir() / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # readers never see half a file


def wait_for_file(name: str, timeout: float = 10.0) -> bool:
    """A pause point the test controls: returns once the test creates RECORD_DIR/name."""
    deadline = time.monotonic() + timeout
    while not (record_dir() / name).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def management(event: dict[str, Any]) -> Any:
    """The Management API client, as a handler on AWS builds it: https://{domainName}/{stage}."""
    global _client
    if _client is None:
        ctx = event["requestContext"]
        _client = boto3.client(
            "apigatewaymanagementapi", endpoint_url=f"http://{ctx['domainName']}/{ctx['stage']}"
        )
    return _client


def reply(event: dict[str, Any], payload: dict[str, Any]) -> None:
    management(event).post_to_connection(
        ConnectionId=event["requestContext"]["connectionId"], Data=json.dumps(payload).encode()
    )
