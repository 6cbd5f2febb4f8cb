"""The emulator's HTTP API (API Gateway v2, payload format 2.0) over real sockets, with a
handler of its own (written to a temporary code dir) in real execution environments:
the event a function gets, how its result reaches the client, and API Gateway's own
answers (404, 413, 500, 503)."""

from __future__ import annotations

import base64
import http.client
import json
import re
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.services import LOCAL_AWS_ENV
from emulator import Emulator, EmulatorConfig, RouteTable, RouteTableError, run_in_thread
from emulator.config import HTTP_PAYLOAD_LIMIT

HANDLER = '''
"""Answers by route key; records every invocation under RECORD_DIR by request id."""
import base64, json, os, time
from pathlib import Path


def lambda_handler(event, context):
    request_id = event["requestContext"]["requestId"]
    (Path(os.environ["RECORD_DIR"]) / request_id).write_text(event["routeKey"])
    route = event["routeKey"]
    if route == "POST /binary":
        body = event.get("body", "")
        data = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream", "x-length": len(data)},
            "body": base64.b64encode(data).decode(),
            "isBase64Encoded": True,
        }
    if route == "GET /plain":
        return {"hello": "world"}
    if route == "GET /string":
        return "just text"
    if route == "GET /cookies":
        return {"statusCode": 200, "cookies": ["a=1; Path=/", "b=2"], "body": "no type"}
    if route == "GET /boom":
        raise RuntimeError("boom")
    if route in ("GET /sleep/{seconds}", "GET /slow/{seconds}"):
        time.sleep(float(event["pathParameters"]["seconds"]))
        (Path(os.environ["RECORD_DIR"]) / (request_id + ".done")).write_text("")
        return {"statusCode": 204}
    if route == "GET /malformed":
        return {"statusCode": "teapot"}
    if route == "GET /big":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
'''

ROUTES = {
    "functions": {
        "api": {"handler": "httpapp.lambda_handler", "timeout": 1},
        "slow": {"handler": "httpapp.lambda_handler", "timeout": 5},
    },
    "routes": {},
    "httpRoutes": {
        "_comment": "ignored, as in routes",
        "GET /scenes/{sceneId}": "api",
        "GET /scenes/literal": "api",
        "GET /scenes/{sceneId}/versions/{versionId}": "api",
        "POST /echo": "api",
        "POST /binary": "api",
        "ANY /files/{path+}": "api",
        "GET /plain": "api",
        "GET /string": "api",
        "GET /cookies": "api",
        "GET /boom": "api",
        "GET /sleep/{seconds}": "api",
        "GET /slow/{seconds}": "slow",
        "GET /malformed": "api",
        "GET /big": "api",
    },
}
# Below the slow function's timeout: its invocations outlast the integration.
HTTP_TIMEOUT = 2.5
NOT_FOUND = {"message": "Not Found"}
TOO_LARGE = {"message": "Request Entity Too Large"}
INTERNAL = {"message": "Internal Server Error"}


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> dict[str, Any]:
        """The event the echo routes got."""
        assert self.status == 200, (self.status, self.body[:300])
        found: dict[str, Any] = self.json()
        return found


@dataclass
class Api:
    emulator: Emulator
    record_dir: Path

    @property
    def host(self) -> str:
        return urlsplit(self.emulator.http_url).netloc

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
        chunks: Sequence[bytes] | None = None,
    ) -> Answer:
        """One request on a fresh connection, headers sent exactly as given (repeats too)."""
        parts = urlsplit(self.emulator.http_url)
        assert parts.hostname is not None and parts.port is not None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if chunks is not None:
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for chunk in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
            else:
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
            response = conn.getresponse()
            return Answer(response.status, response.msg, response.read())
        finally:
            conn.close()

    def invoked(self, answer: Answer) -> bool:
        return (self.record_dir / answer.headers["apigw-requestid"]).exists()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    code = tmp_path_factory.mktemp("http-code")
    (code / "httpapp.py").write_text(textwrap.dedent(HANDLER))
    (code / "routes.json").write_text(json.dumps(ROUTES))
    records = tmp_path_factory.mktemp("http-records")
    config = EmulatorConfig(
        routes_file=code / "routes.json",
        code_dir=code,
        env={**LOCAL_AWS_ENV, "RECORD_DIR": str(records)},
        max_environments=2,
        http_timeout=HTTP_TIMEOUT,
    )
    with run_in_thread(config) as emu:
        yield Api(emu, records)


