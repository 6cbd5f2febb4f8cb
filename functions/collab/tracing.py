"""X-Ray tracing with Lambda's active tracing and no X-Ray SDK on the hot path.

Importing aws_xray_sdk.core costs a cold environment about 330 ms (it builds a botocore
client for its sampler at import time), more than everything else the handlers import
together. On Lambda the SDK's recorder is not needed: with active tracing, Lambda itself
records the function's segment and decides sampling, and hands each invocation its trace
header in `_X_AMZN_TRACE_ID` (Root, Parent, Sampled). What the SDK adds is subsegments
under that segment, sent as JSON over UDP to the X-Ray daemon Lambda runs beside the
function (`AWS_XRAY_DAEMON_ADDRESS`). `XRayProvider` does exactly that for Powertools'
Tracer (its `provider=`):

- `in_subsegment` (used by `@tracer.capture_lambda_handler`, `capture_method` and the
  core's own `## validate`, `## fanout`, ...) streams one subsegment document per block,
  with its annotations, metadata, and a fault and cause when the block raised;
- `patch_all` (called by the Tracer when tracing is on) makes every AWS call an `aws`
  subsegment with its operation, table, request id and status, as the SDK's botocore
  patch records it: collab.aws_json's clients through `traced_aws_call`, botocore's (S3)
  by wrapping its API call once botocore is loaded. Redis is not instrumented (the SDK does not either).

An invocation Lambda did not sample, tracing turned off (POWERTOOLS_TRACE_DISABLED) or a
process outside Lambda (no trace header: tests, the emulator) costs one environment lookup
per block and sends nothing. A failure to send is dropped: tracing never fails a handler.
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"
DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
_DAEMON_HEADER = b'{"format": "json", "version": 1}\n'
_MAX_DATAGRAM = 63 * 1024  # UDP: a document over 64 KB would be lost whole


@dataclass(frozen=True)
class TraceHeader:
    root: str
    parent: str
    sampled: bool

    @classmethod
    def parse(cls, value: str) -> TraceHeader | None:
        fields = dict(part.split("=", 1) for part in value.split(";") if "=" in part)
        root, parent = fields.get("Root", ""), fields.get("Parent", "")
        if not root or not parent:
            return None
        return cls(root, parent, fields.get("Sampled") == "1")


def _new_id() -> str:
    return os.urandom(8).hex()


class Subsegment(BaseSegment):
    """One subsegment, sent on its own when it closes (X-Ray joins them by parent id)."""

    def __init__(self, name: str, trace_id: str, parent_id: str, namespace: str | None = None) -> None:
        self.name = name[:200]
        self.id = _new_id()
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.namespace = namespace
        self.start_time = time.time()
        self.end_time: float | None = None
        self.annotations: dict[str, str | int | float | bool] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.aws: dict[str, Any] = {}
        self.http: dict[str, Any] = {}
        self.flags: dict[str, bool] = {}  # error (4xx), throttle (429), fault (5xx, a raise)
        self.exceptions: list[dict[str, Any]] = []

    def close(self, end_time: int | None = None) -> None:
        self.end_time = float(end_time) if end_time is not None else time.time()

    def add_subsegment(self, subsegment: Any) -> None:
        pass  # children are streamed with their parent's id

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        if isinstance(value, str | int | float | bool):
            self.annotations["".join(c if c.isalnum() else "_" for c in key)] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.metadata.setdefault(namespace or "default", {})[key] = value

    def add_exception(
        self,
        exception: BaseException,
        stack: list[traceback.StackSummary] | None = None,
        remote: bool = False,
    ) -> None:
        if not self.flags:  # a failed AWS call is already marked error, throttle or fault
            self.flags["fault"] = True
        frames = traceback.extract_tb(exception.__traceback__)[-20:]
        self.exceptions.append(
            {
                "id": _new_id(),
                "type": type(exception).__name__,
                "message": str(exception)[:1000],
                "remote": remote,
                "stack": [{"path": f.filename, "line": f.lineno, "label": f.name} for f in frames],
            }
        )

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "subsegment",
            "name": self.name,
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "start_time": self.start_time,
            "end_time": self.end_time if self.end_time is not None else time.time(),
            **self.flags,
        }
        for key, value in (
            ("namespace", self.namespace),
            ("annotations", self.annotations),
            ("metadata", self.metadata),
            ("aws", self.aws),
            ("http", self.http),
        ):
            if value:
                doc[key] = value
        if self.exceptions:
            doc["cause"] = {"working_directory": os.getcwd(), "exceptions": self.exceptions}
        return doc


class _Unsampled(BaseSegment):
    """What a block gets when nothing is traced: every call does nothing."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(
        self,
        exception: BaseException,
        stack: list[traceback.StackSummary] | None = None,
        remote: bool = False,
    ) -> None:
        pass


