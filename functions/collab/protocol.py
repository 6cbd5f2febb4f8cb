"""Wire protocol version 1 (docs/design.md §2): JSON text frames carrying base64 y-protocols messages.

Decoding is strict on purpose: a frame either decodes exactly (one message, no trailing
bytes, canonical base64) or is refused with `bad_request`; nothing half-understood reaches
storage. pycrdt builds the y-protocols messages we send; lib0.Reader reads them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pycrdt import create_awareness_message, create_update_message, write_var_uint

from collab.errors import BadRequest
from collab.lib0 import Reader

ACTIONS = ("sync", "update", "awareness", "ping", "chunk")

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

# The server splits its own messages above this (API Gateway caps a frame at 128 KB).
SERVER_FRAME_LIMIT = 120_000


def parse_frame(body: str | bytes | None) -> dict[str, Any]:
    """A client frame: a JSON object. Anything else is a `bad_request`."""
    if body is None or body == "":
        raise BadRequest("empty message: expected a JSON object with an 'action'")
    try:
        frame = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
        raise BadRequest("message is not valid JSON") from None
    if not isinstance(frame, dict):
        raise BadRequest("message must be a JSON object with an 'action'")
    return frame


def require_str(frame: dict[str, Any], field: str) -> str:
    value = frame.get(field)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"field '{field}' is missing or not a non-empty string")
    return value


def decode_base64(text: str, field: str = "data") -> bytes:
    """RFC 4648 base64 with padding, strictly: no stray characters, canonical padding bits."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"field '{field}' is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise BadRequest(f"field '{field}' is not canonical base64")
    return raw


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class SyncMessage:
    kind: int  # SYNC_STEP1, SYNC_STEP2 or SYNC_UPDATE
    payload: bytes  # a state vector (step 1) or an update (step 2, update)


def decode_sync_message(data: bytes) -> SyncMessage:
    reader = Reader(data, "y-protocols message")
    if reader.var_uint() != MESSAGE_SYNC:
        raise BadRequest("expected a y-protocols sync message")
    kind = reader.var_uint()
    if kind not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
        raise BadRequest(f"unknown y-protocols sync message type {kind}")
    payload = reader.var_bytes()
    reader.finish()
    return SyncMessage(kind, payload)


def decode_awareness_message(data: bytes) -> bytes:
    reader = Reader(data, "y-protocols message")
    if reader.var_uint() != MESSAGE_AWARENESS:
        raise BadRequest("expected a y-protocols awareness message")
    payload = reader.var_bytes()
    reader.finish()
    return payload


def sync_step1(state_vector: bytes) -> bytes:
    # pycrdt's create_sync_message takes a Doc; we hold raw state vectors and updates.
    return bytes([MESSAGE_SYNC, SYNC_STEP1]) + write_var_uint(len(state_vector)) + state_vector


def sync_step2(update: bytes) -> bytes:
    return bytes([MESSAGE_SYNC, SYNC_STEP2]) + write_var_uint(len(update)) + update


def update_message(update: bytes) -> bytes:
    return create_update_message(update)


def awareness_message(update: bytes) -> bytes:
    return create_awareness_message(update)


def server_message(kind: str, **fields: Any) -> str:
    """A server → client frame; the protocol's JSON is ASCII."""
    return json.dumps({"type": kind, **fields}, ensure_ascii=True, separators=(",", ":"))


def data_message(kind: str, message: bytes) -> str:
    """A server frame carrying one base64 y-protocols message (`sync`, `update`, `awareness`)."""
    return server_message(kind, data=encode_base64(message))


def error_message(code: str, message: str, action: str | None = None, chunk_id: str | None = None) -> str:
    fields: dict[str, Any] = {"code": code, "message": message}
    if action is not None:
        fields["action"] = action
    if chunk_id is not None:
        fields["id"] = chunk_id
    return server_message("error", **fields)


__all__ = [
    "ACTIONS",
    "SERVER_FRAME_LIMIT",
    "SyncMessage",
    "awareness_message",
    "data_message",
    "decode_awareness_message",
    "decode_base64",
    "decode_sync_message",
    "encode_base64",
    "error_message",
    "parse_frame",
    "require_str",
    "server_message",
    "sync_step1",
    "sync_step2",
    "update_message",
]
