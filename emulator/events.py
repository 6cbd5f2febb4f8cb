"""The events API Gateway hands to Lambda for a WebSocket API (Lambda proxy integration),
and the REQUEST authorizer's event. Pure functions of what the connection knows."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.ids import gateway_id

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Api:
    api_id: str
    stage: str
    region: str
    account_id: str

    def method_arn(self, route_key: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/{route_key}"


@dataclass
class Handshake:
    """What the client sent with its upgrade request."""

    headers: Sequence[tuple[str, str]]
    query: Sequence[tuple[str, str]]
    source_ip: str
    user_agent: str
    domain_name: str
    connection_id: str = field(default_factory=gateway_id)
    connected_at_ms: int = field(default_factory=lambda: now_ms())


def now_ms() -> int:
    return int(time.time() * 1000)


def request_time(epoch_ms: int) -> str:
    """API Gateway's requestTime, e.g. "09/Feb/2019:11:39:00 +0000" (locale-independent)."""
    t = time.gmtime(epoch_ms / 1000)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"


def _single_and_multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value  # the last value wins, as in API Gateway's single-value maps
        multi.setdefault(key, []).append(value)
    return single, multi


def _request_context(
    api: Api, hs: Handshake, route_key: str, event_type: str, request_id: str
) -> dict[str, Any]:
    epoch = now_ms()
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(epoch),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": hs.connected_at_ms,
        "requestTimeEpoch": epoch,
        "identity": {"sourceIp": hs.source_ip, "userAgent": hs.user_agent},
        "requestId": request_id,
        "domainName": hs.domain_name,
        "connectionId": hs.connection_id,
        "apiId": api.api_id,
    }


def _request_parts(hs: Handshake) -> dict[str, Any]:
    headers, multi_headers = _single_and_multi(hs.headers)
    parts: dict[str, Any] = {"headers": headers, "multiValueHeaders": multi_headers}
    if hs.query:
        query, multi_query = _single_and_multi(hs.query)
        parts["queryStringParameters"] = query
        parts["multiValueQueryStringParameters"] = multi_query
    return parts


def authorizer_event(api: Api, hs: Handshake) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": api.method_arn("$connect"),
        **_request_parts(hs),
        "stageVariables": {},
        "requestContext": _request_context(api, hs, "$connect", "CONNECT", gateway_id()),
    }


def connect_event(api: Api, hs: Handshake, authorizer: Mapping[str, Any] | None) -> dict[str, Any]:
    context = _request_context(api, hs, "$connect", "CONNECT", gateway_id())
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {**_request_parts(hs), "requestContext": context, "isBase64Encoded": False}


def message_event(
    api: Api, hs: Handshake, authorizer: Mapping[str, Any] | None, route_key: str, body: str
) -> dict[str, Any]:
    context = _request_context(api, hs, route_key, "MESSAGE", gateway_id())
    context["messageId"] = gateway_id()
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: Api, hs: Handshake, authorizer: Mapping[str, Any] | None, status_code: int, reason: str
) -> dict[str, Any]:
    context = _request_context(api, hs, "$disconnect", "DISCONNECT", gateway_id())
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    # API Gateway sends a few fixed headers on $disconnect, not the upgrade's.
    headers = [("Host", hs.domain_name), ("x-api-key", ""), ("X-Forwarded-For", ""), ("x-restapi", "")]
    single, multi = _single_and_multi(headers)
    return {
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": context,
        "isBase64Encoded": False,
    }