UNSAMPLED = _Unsampled()


class DaemonEmitter:
    """UDP to the X-Ray daemon (on Lambda, the one Lambda runs; default 127.0.0.1:2000)."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def send(self, document: dict[str, Any]) -> None:
        payload = json.dumps(document, default=str, separators=(",", ":")).encode()
        if len(payload) > _MAX_DATAGRAM:  # keep the timing and the fault, drop the detail
            document = {k: v for k, v in document.items() if k not in ("metadata", "cause")}
            payload = json.dumps(document, default=str, separators=(",", ":")).encode()
        try:
            with self._lock:
                if self._socket is None:
                    self._address = daemon_address(os.environ.get(DAEMON_ADDRESS_ENV, ""))
                    self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)
                assert self._address is not None
                self._socket.sendto(_DAEMON_HEADER + payload, self._address)
        except OSError:
            pass  # a lost trace is not worth a failed invocation


def daemon_address(value: str) -> tuple[str, int]:
    """ "host:port", or "tcp:host:port udp:host:port" (the UDP one is used)."""
    for part in value.split():
        if part.startswith("udp:"):
            value = part[4:]
            break
    else:
        value = value.split()[0] if value.split() else ""
        value = value.removeprefix("tcp:")
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port) if port.isdigit() else 2000)


# The provider that asked last to record AWS calls (Powertools' Tracer calls patch_all).
_aws_provider: XRayProvider | None = None
_patch_lock = threading.Lock()


def _botocore_patched() -> bool:
    from botocore.client import BaseClient

    return getattr(BaseClient._make_api_call, "__collab_traced__", False)


_current: contextvars.ContextVar[Subsegment | None] = contextvars.ContextVar("xray_subsegment", default=None)


class XRayProvider(BaseProvider):
    """Powertools' tracing provider, sending subsegments straight to the daemon."""

    def __init__(self, emitter: DaemonEmitter | None = None) -> None:
        self.emitter = emitter or DaemonEmitter()

    def _trace(self) -> TraceHeader | None:
        if os.environ.get(TRACE_DISABLED_ENV, "").strip().lower() in ("1", "true", "yes"):
            return None
        header = TraceHeader.parse(os.environ.get(TRACE_HEADER_ENV, ""))
        return header if header is not None and header.sampled else None

    def _open(self, name: str | None, namespace: str | None = None) -> Subsegment | None:
        header = self._trace()
        if header is None:
            return None
        parent = _current.get()
        # A subsegment left from an earlier invocation (another trace) is no parent.
        parent_id = parent.id if parent is not None and parent.trace_id == header.root else header.parent
        return Subsegment(name or "## anonymous", header.root, parent_id, namespace)

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        subsegment = self._open(name, kwargs.get("namespace"))
        if subsegment is None:
            yield UNSAMPLED
            return
        token = _current.set(subsegment)
        try:
            yield subsegment
        except BaseException as error:
            subsegment.add_exception(error)
            raise
        finally:
            _current.reset(token)
            subsegment.close()
            self.emitter.send(subsegment.document())

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        with self.in_subsegment(name, **kwargs) as subsegment:
            yield subsegment

    def put_annotation(self, key: str, value: Any) -> None:
        if (subsegment := _current.get()) is not None:
            subsegment.put_annotation(key, value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        if (subsegment := _current.get()) is not None:
            subsegment.put_metadata(key, value, namespace)

    def patch(self, modules: Sequence[str]) -> None:
        if "botocore" in modules or "boto3" in modules:
            self.patch_all()

    def patch_all(self) -> None:
        """Every AWS call records a subsegment through the provider that asked last: the
        calls of collab.aws_json's clients (traced_aws_call), and botocore's, whose clients
        are patched once per process, now if botocore is loaded, else by
        collab.aws_clients before it builds the first (a handler that never needs
        botocore never imports it for this)."""
        global _aws_provider
        with _patch_lock:
            _aws_provider = self
        if "botocore.client" in sys.modules:
            patch_botocore()

    @contextmanager
    def in_subsegment_of(self, subsegment: Subsegment) -> Iterator[Subsegment]:
        token = _current.set(subsegment)
        try:
            yield subsegment
        except BaseException as error:
            subsegment.add_exception(error, remote=True)
            raise
        finally:
            _current.reset(token)
            subsegment.close()
            self.emitter.send(subsegment.document())


def patch_botocore() -> None:
    """botocore's clients (made before or after) record their calls, once a provider asked."""
    with _patch_lock:
        if _aws_provider is None or _botocore_patched():
            return
        from botocore.client import BaseClient

        make_api_call = BaseClient._make_api_call

        def traced(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            return traced_aws_call(
                client.meta.service_model.service_id,
                client.meta.region_name,
                operation_name,
                api_params,
                lambda operation, params: make_api_call(client, operation, params),
            )

        traced.__collab_traced__ = True  # type: ignore[attr-defined]
        BaseClient._make_api_call = traced


def traced_aws_call(
    service_id: str,
    region: str,
    operation_name: str,
    params: dict[str, Any],
    call: Callable[[str, dict[str, Any]], Any],
) -> Any:
    """`call(operation_name, params)`, as an `aws` subsegment when the invocation is traced."""
    provider = _aws_provider
    subsegment = provider._open(str(service_id), namespace="aws") if provider is not None else None
    if provider is None or subsegment is None:
        return call(operation_name, params)
    with provider.in_subsegment_of(subsegment):
        _record_call(subsegment, region, operation_name, params)
        try:
            result = call(operation_name, params)
        except Exception as error:
            _record_response(subsegment, getattr(error, "response", None))
            raise
        _record_response(subsegment, result)
        return result


def _record_call(subsegment: Subsegment, region: str, operation_name: str, params: dict[str, Any]) -> None:
    subsegment.aws = {"operation": operation_name, "region": region}
    if "TableName" in params:
        subsegment.aws["table_name"] = params["TableName"]
    elif "RequestItems" in params:
        subsegment.aws["table_names"] = sorted(params["RequestItems"])
    if "Bucket" in params:
        subsegment.aws["bucket_name"] = params["Bucket"]


def _record_response(subsegment: Subsegment, response: Any) -> None:
    metadata = (response or {}).get("ResponseMetadata", {}) if isinstance(response, dict) else {}
    status = metadata.get("HTTPStatusCode")
    if metadata.get("RequestId"):
        subsegment.aws["request_id"] = metadata["RequestId"]
    subsegment.aws["retries"] = metadata.get("RetryAttempts", 0)
    if status is None:
        return
    subsegment.http = {"response": {"status": status}}
    if status == 429:
        subsegment.flags.update(error=True, throttle=True)
    elif 400 <= status < 500:
        subsegment.flags["error"] = True
    elif status >= 500:
        subsegment.flags["fault"] = True
