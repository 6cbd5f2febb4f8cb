"""An HTTP API's Lambda proxy integration, payload format 2.0, both ways: the event API
Gateway hands the function for a request, and how it reads what the function returns.
Pure functions of the request and the result.

Where the developer guide ("Create AWS Lambda proxy integrations for HTTP APIs") is silent,
this follows events captured from live HTTP APIs:
- rawPath and requestContext.http.path are the path percent-decoded (an HTTP API decodes
  it, so "%2F" is a "/" there too); rawQueryString is the query as sent.
- The body is a string only for text/*, application/json, application/xml and
  application/javascript; any other content type, or none, is base64 (isBase64Encoded).
  A request without a body has no "body"; one without a query string has no
  queryStringParameters, one without cookies no "cookies", as on AWS.
- A response with statusCode and no content-type goes out as text/plain; charset=utf-8,
  and multiValueHeaders (payload format 1.0's) are ignored: format 2.0 has no such field.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from emulator.events import now_ms, request_time
from emulator.ids import gateway_id

_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
# Framing is API Gateway's (and here aiohttp's), never the function's.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class MalformedResponse(ValueError):
    """A result API Gateway cannot turn into a response: the client gets a 500."""


@dataclass(frozen=True)
class HttpRequest:
    """One request as the client sent it."""

    method: str
    raw_path: str  # percent-encoded, without the query
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    domain_name: str  # the Host the client asked for
    port: int  # the port it reached (x-forwarded-port)
    scheme: str = "http"
    protocol: str = "HTTP/1.1"
    request_id: str = field(default_factory=gateway_id)
    time_epoch_ms: int = field(default_factory=now_ms)

    @property
    def path(self) -> str:
        """The decoded path: what routes match and what the event's rawPath shows."""
        return unquote(self.raw_path)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_event(
    request: HttpRequest, route_key: str, path_parameters: dict[str, str], api_id: str, account_id: str
) -> dict[str, Any]:
    headers, cookies = _headers_and_cookies(request)
    domain = request.domain_name
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": request_time(request.time_epoch_ms),
            "timeEpoch": request.time_epoch_ms,
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        text = _as_text(request.body, headers.get("content-type", ""))
        if text is None:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _headers_and_cookies(request: HttpRequest) -> tuple[dict[str, str], list[str]]:
    """Lower-cased names, repeated headers joined with commas; Cookie headers become the
    cookies list (one entry per cookie) and leave the headers."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
        elif lower in headers:
            headers[lower] = f"{headers[lower]},{value}"
        else:
            headers[lower] = value
    # What API Gateway adds before the request reaches the integration.
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers["x-forwarded-port"] = str(request.port)
    headers["x-forwarded-proto"] = request.scheme
    headers.setdefault("x-amzn-trace-id", _trace_id(request.time_epoch_ms))
    return headers, cookies


def _trace_id(epoch_ms: int) -> str:
    return f"Root=1-{epoch_ms // 1000:08x}-{os.urandom(12).hex()}"


def _query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded ('+' is a space), repeated names joined with commas, blank values kept."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def _as_text(body: bytes, content_type: str) -> str | None:
    """The body as a string if API Gateway passes it as one, else None (base64)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in _TEXT_TYPES):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Not text after all: base64 loses nothing (what AWS does here is unverified).
        return None


def http_answer(result: Any) -> HttpAnswer:
    """The response API Gateway sends for a function's result (format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # "If your Lambda function returns valid JSON and doesn't return a statusCode":
        # 200, application/json, the result as the body (a string as it is).
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpAnswer(200, [("content-type", "application/json")], body.encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode is {status!r}, not an HTTP status")
    headers = _response_headers(result.get("headers"))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponse("cookies is not a list of strings")
    headers += [("set-cookie", cookie) for cookie in cookies]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", DEFAULT_CONTENT_TYPE))
    return HttpAnswer(status, headers, _response_body(result))


def _response_headers(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise MalformedResponse("headers is not an object")
    headers = []
    for name, value in raw.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str):
            raise MalformedResponse(f"header {name!r} is not a string")
        if str(name).lower() not in _FRAMING_HEADERS:
            headers.append((str(name), value))
    return headers


def _response_body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse("body is not a string")
    if not result.get("isBase64Encoded"):
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as bad:
        raise MalformedResponse(f"isBase64Encoded, but the body is not base64: {bad}") from None