def test_path_parameters_and_query_strings_reach_the_function_decoded(api: Api) -> None:
    raw_query = "text=body&x=1&x=2&flag&plus=a+b&enc=a%2Bb%26c&empty="
    answer = api.request("GET", f"/scenes/s%201/versions/v-2?{raw_query}", headers=[("User-Agent", "t/1")])
    event = answer.event
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /scenes/{sceneId}/versions/{versionId}"
    assert event["pathParameters"] == {"sceneId": "s 1", "versionId": "v-2"}
    assert event["rawPath"] == "/scenes/s 1/versions/v-2"  # decoded, as an HTTP API does
    assert event["rawQueryString"] == raw_query
    assert event["queryStringParameters"] == {
        "text": "body",
        "x": "1,2",
        "flag": "",
        "plus": "a b",
        "enc": "a+b&c",
        "empty": "",
    }
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/scenes/s 1/versions/v-2",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "t/1",
    }
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["requestId"] == answer.headers["apigw-requestid"]
    assert context["accountId"] == api.emulator.config.account_id
    assert context["apiId"] == api.emulator.config.http_api_id
    assert context["domainName"] == api.host
    assert context["domainPrefix"] == api.host.split(".")[0]
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 30
    # A GET without a body or cookies has neither field.
    assert "body" not in event and "cookies" not in event
    assert event["isBase64Encoded"] is False


def test_no_query_no_path_parameters_no_fields(api: Api) -> None:
    event = api.request("GET", "/scenes/literal").event
    assert event["routeKey"] == "GET /scenes/literal"  # a literal path beats a variable
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event and "pathParameters" not in event


def test_headers_lower_cased_repeats_joined_cookies_apart(api: Api) -> None:
    headers = [
        ("X-Probe", "first"),
        ("X-Probe", "second"),
        ("Cookie", "a=1; b=2"),
        ("Cookie", "c=3"),
        ("Authorization", "Bearer t.o.k"),
    ]
    event = api.request("GET", "/scenes/s-1", headers=headers).event
    got = event["headers"]
    assert got["x-probe"] == "first,second"
    assert got["authorization"] == "Bearer t.o.k"
    assert got["host"] == api.host
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-port"] == str(api.emulator.http_port)
    assert got["x-amzn-trace-id"].startswith("Root=1-")
    assert all(name == name.lower() for name in got)
    assert "cookie" not in got
    assert event["cookies"] == ["a=1", "b=2", "c=3"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "text/plain",
        "text/csv",
        "application/xml",
        "application/javascript",
    ],
)
def test_a_text_body_arrives_as_a_string(api: Api, content_type: str) -> None:
    body = '{"scene": "λ-1", "n": 1}'
    event = api.request("POST", "/echo", body.encode(), [("Content-Type", content_type)]).event
    assert event["isBase64Encoded"] is False
    assert event["body"] == body
    assert event["headers"]["content-type"] == content_type
    assert event["headers"]["content-length"] == str(len(body.encode()))


@pytest.mark.parametrize(
    "content_type",
    ["application/octet-stream", None, "application/x-www-form-urlencoded", "application/vnd.api+json"],
)
def test_any_other_body_arrives_as_base64(api: Api, content_type: str | None) -> None:
    body = b"a=1&b=2"
    headers = [("Content-Type", content_type)] if content_type else []
    event = api.request("POST", "/echo", body, headers).event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_binary_round_trip_through_base64_both_ways(api: Api) -> None:
    body = bytes(range(256)) * 64
    answer = api.request("POST", "/binary", body, [("Content-Type", "application/octet-stream")])
    assert answer.status == 201
    assert answer.body == body  # the function's base64 body, decoded by API Gateway
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-length"] == str(len(body))  # a number, sent as a string


def test_a_body_near_lambdas_limit_goes_through(api: Api) -> None:
    body = bytes(range(256)) * (4 * 1024 * 4)  # 4 MB; 5.3 MB in base64
    answer = api.request("POST", "/binary", body, [("Content-Type", "application/octet-stream")])
    assert answer.status == 201 and answer.body == body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nowhere"),
        ("DELETE", "/scenes/s-1"),  # a route's path with another method
        ("HEAD", "/scenes/s-1"),
        ("GET", "/scenes/s-1/"),  # a trailing slash is another path
        ("GET", "/scenes//versions/v-1"),  # a variable is never empty
        ("GET", "/scenes/s%2F1"),  # decoded, "%2F" is a separator
        ("GET", "/files/"),
        ("GET", "/"),
    ],
)
def test_no_route_is_not_found_without_invoking(api: Api, method: str, path: str) -> None:
    answer = api.request(method, path)
    assert answer.status == 404
    if method != "HEAD":
        assert answer.json() == NOT_FOUND
    assert answer.headers["content-type"] == "application/json"
    assert not api.invoked(answer)


