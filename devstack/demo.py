"""The demo of `make dev`: two seeded scenes, a development token, and the demo pages
(client/demo-dist) served over HTTP with a `/config.json` that signs a token per visitor and
names the WebSocket API and the HTTP API (the history panel; the HTTP API allows the
page's origin, CORS).

- `demo-scene` (index.html, the screenplay page) starts with a short scene in Fountain
  (client/demo/sample-scene.fountain), written once here at start-up through the handlers'
  own storage path, before the page is served. Seeding from a page that finds the doc
  empty would race: two pages opened at once would both insert the sample.
- `demo-rich` (rich.html, Tiptap) starts empty.

Development only: anybody who can reach the page gets editor access to the demo scenes
(and `critic` gets viewer access, to try the read-only editor).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from pycrdt import Doc, Text

from collab.access import SceneAccess
from collab.blobs import BlobStore
from collab.cache import connect
from collab.client_ids import ClientIds
from collab.documents import Documents, validate_update
from collab.durable_log import DurableLog
from collab.hot_state import HotState
from collab.settings import Settings
from collabctl.devtoken import mint_dev_token
from devstack.services import ROOT

if TYPE_CHECKING:
    from devstack.stack import LocalStack

DEMO_SCENE = "demo-scene"
RICH_SCENE = "demo-rich"
SCENES = (DEMO_SCENE, RICH_SCENE)
# The Y.Text the screenplay page binds (client/demo/App.tsx reads the same name).
SCENE_TEXT = "scene"
SAMPLE_SCENE = ROOT / "client" / "demo" / "sample-scene.fountain"
DEMO_DIR = ROOT / "client" / "demo-dist"
# Seeded users: one per role, so each can be tried from the command line.
SEEDED = {"director": "owner", "writer": "editor", "critic": "viewer"}
TOKEN_TTL = 12 * 3600


def seed_scene(stack: LocalStack) -> dict[str, str]:
    dynamodb = _dynamodb(stack)
    access = SceneAccess(stack.env["ACCESS_TABLE"], dynamodb)
    for scene in SCENES:
        for user, role in SEEDED.items():
            access.grant(scene, user, role)
    write_sample_scene(stack, dynamodb)
    return {
        "SCENE_ID": DEMO_SCENE,
        "TOKEN": mint_dev_token(stack.jwt_secret, "writer", DEMO_SCENE, name="Writer", ttl=TOKEN_TTL),
        "USERS": ",".join(f"{user}:{role}" for user, role in SEEDED.items()),
        "JWT_SECRET": stack.jwt_secret,
    }


def write_sample_scene(stack: LocalStack, dynamodb: Any) -> None:
    """The sample scene as the first update of `demo-scene`, stored as the `update` handler
    stores an edit (validated, durable log, then the Redis tail), unless the scene has
    content already (a REDIS_URL shared with an earlier run, or a second call)."""
    settings = Settings.from_env(stack.env)
    documents = Documents(
        DurableLog(dynamodb, settings.documents_table, BlobStore(_s3(stack), settings.snapshot_bucket)),
        HotState(connect(settings.redis_url, settings.redis_cluster)),
        cache_tail_limit=settings.cache_tail_limit,
        log_tail_limit=settings.log_tail_limit,
    )
    if documents.load(DEMO_SCENE).state != b"\x00\x00":
        return
    # A 32-bit client id, as Yjs picks them (pycrdt's own are wider).
    doc: Doc[Text] = Doc(client_id=secrets.randbelow(2**32 - 1) + 1)
    doc[SCENE_TEXT] = Text(SAMPLE_SCENE.read_text(encoding="utf-8"))
    update = doc.get_update()
    if not validate_update(update):
        raise RuntimeError("the sample scene encodes to an empty update")
    # Bound to the owner like any first write, so nobody else can write under its id.
    ClientIds(dynamodb, settings.documents_table).bind(DEMO_SCENE, doc.client_id, "director")
    documents.append(DEMO_SCENE, update)


def serve_demo_page(stack: LocalStack) -> dict[str, str]:
    access = SceneAccess(stack.env["ACCESS_TABLE"], _dynamodb(stack))
    handler = partial(DemoHandler, stack, access, directory=str(DEMO_DIR))
    # The port the stack chose before the emulator started (8788 when the stack has its
    # usual port; with `--port 0`, tests or a second stack, a free one, so a test run never
    # takes the port a developer's `make dev` expects): the HTTP API allows its origin, so
    # another port would leave the page's history panel refused by CORS.
    try:
        server = ThreadingHTTPServer((stack.host, stack.demo_port), handler)
    except OSError as taken:
        raise RuntimeError(
            f"the demo page's port {stack.demo_port} was free when the stack started and is taken now; "
            "start the stack again"
        ) from taken
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    stack.add_cleanup(server.shutdown)
    port = server.server_address[1]
    return {
        "DEMO_URL": f"http://{stack.host}:{port}/",
        "DEMO_RICH_URL": f"http://{stack.host}:{port}/rich.html",
    }


class DemoHandler(SimpleHTTPRequestHandler):
    def __init__(self, stack: LocalStack, access: SceneAccess, *args: Any, **kwargs: Any) -> None:
        self.stack = stack
        self.access = access
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/config.json":
            query = parse_qs(url.query)
            self._config(query.get("name", [""])[0], query.get("scene", [DEMO_SCENE])[0])
            return
        if not DEMO_DIR.exists():
            self.send_error(503, "the demo page is not built: run `npm --prefix client run build:demo`")
            return
        super().do_GET()

    def _config(self, name: str, scene: str) -> None:
        if scene not in SCENES:
            self.send_error(404, f"no demo scene {scene!r}; the demo scenes are {', '.join(SCENES)}")
            return
        name = name.strip()[:40] or "Guest"
        user_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "guest"
        role = SEEDED.get(user_id, "editor")
        self.access.grant(scene, user_id, role)
        body = json.dumps(
            {
                "wsUrl": self.stack.ws_url,
                # The HTTP API (versions); it allows this page's origin (LocalStack.demo_origins).
                "httpUrl": self.stack.http_url,
                "sceneId": scene,
                "token": mint_dev_token(self.stack.jwt_secret, user_id, scene, name=name, ttl=TOKEN_TTL),
                "userName": name,
                # What was granted; the server's `connected` message is the authority.
                "role": role,
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
    return _client(stack, "dynamodb")


def _s3(stack: LocalStack) -> Any:
    return _client(stack, "s3")


def _client(stack: LocalStack, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=stack.moto_url,
        region_name=stack.env["AWS_DEFAULT_REGION"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
    )


ON_READY = [seed_scene, serve_demo_page]
