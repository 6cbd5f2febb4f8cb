"""`python -m devstack` with the HTTP API: HTTP_URL on its own line in the READY block,
answering through the real http function, and the stage's bus reachable the way tests
read change events (a rule to an SQS queue in moto), from outside the stack's process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from collabctl.local_state import read_state
from devstack.event_bus import EVENT_BUS_NAME, subscribe
from devstack.services import local_client

ROOT = Path(__file__).resolve().parents[2]


def test_ready_block_has_http_url_and_the_bus_delivers_to_a_queue(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_CLUSTER")}
    argv = ["--no-demo", "--port", "0", "--state-file", str(state_file)]
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip() == "READY":
                break
        info = dict(line.split("=", 1) for line in lines if "=" in line)
        http_url = info["HTTP_URL"]
        assert f"HTTP_URL={http_url}" in lines
        assert lines.index(f"HTTP_URL={http_url}") < lines.index("READY")
        assert urlsplit(http_url).hostname == "127.0.0.1"
        assert urlsplit(http_url).port not in (None, urlsplit(info["WS_URL"]).port)
        assert urlsplit(http_url).path == ""

        try:
            with urllib.request.urlopen(f"{http_url}/scenes/s-1", timeout=60) as response:
                status, request_id = response.status, response.headers["apigw-requestid"]
        except urllib.error.HTTPError as refused:
            status, request_id = refused.code, refused.headers["apigw-requestid"]
        assert request_id and status < 500  # the http function's answer, whatever it is

        state = read_state(state_file)
        assert state is not None
        bus = state.env[EVENT_BUS_NAME]
        assert bus == "collab-local-events"
        queue = subscribe(info["MOTO_URL"], bus, {"source": ["collab.test"]})
        local_client("events", info["MOTO_URL"]).put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": "collab.test",
                    "DetailType": "Version Created",
                    "Detail": json.dumps({"sceneId": "s-1", "versionId": "v-1"}),
                }
            ]
        )
        (event,) = queue.receive(count=1)
        assert (event["detail-type"], event["detail"]["versionId"]) == ("Version Created", "v-1")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
