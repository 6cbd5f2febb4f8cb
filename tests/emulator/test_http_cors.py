"""CORS on the emulator's HTTP API, as API Gateway answers it when an HTTP API has a CORS
configuration: the preflight is the gateway's own answer (no route, no function), allowed
origins get access-control-allow-origin on every answer, the function's own CORS headers
are ignored, and an API without the setting has no CORS at all."""

from __future__ import annotations

import http.client
import json
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.services import LOCAL_AWS_ENV
from emulator import Emulator, EmulatorConfig, run_in_thread
from emulator.config import HttpCors

HANDLER = '''
"""Records every invocation under RECORD_DIR; answers with CORS headers of its own."""
import json, os
from pathlib import Path


def lambda_handler(event, context):
    (Path(os.environ["RECORD_DIR"]) / event["requestContext"]["requestId"]).write_text(event["routeKey"])
    if event["routeKey"] == "GET /boom":
        raise RuntimeError("boom")
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "application/json",
            "access-control-allow-origin": "https://evil.example",
            "Access-Control-Allow-Credentials": "true",
        },
        "body": json.dumps({"route": event["routeKey"]}),
    }
'''

ROUTES = {
    "functions": {"api": {"handler": "corsapp.lambda_handler", "timeout": 5}},
    "routes": {},
    "httpRoutes": {
        "GET /scenes/{sceneId}/versions": "api",
        "POST /scenes/{sceneId}/versions": "api",
        "GET /boom": "api",
    },
}
PAGE = "http://127.0.0.1:8788"
PREFLIGHT = [
    ("Origin", PAGE),
    ("Access-Control-Request-Method", "POST"),
    ("Access-Control-Request-Headers", "authorization,content-type"),
]


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def cors(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("access-control-")}


@dataclass
class Api:
    emulator: Emulator
    record_dir: Path

    def request(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Answer:
        parts = urlsplit(self.emulator.http_url)
        assert parts.hostname is not None and parts.port is not None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=dict(headers))
            response = conn.getresponse()
            return Answer(response.status, response.msg, response.read())
        finally:
            conn.close()

    def invoked(self, answer: Answer) -> bool:
        return (self.record_dir / answer.headers["apigw-requestid"]).exists()


def _start(tmp_path_factory: pytest.TempPathFactory, cors: HttpCors) -> Iterator[Api]:
    code = tmp_path_factory.mktemp("cors-code")
    (code / "corsapp.py").write_text(textwrap.dedent(HANDLER))
    (code / "routes.json").write_text(json.dumps(ROUTES))
    records = tmp_path_factory.mktemp("cors-records")
    config = EmulatorConfig(
        routes_file=code / "routes.json",
        code_dir=code,
        env={**LOCAL_AWS_ENV, "RECORD_DIR": str(records)},
        max_environments=1,
        http_cors=cors,
    )
    with run_in_thread(config) as emu:
        yield Api(emu, records)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from _start(tmp_path_factory, HttpCors(allow_origins=(PAGE, "https://app.example.com")))


@pytest.fixture(scope="module")
def plain_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from _start(tmp_path_factory, HttpCors())


def test_a_preflight_is_answered_by_the_gateway_with_the_configured_headers(api: Api) -> None:
    answer = api.request("OPTIONS", "/scenes/s-1/versions", PREFLIGHT)
    assert answer.status == 204
    assert answer.body == b""
    assert answer.cors() == {
        "access-control-allow-origin": PAGE,
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "authorization,content-type",
        "access-control-max-age": "3600",
    }
    assert answer.headers["apigw-requestid"]
    assert not api.invoked(answer)


def test_a_preflight_needs_no_route(api: Api) -> None:
    answer = api.request("OPTIONS", "/no/such/route", PREFLIGHT)
    assert answer.status == 204
    assert answer.cors()["access-control-allow-origin"] == PAGE


def test_a_preflight_from_another_origin_gets_no_cors_headers(api: Api) -> None:
    answer = api.request(
        "OPTIONS", "/scenes/s-1/versions", [("Origin", "https://evil.example"), *PREFLIGHT[1:]]
    )
    assert answer.status == 204
    assert answer.cors() == {}
    assert not api.invoked(answer)


def test_an_options_request_that_is_no_preflight_is_routed(api: Api) -> None:
    # Without Access-Control-Request-Method it is an ordinary request: no OPTIONS route here.
    answer = api.request("OPTIONS", "/scenes/s-1/versions", [("Origin", PAGE)])
    assert answer.status == 404
    assert json.loads(answer.body) == {"message": "Not Found"}
    assert answer.cors() == {"access-control-allow-origin": PAGE}


def test_the_functions_answer_gets_the_gateways_cors_header_not_its_own(api: Api) -> None:
    answer = api.request("GET", "/scenes/s-1/versions", [("Origin", "https://app.example.com")])
    assert answer.status == 200
    assert api.invoked(answer)
    assert json.loads(answer.body) == {"route": "GET /scenes/{sceneId}/versions"}
    assert answer.cors() == {"access-control-allow-origin": "https://app.example.com"}
    assert answer.headers.get_all("access-control-allow-origin") == ["https://app.example.com"]


def test_the_gateways_own_answers_carry_it_too(api: Api) -> None:
    failed = api.request("GET", "/boom", [("Origin", PAGE)])
    assert failed.status == 500
    assert failed.cors() == {"access-control-allow-origin": PAGE}
    missing = api.request("GET", "/nothing", [("Origin", PAGE)])
    assert missing.status == 404
    assert missing.cors() == {"access-control-allow-origin": PAGE}


def test_no_origin_or_another_origin_gets_no_cors_header_and_none_of_the_functions(api: Api) -> None:
    for headers in ([], [("Origin", "https://evil.example")]):
        answer = api.request("GET", "/scenes/s-1/versions", headers)
        assert answer.status == 200
        assert answer.cors() == {}


def test_a_star_allows_any_origin(tmp_path_factory: pytest.TempPathFactory) -> None:
    for api in _start(tmp_path_factory, HttpCors(allow_origins=("*",))):
        preflight = api.request(
            "OPTIONS", "/scenes/s-1/versions", [("Origin", "https://anywhere.example"), *PREFLIGHT[1:]]
        )
        assert preflight.cors()["access-control-allow-origin"] == "*"
        answer = api.request("GET", "/scenes/s-1/versions", [("Origin", "https://anywhere.example")])
        assert answer.cors() == {"access-control-allow-origin": "*"}


def test_without_the_setting_there_is_no_cors(plain_api: Api) -> None:
    # No preflight answer of the gateway's: an OPTIONS request is routed like any other,
    # and the function's headers pass through untouched.
    preflight = plain_api.request("OPTIONS", "/scenes/s-1/versions", PREFLIGHT)
    assert preflight.status == 404
    assert preflight.cors() == {}
    answer = plain_api.request("GET", "/scenes/s-1/versions", [("Origin", PAGE)])
    assert answer.cors() == {
        "access-control-allow-origin": "https://evil.example",
        "access-control-allow-credentials": "true",
    }


@pytest.mark.parametrize(
    "origin", ["127.0.0.1:8788", "http://host/path", "ftp://host", "http://host:8788/", ""]
)
def test_an_origin_that_is_no_origin_is_refused_with_its_name(origin: str) -> None:
    with pytest.raises(ValueError, match="is not scheme://host"):
        HttpCors(allow_origins=(origin,))
