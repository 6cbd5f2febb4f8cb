"""API Gateway's frame and message size limits, checked on the raw byte stream.

aiohttp reassembles fragmented messages before the application sees them, so a frame's
size is invisible after parsing. FrameGuard sits in front of aiohttp's WebSocket parser,
reads only frame headers (RFC 6455 §5.2) to track sizes, and passes the bytes through.
When a frame is over FRAME_LIMIT or a message's frames add up to more than
MESSAGE_LIMIT, it reports the violation once, drops that frame and every later data
frame (so nothing of it is dispatched) and still forwards control frames, so the
client's answer to our close frame completes the closing handshake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from emulator.config import FRAME_LIMIT, MESSAGE_LIMIT

CLOSE_MESSAGE_TOO_BIG = 1009
_CONTROL_OPCODES = frozenset({0x8, 0x9, 0xA})


class _Parser(Protocol):
    def feed_data(self, data: Any) -> tuple[bool, bytes]: ...
    def feed_eof(self) -> None: ...


class FrameScanner:
    """Splits a byte stream into frames; decides per frame whether it passes."""

    def __init__(
        self,
        on_violation: Callable[[int, str], None],
        frame_limit: int = FRAME_LIMIT,
        message_limit: int = MESSAGE_LIMIT,
    ) -> None:
        self._on_violation = on_violation
        self._frame_limit = frame_limit
        self._message_limit = message_limit
        self._header = bytearray()
        self._remaining = 0  # payload bytes of the current frame still to come
        self._forwarding = True  # whether the current frame's bytes pass
        self._message_bytes = 0
        self.tripped = False

    def scan(self, data: bytes) -> bytes:
        """The part of `data` that may reach the real parser."""
        out = bytearray()
        view = memoryview(data)
        i = 0
        while i < len(view):
            if self._remaining:
                n = min(self._remaining, len(view) - i)
                if self._forwarding:
                    out += view[i : i + n]
                self._remaining -= n
                i += n
                continue
            need = _header_length(self._header)
            take = min(need - len(self._header), len(view) - i)
            self._header += view[i : i + take]
            i += take
            if len(self._header) == _header_length(self._header):
                self._start_frame(out)
        return bytes(out)

    def _start_frame(self, out: bytearray) -> None:
        header = bytes(self._header)
        self._header.clear()
        opcode = header[0] & 0x0F
        length = _payload_length(header)
        self._remaining = length
        if opcode not in _CONTROL_OPCODES and not self.tripped:
            self._message_bytes = length if opcode != 0 else self._message_bytes + length
            if length > self._frame_limit:
                self._trip(f"Frame size {length} exceeds {self._frame_limit} bytes")
            elif self._message_bytes > self._message_limit:
                self._trip(f"Message size exceeds {self._message_limit} bytes")
        self._forwarding = not self.tripped or opcode in _CONTROL_OPCODES
        if self._forwarding:
            out += header

    def _trip(self, reason: str) -> None:
        self.tripped = True
        self._on_violation(CLOSE_MESSAGE_TOO_BIG, reason)


def _header_length(partial: bytearray) -> int:
    """Bytes of the frame header, as far as the bytes seen so far tell (at least 2)."""
    if len(partial) < 2:
        return 2
    length7 = partial[1] & 0x7F
    extended = 2 if length7 == 126 else 8 if length7 == 127 else 0
    mask = 4 if partial[1] & 0x80 else 0
    return 2 + extended + mask


def _payload_length(header: bytes) -> int:
    length7 = header[1] & 0x7F
    if length7 == 126:
        return int.from_bytes(header[2:4], "big")
    if length7 == 127:
        return int.from_bytes(header[2:10], "big")
    return length7


class FrameGuard:
    """A parser wrapper with the interface aiohttp's protocol expects of its WebSocket parser."""

    def __init__(self, inner: _Parser, on_violation: Callable[[int, str], None]) -> None:
        self._inner = inner
        self.scanner = FrameScanner(on_violation)

    def feed_data(self, data: Any) -> tuple[bool, bytes]:
        passed = self.scanner.scan(bytes(data))
        return self._inner.feed_data(passed) if passed else (False, b"")

    def feed_eof(self) -> None:
        self._inner.feed_eof()
