"""The demo of `make dev`: a seeded scene, a development token for it, and the demo page
(client/demo-dist) served over HTTP with a `/config.json` that signs a token per visitor.

Development only: anybody who can reach the page gets editor access to the demo scene.
"""

from __future__ import annotations

import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from collab.access import SceneAccess
from collabctl.devtoken import mint_dev_token
from devstack.services import ROOT, free_port

if TYPE_CHECKING:
    from devstack.stack import LocalStack

DEMO_SCENE = "demo-scene"
DEMO_DIR = ROOT / "client" / "demo-dist"
DEMO_PORT = 8788
# Seeded users: one per role, so each can be tried from the command line.
SEEDED = {"director": "owner", "writer": "editor", "critic": "viewer"}
TOKEN_TTL = 12 * 3600


def seed_scene(stack: LocalStack) -> dict[str, str]:
    access = SceneAccess(stack.env["ACCESS_TABLE"], _dynamodb(stack))
    for user, role in SEEDED.items():
        access.grant(DEMO_SCENE, user, role)
    return {
        "SCENE_ID": DEMO_SCENE,
        "TOKEN": mint_dev_token(stack.jwt_secret, "writer", DEMO_SCENE, name="Writer", ttl=TOKEN_TTL),
        "USERS": ",".join(f"{user}:{role}" for user, role in SEEDED.items()),
        "JWT_SECRET": stack.jwt_secret,
    }


def serve_demo_page(stack: LocalStack) -> dict[str, str]:
    access = SceneAccess(stack.env["ACCESS_TABLE"], _dynamodb(stack))
    handler = partial(DemoHandler, stack, access, directory=str(DEMO_DIR))
    try:
        server = ThreadingHTTPServer((stack.host, DEMO_PORT), handler)
    except OSError:
        server = ThreadingHTTPServer((stack.host, free_port()), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    stack.add_cleanup(server.shutdown)
    port = server.server_address[1]
    return {"DEMO_URL": f"http://{stack.host}:{port}/"}


class DemoHandler(SimpleHTTPRequestHandler):
    def __init__(self, stack: LocalStack, access: SceneAccess, *args: Any, **kwargs: Any) -> None:
        self.stack = stack
        self.access = access
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/config.json":
            self._config(parse_qs(url.query).get("name", [""])[0])
            return
        if not DEMO_DIR.exists():
            self.send_error(503, "the demo page is not built: run `npm --prefix client run build:demo`")
            return
        super().do_GET()

    def _config(self, name: str) -> None:
        name = name.strip()[:40] or "Guest"
        user_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "guest"
        self.access.grant(DEMO_SCENE, user_id, SEEDED.get(user_id, "editor"))
        body = json.dumps(
            {
                "wsUrl": self.stack.ws_url,
                "sceneId": DEMO_SCENE,
                "token": mint_dev_token(self.stack.jwt_secret, user_id, DEMO_SCENE, name=name, ttl=TOKEN_TTL),
                "userName": name,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the emulator's invocation log is the interesting one


def _dynamodb(stack: LocalStack) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name=stack.env["AWS_DEFAULT_REGION"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
    )


ON_READY = [seed_scene, serve_demo_page]