def test_a_greedy_route_takes_any_method_and_the_rest_of_the_path(api: Api) -> None:
    for method in ("GET", "DELETE", "PUT"):
        event = api.request(method, "/files/a/b%20c/d.txt").event
        assert event["routeKey"] == "ANY /files/{path+}"
        assert event["pathParameters"] == {"path": "a/b c/d.txt"}
        assert event["requestContext"]["http"]["method"] == method


def test_over_the_payload_limit_is_413_without_invoking(api: Api) -> None:
    over = b"x" * (HTTP_PAYLOAD_LIMIT + 1)
    answer = api.request("POST", "/echo", over, [("Content-Type", "text/plain")])
    assert (answer.status, answer.json()) == (413, TOO_LARGE)
    assert not api.invoked(answer)
    # Without a Content-Length the body is read up to the limit, no further.
    chunked = api.request("POST", "/echo", chunks=[b"y" * (1024 * 1024)] * 11)
    assert (chunked.status, chunked.json()) == (413, TOO_LARGE)
    assert not api.invoked(chunked)


def test_an_event_over_lambdas_payload_limit_is_413_without_invoking(api: Api) -> None:
    # 5 MB is under the HTTP API's limit, but 6.7 MB once base64 in the event.
    body = b"\x00" * (5 * 1024 * 1024)
    answer = api.request("POST", "/binary", body, [("Content-Type", "application/octet-stream")])
    assert (answer.status, answer.json()) == (413, TOO_LARGE)
    assert not api.invoked(answer)


def test_a_result_without_status_code_is_json_200(api: Api) -> None:
    plain = api.request("GET", "/plain")
    assert (plain.status, plain.json()) == (200, {"hello": "world"})
    assert plain.headers["content-type"] == "application/json"
    text = api.request("GET", "/string")
    assert (text.status, text.body) == (200, b"just text")
    assert text.headers["content-type"] == "application/json"


def test_cookies_become_set_cookie_headers_and_the_type_defaults_to_text(api: Api) -> None:
    answer = api.request("GET", "/cookies")
    assert answer.status == 200 and answer.body == b"no type"
    assert answer.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/boom", "/sleep/3", "/malformed", "/big"])
def test_a_failed_or_unreadable_invocation_is_500(api: Api, path: str) -> None:
    # An error, the function's own timeout (1 s), a statusCode that is no status, a
    # response over Lambda's 6 MB.
    answer = api.request("GET", path)
    assert (answer.status, answer.json()) == (500, INTERNAL)
    assert answer.headers["content-type"] == "application/json"
    assert api.invoked(answer)


def test_the_integration_timeout_is_503_and_the_invocation_runs_on(api: Api) -> None:
    started = time.monotonic()
    answer = api.request("GET", "/slow/4")
    waited = time.monotonic() - started
    assert (answer.status, answer.json()) == (503, {"message": "Service Unavailable"})
    assert HTTP_TIMEOUT <= waited < 4
    done = api.record_dir / (answer.headers["apigw-requestid"] + ".done")
    deadline = time.monotonic() + 10
    while not done.exists():
        assert time.monotonic() < deadline, "the invocation was cut short"
        time.sleep(0.05)


def test_the_http_api_has_a_port_of_its_own(api: Api) -> None:
    assert api.emulator.http_url == f"http://127.0.0.1:{api.emulator.http_port}"
    assert api.emulator.http_port != api.emulator.port
    # The WebSocket API's port knows nothing of the HTTP routes.
    conn = http.client.HTTPConnection("127.0.0.1", api.emulator.port, timeout=10)
    try:
        conn.request("GET", "/scenes/s-1")
        assert conn.getresponse().status == 404
    finally:
        conn.close()


@pytest.mark.parametrize(
    "key",
    [
        "GET scenes",
        "FETCH /scenes",
        "GET /scenes/",
        "GET /a//b",
        "GET /{proxy+}/x",
        "GET /a{b}",
        "GET /{x}/{x}",
    ],
)
def test_a_route_key_api_gateway_would_refuse_fails_at_load(key: str) -> None:
    raw = {"functions": {"f": {"handler": "m.h"}}, "httpRoutes": {key: "f"}}
    with pytest.raises(RouteTableError, match="route"):
        RouteTable.parse(raw, 29.0)


def test_an_http_route_to_an_unknown_function_fails_at_load() -> None:
    raw = {"functions": {"f": {"handler": "m.h"}}, "httpRoutes": {"GET /a": "g"}}
    with pytest.raises(RouteTableError, match="unknown function 'g'"):
        RouteTable.parse(raw, 29.0)
