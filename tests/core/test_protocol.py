"""The wire codec: strict base64, exact y-protocols framing, ASCII server frames."""

from __future__ import annotations

import base64
import json

import pytest

from collab import protocol
from collab.errors import BadRequest


def test_sync_messages_round_trip() -> None:
    for build, kind in (
        (protocol.sync_step1, protocol.SYNC_STEP1),
        (protocol.sync_step2, protocol.SYNC_STEP2),
        (protocol.update_message, protocol.SYNC_UPDATE),
    ):
        payload = bytes(range(200))  # longer than one varint byte of length
        message = protocol.decode_sync_message(build(payload))
        assert (message.kind, message.payload) == (kind, payload)


def test_awareness_message_round_trip() -> None:
    assert protocol.decode_awareness_message(protocol.awareness_message(b"\x01\x02")) == b"\x01\x02"


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"\x00",  # type without sub-type
        b"\x00\x02\x05abc",  # length beyond the end
        b"\x00\x02\x01ab",  # trailing bytes
        b"\x00\x07\x00",  # unknown sync type
        b"\x01\x00",  # awareness where sync is expected
        b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # runaway varint
    ],
)
def test_malformed_sync_messages_are_bad_requests(data: bytes) -> None:
    with pytest.raises(BadRequest):
        protocol.decode_sync_message(data)


@pytest.mark.parametrize("text", ["not base64!", "AAA", "AAF=", "AA==\n", "A=A=", " AAAA"])
def test_base64_must_be_strict(text: str) -> None:
    with pytest.raises(BadRequest):
        protocol.decode_base64(text)


def test_base64_accepts_canonical_padding() -> None:
    for raw in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        assert protocol.decode_base64(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize("body", [None, "", "{", "[1,2]", '"text"', "\xff", b"\xff\xfe"])
def test_frames_must_be_json_objects(body: str | bytes | None) -> None:
    with pytest.raises(BadRequest):
        protocol.parse_frame(body)


def test_server_frames_are_ascii_json() -> None:
    text = protocol.server_message("connected", user={"userName": "Zoë 🎬"})
    assert text.isascii()
    assert json.loads(text)["user"]["userName"] == "Zoë 🎬"
    error = json.loads(protocol.error_message("too_large", "too big", "chunk", "c1"))
    assert error == {
        "type": "error",
        "code": "too_large",
        "message": "too big",
        "action": "chunk",
        "id": "c1",
    }
