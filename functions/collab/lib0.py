"""Reading lib0's encoding (what y-protocols frames its messages with), bounds-checked.

pycrdt's Decoder does not check bounds (a truncated length silently yields a short
payload), and its Encoder writes string lengths in code points, so both directions of the
few primitives we need live here. Every malformed input ends in BadRequest."""

from __future__ import annotations

from pycrdt import write_var_uint

from collab.errors import BadRequest

# Clients are JavaScript: integers beyond 2**53 - 1 cannot be theirs.
MAX_SAFE_INTEGER = 2**53 - 1


class Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what  # named in error messages: "y-protocols message", "awareness update"

    def var_uint(self) -> int:
        value = 0
        # Eight 7-bit groups cover 2**53; a longer varint cannot be a JS safe integer.
        for shift in range(0, 56, 7):
            if self.pos >= len(self.data):
                raise BadRequest(f"truncated {self.what}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > MAX_SAFE_INTEGER:
                    break
                return value
        raise BadRequest(f"integer out of range in {self.what}")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise BadRequest(f"truncated {self.what}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"a string in the {self.what} is not valid UTF-8") from None

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise BadRequest(f"trailing bytes after the {self.what}")


def var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varUint cannot encode {value}")
    return write_var_uint(value)


def var_string(text: str) -> bytes:
    """Length in UTF-8 bytes, as lib0 writes it (not pycrdt's code-point count)."""
    raw = text.encode("utf-8")
    return var_uint(len(raw)) + raw
