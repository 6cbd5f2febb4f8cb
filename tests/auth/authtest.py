"""What the auth tests share besides fixtures: constants, the loopback JWKS server and a
Lambda context object. (A module of its own: `conftest` is ambiguous to import, since
tests/ has one too.)"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ISSUER = "https://issuer.example.test/collab"
AUDIENCE = "collab-test"
KID = "test-key-1"
SECRET = "a-development-secret-of-at-least-32-bytes"


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "collab-authorizer"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:collab-authorizer"
    aws_request_id = "6f1c2a8e-4d0b-4f5e-9a51-0c7d2b1e3f40"


class JwksServer:
    """Serves {"keys": [the test key]} at /jwks.json and counts the fetches."""

    def __init__(self, public_jwk: dict[str, Any]) -> None:
        self.body = json.dumps({"keys": [public_jwk]}).encode()
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
