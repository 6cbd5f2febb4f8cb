"""Clients of AWS's JSON-protocol services (DynamoDB, EventBridge, SSM, Secrets Manager) on
the AWS Common Runtime, the transport the fan-out already uses (collab.management_client):
the same method names, arguments, answers and exceptions as botocore's clients, for the
operations the handlers call, without importing botocore.

Why: botocore and its first DynamoDB client were 190 of a cold environment's ~390 ms of
imports on this machine (docs/benchmarks.md, "Cold start, third pass"), more than any
other library, and every function pays them before it serves anything; a botocore call
also spends 0.5-1 ms of CPU in Python (serialisers, event hooks, signing, urllib3) where
awscrt signs and sends in C. What botocore does for these calls is small, and kept:

- the request: a POST of the parameters as JSON, bytes as base64 (botocore's blobs), the
  operation in X-Amz-Target, SigV4-signed by awscrt with the function's credentials
  (collab.management_client.SigningIdentity: the environment's, session token included);
- the answer: JSON, DynamoDB's binary attribute values decoded back to bytes (SSM's and
  Secrets Manager's answers are left as sent: no handler reads their dates or binary
  secrets), the CRC32 DynamoDB sends checked, `ResponseMetadata` (request id, status,
  retry attempts) added;
- errors: botocore's own exception classes (botocore.exceptions is a 6 ms import without the
  rest of botocore), so every `except ClientError` reads `error.response["Error"]["Code"]`
  and the modelled members (`Item` of a failed condition, `CancellationReasons`) as before;
  transport failures are its EndpointConnectionError, ConnectTimeoutError,
  ReadTimeoutError and ConnectionClosedError, all BotoCoreError;
- retries as botocore's "standard" mode, four attempts (collab.aws_clients.MAX_ATTEMPTS,
  what the handlers' botocore clients made): throttling codes and 429, the transient
  codes, 500/502/503/504, transport failures, an unreadable answer and a failed CRC32,
  after random(0..1) x 2^(attempt-1) s. A write whose answer was lost is sent again, as
  with botocore, so every conditional write here already recognises its own earlier
  attempt (collab.durable_log, rooms, versions, ...), and TransactWriteItems gets a
  ClientRequestToken when the caller gave none, as botocore fills it. Not kept: the retry
  quota (a token bucket that stops retrying when most calls of a client fail; an
  environment lives minutes to hours, and four attempts bound every call);
- time: at most `connect_timeout_s` (2 s) to connect and `timeout_s` (10 s) for an
  attempt's answer, and `deadline_s` (12 s) for the call with its retries and sleeps, so a DynamoDB that hangs ends in
  a ReadTimeoutError the handler answers, before the function's 15 s timeout;
- endpoints: AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL (moto locally), else the
  regional name, HTTPS with certificate checks;
- X-Ray: one `aws` subsegment per call, as botocore's patched calls record
  (collab.tracing.traced_aws_call).

S3 stays on botocore (collab.aws_clients.LazyClient): it is REST-XML, and it is built only
for payloads over a DynamoDB item and exports, which most environments never see.

`intercept` is the seam for faults the real services cannot be asked for (a response lost
after the write happened): it wraps each attempt's exchange, as botocore's before-send
event let tests do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore import exceptions

from collab import management_client as mc
from collab import tracing


@dataclass(frozen=True)
class Service:
    """What differs between the JSON services: how to reach, name and sign them."""

    service_id: str  # botocore's service id, X-Ray's subsegment name ("DynamoDB")
    signing_name: str  # SigV4's service ("dynamodb")
    host_prefix: str  # {prefix}.{region}.amazonaws.com
    target_prefix: str  # X-Amz-Target is "{prefix}.{Operation}"
    json_version: str  # application/x-amz-json-{version}
    operations: dict[str, str]  # snake_case method -> operation name
    blob_values: bool = False  # DynamoDB's {"B": base64} attribute values

    @property
    def endpoint_env(self) -> str:
        # botocore's rule: the service id, upper case, spaces as underscores.
        return "AWS_ENDPOINT_URL_" + self.service_id.upper().replace(" ", "_")


def _operations(*names: str) -> dict[str, str]:
    return {"".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_"): name for name in names}


DYNAMODB = Service(
    "DynamoDB",
    "dynamodb",
    "dynamodb",
    "DynamoDB_20120810",
    "1.0",
    _operations(
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactWriteItems",
        "UpdateItem",
    ),
    blob_values=True,
)
EVENTBRIDGE = Service("EventBridge", "events", "events", "AWSEvents", "1.1", _operations("PutEvents"))
SSM = Service("SSM", "ssm", "ssm", "AmazonSSM", "1.1", _operations("GetParameter"))
SECRETS_MANAGER = Service(
    "Secrets Manager",
    "secretsmanager",
    "secretsmanager",
    "secretsmanager",
    "1.1",
    _operations("GetSecretValue"),
)

# botocore's standard retry mode (botocore/retries/standard.py): these codes, these statuses.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_STATUSES = frozenset({429})
MAX_BACKOFF_SECONDS = 20.0
MIN_ATTEMPT_SECONDS = 1.0  # left of the call's deadline, for another attempt to start
# Parameters botocore fills when absent (the idempotencyToken trait of the operations here).
_IDEMPOTENCY_TOKENS = {"TransactWriteItems": "ClientRequestToken"}


class UnreadableAnswer(exceptions.BotoCoreError):
    """A success whose body is not JSON (a proxy's page, a cut answer): retried like a
    transport failure, raised as a BotoCoreError when the attempts are spent."""

    fmt = "{operation}: the answer (HTTP {status}) is not JSON"


class _StaleConnection(exceptions.ConnectionClosedError):
    """A reused connection failed before any answer arrived."""


@dataclass(frozen=True)
class _Signed:
    """What every attempt of one call signs with."""

    provider: Any  # awscrt.auth.AwsCredentialsProvider
    body_sha256: str


@dataclass
class Exchange:
    """One attempt's answer, as received."""

    status: int
    headers: dict[str, str]
    body: bytes


# (operation, body, send) -> the answer; `send` performs the real exchange of `body`.
Intercept = Callable[[str, bytes, Callable[[], Exchange]], Exchange]


class _Answer:
    """Collects one stream's status, headers and body (awscrt calls these on its loop)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []

    def on_response(self, http_stream: Any, status_code: int, headers: Any, **_: Any) -> None:
        self.status = status_code
        self.headers = {name.lower(): value for name, value in headers}

    def on_body(self, http_stream: Any, chunk: bytes, **_: Any) -> None:
        self.body.append(bytes(chunk))


class JsonClient:
    """One service's client: thread-safe, its connections kept alive across invocations."""

    def __init__(
        self,
        service: Service,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 4,
        connect_timeout_s: float = 2.0,
        timeout_s: float = 10.0,
        deadline_s: float = 12.0,
        identity: mc.SigningIdentity | None = None,
        ca_file: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.region = region or mc.default_region()
        url = (
            endpoint_url
            or os.environ.get(service.endpoint_env)
            or os.environ.get("AWS_ENDPOINT_URL")
            or _regional_url(service.host_prefix, self.region)
        )
        self.endpoint_url = url.rstrip("/")
        self._endpoint = mc.Endpoint.parse(self.endpoint_url, self.region)
        self._pool = mc.ConnectionPool(
            self._endpoint, connect_timeout_ms=int(connect_timeout_s * 1000), ca_file=ca_file
        )
        self._identity = identity or mc.SigningIdentity()
        self.max_attempts = max(1, max_attempts)
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._sleep = sleep
        self.intercept: Intercept | None = None
        self._content_type = f"application/x-amz-json-{service.json_version}"

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        # Only reached for what the instance lacks; before __init__ ran (a copy, a pickle)
        # that includes `service` itself.
        if name.startswith("_") or name == "service":
            raise AttributeError(name)
        operation = self.service.operations.get(name)
        if operation is None:
            raise AttributeError(f"{self.service.service_id} client has no operation {name!r}")
        return lambda **params: self.call(operation, params)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return tracing.traced_aws_call(self.service.service_id, self.region, operation, params, self._call)

    def close(self) -> None:
        self._pool.close_all()

    # -- one call --------------------------------------------------------------------------
    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation in _IDEMPOTENCY_TOKENS and _IDEMPOTENCY_TOKENS[operation] not in params:
            # As botocore fills a modelled idempotency token: every retry of the call sends
            # the same one, so a transaction whose answer was lost is not applied twice.
            params = {**params, _IDEMPOTENCY_TOKENS[operation]: str(uuid.uuid4())}
        try:
            body = json.dumps(params, separators=(",", ":"), default=_blob).encode()
        except (TypeError, ValueError) as error:  # botocore validates before sending too
            raise exceptions.ParamValidationError(report=str(error)) from error
        try:
            signing = self._identity.provider()
        except Exception as error:  # e.g. the environment's variables gone
            raise exceptions.NoCredentialsError() from error
        if signing is None:
            raise exceptions.NoCredentialsError()
        # Once per call, not per attempt: the credentials frozen, the body hashed.
        signed = _Signed(signing, hashlib.sha256(body).hexdigest())
        deadline = time.monotonic() + self.deadline_s
        attempt = 0
        stale_retried = False
        while True:
            attempt += 1
            try:
                answer = self._exchange(operation, body, signed, deadline)
                parsed = self._parse(operation, answer)
            except _StaleConnection:
                # A kept-alive connection the other end had closed (idle, or while Lambda
                # froze the environment): once per call, straight away on a new one, not
                # counted as an attempt, as urllib3 drops a dead pooled connection before use.
                if not stale_retried:
                    # The other idle ones are as old (after a thaw, all of them): the retry
                    # opens a new connection rather than take the next dead one.
                    self._pool.close_all()
                    stale_retried = True
                    attempt -= 1
                    continue
                if not self._backoff(attempt, deadline):
                    raise
                continue
            except exceptions.BotoCoreError:  # transport, an unreadable answer, a failed CRC32
                if not self._backoff(attempt, deadline):
                    raise
                continue
            metadata = {
                "RequestId": answer.headers.get("x-amzn-requestid", ""),
                "HTTPStatusCode": answer.status,
                "HTTPHeaders": answer.headers,
                "RetryAttempts": attempt - 1,
            }
            parsed["ResponseMetadata"] = metadata
            if answer.status < 300:
                return parsed
            refused = _client_error(operation, parsed, answer.status)
            if not _retryable(refused, answer.status) or not self._backoff(attempt, deadline):
                raise refused

    def _backoff(self, attempt: int, deadline: float) -> bool:
        """Sleep before the next attempt (botocore's standard backoff); False when there is
        none: the attempts are spent, or the call's deadline would pass before it starts."""
        if attempt >= self.max_attempts:
            return False
        delay = random.random() * min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1))
        if time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline:
            return False  # an attempt that could not finish would only resend and time out
        self._sleep(delay)
        return True

    def _exchange(self, operation: str, body: bytes, signed: _Signed, deadline: float) -> Exchange:
        def send() -> Exchange:
            return self._send(operation, body, signed, deadline)

        if self.intercept is not None:
            return self.intercept(operation, body, send)
        return send()

    def _send(self, operation: str, body: bytes, signed: _Signed, deadline: float) -> Exchange:
        endpoint = self._endpoint
        headers = mc.http.HttpHeaders(
            [
                ("Host", endpoint.host_header),
                ("Content-Type", self._content_type),
                ("X-Amz-Target", f"{self.service.target_prefix}.{operation}"),
                ("Content-Length", str(len(body))),
                ("Accept-Encoding", "identity"),
            ]
        )
        request = mc.http.HttpRequest("POST", endpoint.base_path or "/", headers, io.BytesIO(body))
        config = mc.auth.AwsSigningConfig(
            credentials_provider=signed.provider,
            region=self.region,
            service=self.service.signing_name,
            signed_body_value=signed.body_sha256,
        )
        mc.auth.aws_sign_request(request, config).result()
        connection, reused = self._connection(deadline)
        closed = _StaleConnection if reused else exceptions.ConnectionClosedError
        # The answer's wait, once connected: what is left of the call's deadline at most.
        timeout_s = min(self.timeout_s, max(0.0, deadline - time.monotonic()))
        answer = _Answer()
        try:
            stream = connection.request(request, on_response=answer.on_response, on_body=answer.on_body)
            stream.activate()
        except Exception as error:  # awscrt: a kept-alive connection closed meanwhile
            connection.close()
            raise closed(endpoint_url=self.endpoint_url) from error
        try:
            stream.completion_future.result(timeout=timeout_s)
        except TimeoutError as error:
            connection.close()  # its answer, if it ever comes, is not waited for
            raise exceptions.ReadTimeoutError(endpoint_url=self.endpoint_url) from error
        except Exception as error:
            connection.close()
            raise (closed if answer.status == 0 else exceptions.ConnectionClosedError)(
                endpoint_url=self.endpoint_url
            ) from error
        self._pool.give_back(connection)
        return Exchange(answer.status, answer.headers, b"".join(answer.body))

    def _connection(self, deadline: float) -> tuple[Any, bool]:
        """A connection, and whether it is a kept-alive one (it may have been closed)."""
        connection = self._pool.take()
        if connection is not None:
            return connection, True
        opening = None
        try:
            opening = self._pool.open()
            wait = min(self.connect_timeout_s + 1.0, max(0.0, deadline - time.monotonic()))
            return opening.result(timeout=wait), False
        except TimeoutError as error:
            # A connection that completes after all is closed, not leaked.
            if opening is not None:
                opening.add_done_callback(_close_connected)
            raise exceptions.ConnectTimeoutError(endpoint_url=self.endpoint_url) from error
        except Exception as error:  # refused, unresolvable, TLS failed, or awscrt's own timeout
            if getattr(error, "name", "") == "AWS_IO_SOCKET_TIMEOUT":
                raise exceptions.ConnectTimeoutError(endpoint_url=self.endpoint_url) from error
            raise exceptions.EndpointConnectionError(endpoint_url=self.endpoint_url, error=error) from error

    def _parse(self, operation: str, answer: Exchange) -> dict[str, Any]:
        expected = answer.headers.get("x-amz-crc32")
        if expected is not None and expected.isdigit() and zlib.crc32(answer.body) != int(expected):
            raise exceptions.ChecksumError(
                checksum_type="crc32",
                expected_checksum=expected,
                actual_checksum=str(zlib.crc32(answer.body)),
            )
        if not answer.body:
            return {}
        try:
            parsed = json.loads(answer.body, object_hook=_blob_values if self.service.blob_values else None)
        except (ValueError, binascii.Error):
            if answer.status >= 300:  # e.g. a proxy's HTML error page: the status is the news
                return {}
            raise UnreadableAnswer(operation=operation, status=answer.status) from None
        return parsed if isinstance(parsed, dict) else {}


