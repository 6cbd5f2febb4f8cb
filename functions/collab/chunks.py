"""Chunked messages in both directions (docs/design.md §2, `chunk`).

Incoming: API Gateway caps a frame at 32 KB, so a client splits a large message's JSON
text into `chunk` frames. They reach us as separate Lambda invocations, in any order, at
the same time and sometimes twice. `ChunkAssembler` keeps the slices in Redis and hands
the whole text over exactly once: one Lua script stores a slice, checks completeness and
claims the message in the same atomic step, then leaves a short-lived end marker so late
duplicates of a finished (or refused) id are dropped.

"Exactly once" survives a client retry (review M2): every `add` call carries its own
request id, and the end marker names the request that ended the id. If the reply of the
completing call is lost and the client re-runs the script, the same request finds its
own name on the marker and gets the text again: the parts are kept `replay_seconds` after
completion for that. Any other call, a duplicate frame included, gets nothing. A refusal
is answered again to its own retry the same way, so the client still hears it once.

Key layout, every key of one connection under its `{connectionId}` hash tag, so a script
only ever touches one cluster slot. The chunk id is always the last part of a key, so no
id can collide with another key:

    collab:{conn}:chunk:parts:<id>   hash  "<seq>" -> slice, "t" -> total, "b" -> bytes so far
                                           (kept `replay_seconds` once complete)
    collab:{conn}:chunk:end:<id>     str   "<why> <request id>": why is "done" | "too_large" |
                                           "too_many", the request is the call that ended it
    collab:{conn}:chunk:pending      zset  id -> expiry (ms) of its parts, for the pending
                                           limit and for forget()

Every key has a TTL (`ttl_seconds`, refreshed by each slice of its id; `replay_seconds`
for the parts of a completed message).

Outgoing: `split_message` turns a server message over 120,000 bytes into `chunk` frames,
each within the limit including the envelope.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import cast

from collab.cache import Cache
from collab.errors import BadRequest, TooLarge

MAX_ID_LENGTH = 128
SERVER_CHUNK_LIMIT = 120_000

# One atomic step per slice. Returns {status} or {"complete", text} or {"conflict", total}.
# A new id is refused when the connection already has max_pending incomplete messages;
# the refusal is recorded like a size refusal, so the client hears about it once per id.
# ARGV: id, seq, total, data, max_bytes, max_pending, ttl, max_chunks, request (no
# spaces), replay_seconds.
_ADD_SCRIPT = """
local parts, ended, pending = KEYS[1], KEYS[2], KEYS[3]
local id, seq, total, data = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local max_bytes, max_pending, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local max_chunks, request, replay_for = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])

local function refuse(status)
  redis.call('DEL', parts)
  redis.call('ZREM', pending, id)
  redis.call('SET', ended, status .. ' ' .. request, 'EX', ttl)
  return {status}
end