def query_pages(client: Any, **params: Any) -> Iterator[dict[str, Any]]:
    """A Query's pages, one after another by LastEvaluatedKey (botocore's paginator's work),
    on this module's clients and on botocore's alike."""
    while True:
        page: dict[str, Any] = client.query(**params)
        yield page
        if not page.get("LastEvaluatedKey"):
            return
        params = {**params, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def prefix_pages(client: Any, table: str, scene_id: str, prefix: str) -> Iterator[dict[str, Any]]:
    """The pages of a strongly consistent Query of one scene's items whose sort key `sk`
    starts with `prefix` (the documents table's layout, functions/tables.json)."""
    return query_pages(
        client,
        TableName=table,
        KeyConditionExpression="sceneId = :s AND begins_with(sk, :p)",
        ExpressionAttributeValues={":s": {"S": scene_id}, ":p": {"S": prefix}},
        ConsistentRead=True,
    )


def _close_connected(opening: Any) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def _regional_url(prefix: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{prefix}.{region}.{suffix}"


def _blob(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _blob_values(obj: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's binary attribute values, back to bytes. Only an attribute value is a one-key
    object {"B": string} or {"BS": [strings]}: an item or a map maps names to objects."""
    if len(obj) == 1:
        if isinstance(value := obj.get("B"), str):
            return {"B": base64.b64decode(value)}
        if isinstance(values := obj.get("BS"), list) and all(isinstance(v, str) for v in values):
            return {"BS": [base64.b64decode(v) for v in values]}
    return obj


_error_classes: dict[str, type[exceptions.ClientError]] = {}


def _client_error(operation: str, parsed: dict[str, Any], status: int) -> exceptions.ClientError:
    # "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    # (the awsJson protocols: what follows a ':' is not part of the code)
    code = str(parsed.pop("__type", "") or "").split(":", 1)[0].rpartition("#")[2] or str(status)
    message = parsed.pop("message", None) or parsed.pop("Message", None) or ""
    response = {"Error": {"Code": code, "Message": str(message)}, **parsed}
    # A ClientError subclass named after the code, as botocore's error factory makes, so
    # logs and X-Ray name the error the same way.
    kind = _error_classes.get(code)
    if kind is None:
        name = code if code.isidentifier() else "ClientError"
        kind = _error_classes.setdefault(code, type(name, (exceptions.ClientError,), {}))
    return kind(response, operation)


def _retryable(error: exceptions.ClientError, status: int) -> bool:
    code = error.response["Error"]["Code"]
    return (
        code in THROTTLING_CODES
        or code in TRANSIENT_CODES
        or status in TRANSIENT_STATUSES
        or status in THROTTLING_STATUSES
    )