local function joined(count)
  local pieces = {}
  for i = 0, count - 1 do
    pieces[#pieces + 1] = redis.call('HGET', parts, tostring(i))
  end
  return table.concat(pieces)
end

local mark = redis.call('GET', ended)
if mark then
  -- Only a retry of the call that ended the id gets its answer again; a marker of the
  -- first layout ("done", no request) matches nobody.
  local why, by = string.match(mark, '^(%S+) (%S+)$')
  if by ~= request then
    return {'ended'}
  end
  if why ~= 'done' then
    return {why}
  end
  local count = redis.call('HGET', parts, 't')
  if not count then
    return {'ended'}  -- retried after replay_seconds: the text is gone
  end
  return {'complete', joined(tonumber(count))}
end

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local known = redis.call('HGET', parts, 't')
if not known then
  -- Ids whose parts expired no longer count as pending.
  redis.call('ZREMRANGEBYSCORE', pending, '-inf', now_ms)
  if redis.call('ZCARD', pending) >= max_pending then
    return refuse('too_many')
  end
  if total > max_chunks then
    return refuse('too_large')
  end
elseif tonumber(known) ~= total then
  return {'conflict', known}
end

if redis.call('HEXISTS', parts, seq) == 1 then
  return {'duplicate'}
end
local size = tonumber(redis.call('HGET', parts, 'b') or '0') + #data
if size > max_bytes then
  return refuse('too_large')
end

redis.call('HSET', parts, seq, data, 't', total, 'b', size)
if redis.call('HLEN', parts) - 2 < total then
  redis.call('EXPIRE', parts, ttl)
  redis.call('ZADD', pending, now_ms + ttl * 1000, id)
  redis.call('EXPIRE', pending, ttl)
  return {'stored'}
end

-- This call completed the message: it alone gets the text (and its retries, for a while).
redis.call('EXPIRE', parts, replay_for)
redis.call('ZREM', pending, id)
redis.call('SET', ended, 'done ' .. request, 'EX', ttl)
return {'complete', joined(total)}
"""


class ChunkAssembler:
    """Reassembles `chunk` frames per (connection, id) in Redis; see the module docstring."""

    def __init__(
        self,
        cache: Cache,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        max_pending: int = 8,
        ttl_seconds: int = 300,
        max_chunks: int = 4096,
        replay_seconds: int = 10,
    ) -> None:
        self._cache = cache
        self._add = cache.register_script(_ADD_SCRIPT)
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self.ttl_seconds = ttl_seconds
        # A bound on `total` keeps a flood of tiny slices from building a huge hash
        # (16 MB at the client's ~30 KB frames is about 560 chunks).
        self.max_chunks = max_chunks
        # How long a completed message's parts wait for a retry of the call that completed
        # it. Short: they can be max_bytes each. A client retry comes within seconds.
        self.replay_seconds = min(replay_seconds, ttl_seconds)

    def add(
        self,
        connection_id: str,
        chunk_id: str,
        seq: int,
        total: int,
        data: str,
        *,
        request_id: str | None = None,
    ) -> str | None:
        """Store one slice; return the whole text to the one call that completes it, else None.

        Raises BadRequest for a malformed chunk or a `total` that differs from the one first
        seen for the id (the chunk is ignored; the id stays usable with its first total), and
        TooLarge once per id when the message is over `max_bytes`, has more than
        `max_chunks` slices, or would exceed `max_pending` incomplete messages of the
        connection. Later chunks of a refused or finished id return None, and so does a
        repeated seq: its first slice stays (first write wins), whatever the repeat holds.
        A retry of this call with the same `request_id` (one per call by default) gets the
        same answer, the text included.
        """
        check_chunk(chunk_id, seq, total, data)
        raw = utf8(data)
        keys = _keys(connection_id, chunk_id)
        limits = [self.max_bytes, self.max_pending, self.ttl_seconds, self.max_chunks]
        request = request_id or uuid.uuid4().hex
        reply = self._add(keys=keys, args=[chunk_id, seq, total, raw, *limits, request, self.replay_seconds])
        status = _text(reply[0])
        if status == "complete":
            return _text(reply[1])
        if status == "conflict":
            first = _text(reply[1])
            raise BadRequest(
                f"chunk {chunk_id!r}: total {total} differs from the first chunk's total {first}"
            )
        if status == "too_large":
            raise TooLarge(
                f"chunked message {chunk_id!r} is over the limit of {self.max_bytes} bytes"
                f" or {self.max_chunks} chunks"
            )
        if status == "too_many":
            raise TooLarge(f"too many pending chunked messages (limit {self.max_pending} per connection)")
        # stored, duplicate (first write wins) or ended (a late duplicate): nothing to hand over.
        return None

    def forget(self, connection_id: str) -> None:
        """Drop the pending slices of a connection (on disconnect). End markers are a few
        bytes each and expire on their own within `ttl_seconds`, and a completed message's
        parts within `replay_seconds`."""
        pending = _pending_key(connection_id)
        ids = cast(list[bytes], self._cache.zrange(pending, 0, -1))
        for chunk_id in map(_text, ids):
            self._cache.delete(_parts_key(connection_id, chunk_id))
        self._cache.delete(pending)


def check_chunk(chunk_id: object, seq: object, total: object, data: object) -> None:
    if not isinstance(chunk_id, str) or not chunk_id or len(chunk_id) > MAX_ID_LENGTH:
        raise BadRequest(f"chunk 'id' must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    # bool is an int subclass, and 1.0 is not a sequence number: only real ints pass.
    if type(seq) is not int or type(total) is not int:
        raise BadRequest(f"chunk {chunk_id!r}: 'seq' and 'total' must be integers")
    if total < 1:
        raise BadRequest(f"chunk {chunk_id!r}: 'total' must be at least 1")
    if not 0 <= seq < total:
        raise BadRequest(f"chunk {chunk_id!r}: 'seq' {seq} is outside [0, {total})")
    # The splitter never sends an empty slice; refusing them means every chunk carries bytes.
    if not isinstance(data, str) or not data:
        raise BadRequest(f"chunk {chunk_id!r}: 'data' must be a non-empty string")


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8")


def utf8(data: str) -> bytes:
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a JS string cut inside a pair) cannot be stored or rejoined.
        raise BadRequest("chunk 'data' is not valid Unicode text") from None


def _tag(connection_id: str) -> str:
    if not connection_id or "{" in connection_id or "}" in connection_id:
        raise ValueError(f"connection id {connection_id!r} cannot be used as a hash tag")
    return f"collab:{{{connection_id}}}:chunk"


def _parts_key(connection_id: str, chunk_id: str) -> str:
    return f"{_tag(connection_id)}:parts:{chunk_id}"


def _pending_key(connection_id: str) -> str:
    return f"{_tag(connection_id)}:pending"


def _keys(connection_id: str, chunk_id: str) -> list[str]:
    return [
        _parts_key(connection_id, chunk_id),
        f"{_tag(connection_id)}:end:{chunk_id}",
        _pending_key(connection_id),
    ]


def split_message(
    text: str, limit: int = SERVER_CHUNK_LIMIT, new_id: Callable[[], str] | None = None
) -> list[str]:
    """The frames to send for `text`: `[text]` when it fits in `limit` bytes, else
    `{"type":"chunk","id","seq","total","data"}` frames of at most `limit` bytes each,
    envelope included. Frames are ASCII JSON; slices are cut between code points, so a
    receiver that joins the decoded `data` fields gets `text` back exactly."""
    if len(text.encode("utf-8")) <= limit:
        return [text]
    chunk_id = new_id() if new_id is not None else uuid.uuid4().hex
    # total <= len(text) (every slice holds at least one character), so an envelope with
    # seq = total = len(text) is at least as long as any real one.
    budget = limit - len(_frame(chunk_id, len(text), len(text), ""))
    # One character escapes to at most 12 bytes (an astral one as two \\uXXXX escapes).
    if budget < 12:
        raise ValueError(f"frame limit {limit} leaves no room for data")
    slices = _slices(text, budget)
    return [_frame(chunk_id, seq, len(slices), piece) for seq, piece in enumerate(slices)]


def _slices(text: str, budget: int) -> list[str]:
    """Cut `text` so that each slice, JSON-escaped, takes at most `budget` bytes."""
    slices = []
    pos = 0
    while pos < len(text):
        count = min(budget, len(text) - pos)
        # Escapes (quotes, backslashes, non-ASCII) make a slice longer than its
        # character count; shrink in proportion until it fits. Strictly decreasing, and
        # never below 1 because one character always fits.
        while (size := _escaped_size(text[pos : pos + count])) > budget:
            count = count * budget // size
        slices.append(text[pos : pos + count])
        pos += count
    return slices


def _escaped_size(piece: str) -> int:
    return len(json.dumps(piece)) - 2  # ensure_ascii: one byte per character


def _frame(chunk_id: str, seq: int, total: int, data: str) -> str:
    fields = {"type": "chunk", "id": chunk_id, "seq": seq, "total": total, "data": data}
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
