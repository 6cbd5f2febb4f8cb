"""Presence (issue 4 item 5, DESIGN §4 invariant 6): the y-protocols awareness update codec
and the per-scene awareness state in Redis.

An awareness update is varUint(count) then, per entry, varUint(clientID), varUint(clock),
varString(JSON state); the state `null` removes the client. Strings are lib0 varStrings:
varUint(UTF-8 byte length) + UTF-8 (pycrdt's encoder writes the code-point count, so it
is not used here).

The store mirrors y-protocols' `applyAwarenessUpdate`: an entry wins if its clock is above
the stored one (an unknown client counts as clock 0), or if the clock is equal and it
removes a state that is present. On top of that, a connection may only set or remove
client ids it introduced itself. Reordered invocations therefore never roll presence back.

Key layout, all under the scene's hash tag so each script touches one cluster slot:

    collab:{scene}:aw:clock   hash  clientId -> clock (decimal)
    collab:{scene}:aw:state   hash  clientId -> JSON state text ("null" once removed)
    collab:{scene}:aw:conn    hash  clientId -> connection id that introduced it
    collab:{scene}:aw:at      hash  clientId -> last accepted write (ms since the epoch)
    collab:{scene}:aw:gone    zset  connection id -> when it ended (ms)

A removed client keeps its clock (a tombstone) so a late older update cannot bring it
back. Every key's TTL is refreshed on write, so an abandoned scene's presence disappears.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from collab.cache import Cache, scene_key
from collab.errors import BadRequest, TooLarge
from collab.lib0 import Reader, var_string, var_uint

# lib0 reads integers as JavaScript numbers and refuses anything above this.
REMOVED = "null"


@dataclass(frozen=True)
class AwarenessEntry:
    """One client's awareness state; `state` is its JSON text, "null" for a removal."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == REMOVED


# ---------------------------------------------------------------------------- codec


def decode_update(data: bytes) -> list[AwarenessEntry]:
    """The entries of an awareness update (the payload of `[1, varUint8Array(update)]`).
    Raises BadRequest on truncation, out-of-range integers, invalid UTF-8 or JSON, and
    trailing bytes."""
    reader = Reader(data, "awareness update")
    count = reader.var_uint()
    entries = []
    for _ in range(count):  # a lying count runs out of bytes and raises
        client_id = reader.var_uint()
        clock = reader.var_uint()
        entries.append(AwarenessEntry(client_id, clock, _checked_state(reader.var_string())))
    reader.finish()
    return entries


def _checked_state(text: str) -> str:
    """The state text as sent (peers parse it themselves); any JSON null becomes "null"."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BadRequest("awareness state is not valid JSON") from None
    return REMOVED if value is None else text


def _refuse_constant(name: str) -> None:
    # Python accepts NaN and Infinity; JSON.parse in the browser does not.
    raise ValueError(f"{name} is not JSON")


def encode_update(entries: Iterable[AwarenessEntry]) -> bytes:
    """An awareness update as y-protocols' `encodeAwarenessUpdate` writes it."""
    items = list(entries)
    out = bytearray(var_uint(len(items)))
    for entry in items:
        out += var_uint(entry.client_id) + var_uint(entry.clock) + var_string(entry.state)
    return bytes(out)


# ---------------------------------------------------------------------------- store

# KEYS: clock, state, conn, at, gone. ARGV: connection, now_ms, outdated_ms, ttl, then
# (clientId, clock, state) triples. Clocks travel as decimal strings: Lua numbers are
# doubles, exact up to 2**53, which is all lib0 accepts anyway.
_APPLY_SCRIPT = """
local clocks, states, owners, stamps, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local conn, now, outdated, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

-- A late invocation of a connection that has ended must not bring its presence back.
if redis.call('ZSCORE', gone, conn) then
  return {}
end

-- A client id belongs to the connection that introduced it, until that connection ends
-- or its state is outdated (its owner stopped renewing: a lost $disconnect).
local function may_write(id)
  local owner = redis.call('HGET', owners, id)
  if not owner or owner == conn or redis.call('ZSCORE', gone, owner) then
    return true
  end
  return now - tonumber(redis.call('HGET', stamps, id) or '0') >= outdated
end

-- y-protocols: a higher clock wins; an equal clock only removes a present state.
local function wins(id, clock, state)
  local stored = tonumber(redis.call('HGET', clocks, id) or '0')
  if clock ~= stored then
    return clock > stored
  end
  local present = redis.call('HGET', states, id)
  return state == 'null' and present and present ~= 'null'
end

local accepted = {}
for i = 5, #ARGV, 3 do
  local id, clock, state = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if may_write(id) and wins(id, tonumber(clock), state) then
    redis.call('HSET', clocks, id, clock)
    redis.call('HSET', states, id, state)
    redis.call('HSET', owners, id, conn)
    redis.call('HSET', stamps, id, ARGV[2])
    accepted[#accepted + 1] = id
    accepted[#accepted + 1] = clock
    accepted[#accepted + 1] = state
  end
end
if #accepted > 0 then
  for k = 1, 4 do
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end
return accepted
"""

# KEYS as above. ARGV: connection, now_ms, ttl.
_REMOVE_CONNECTION_SCRIPT = """
local clocks, states, owners, stamps, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local conn, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local removed = {}
local owned = redis.call('HGETALL', owners)
for i = 1, #owned, 2 do
  local id = owned[i]
  local state = redis.call('HGET', states, id)
  if owned[i + 1] == conn and state and state ~= 'null' then
    -- One above the stored clock, so every peer (and this store) accepts the removal.
    local clock = string.format('%.0f', tonumber(redis.call('HGET', clocks, id) or '0') + 1)
    redis.call('HSET', clocks, id, clock)
    redis.call('HSET', states, id, 'null')
    redis.call('HSET', stamps, id, ARGV[2])
    removed[#removed + 1] = id
    removed[#removed + 1] = clock
    removed[#removed + 1] = 'null'
  end
end
redis.call('ZADD', gone, now, conn)
redis.call('ZREMRANGEBYSCORE', gone, '-inf', string.format('%.0f', now - ttl * 1000))
for k = 1, 5 do
  redis.call('EXPIRE', KEYS[k], ttl)
end
return removed
"""

# KEYS as above. ARGV: now_ms, outdated_ms, keep_ms. Returns the live states and deletes
# entries untouched for keep_ms (long after any reordered invocation could arrive).
_CURRENT_SCRIPT = """
local clocks, states, owners, stamps = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, outdated, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local live = {}
local all = redis.call('HGETALL', stamps)
for i = 1, #all, 2 do
  local id, age = all[i], now - tonumber(all[i + 1])
  if age >= keep then
    for k = 1, 4 do
      redis.call('HDEL', KEYS[k], id)
    end
  elseif age < outdated then
    local state = redis.call('HGET', states, id)
    if state and state ~= 'null' then
      live[#live + 1] = id
      live[#live + 1] = redis.call('HGET', clocks, id)
      live[#live + 1] = state
    end
  end
end
return live
"""


class AwarenessStore:
    """The awareness states of every scene, in Redis; see the module docstring."""

    def __init__(
        self,
        cache: Cache,
        *,
        outdated_ms: int = 30_000,
        ttl_seconds: int = 600,
        max_state_bytes: int = 64 * 1024,
    ) -> None:
        self._apply = cache.register_script(_APPLY_SCRIPT)
        self._remove_connection = cache.register_script(_REMOVE_CONNECTION_SCRIPT)
        self._current = cache.register_script(_CURRENT_SCRIPT)
        self.outdated_ms = outdated_ms  # y-protocols' outdatedTimeout
        self.ttl_seconds = ttl_seconds
        # Every sync reply carries every current state: a cursor and a name, not a payload.
        self.max_state_bytes = max_state_bytes

    def apply(
        self, scene_id: str, connection_id: str, entries: Iterable[AwarenessEntry], now_ms: int | None = None
    ) -> list[AwarenessEntry]:
        """Apply a connection's update atomically; return the accepted entries (what to
        broadcast to the others). Raises TooLarge if a state is over `max_state_bytes`."""
        args: list[str | int] = [connection_id, _now(now_ms), self.outdated_ms, self.ttl_seconds]
        for entry in entries:
            if len(entry.state.encode("utf-8")) > self.max_state_bytes:
                raise TooLarge(f"awareness state over {self.max_state_bytes} bytes")
            args += [entry.client_id, entry.clock, entry.state]
        if len(args) == 4:
            return []
        return _entries(self._apply(keys=_keys(scene_id), args=args))

    def current(self, scene_id: str, now_ms: int | None = None) -> list[AwarenessEntry]:
        """Every present state written within `outdated_ms`, by client id."""
        args: list[int] = [_now(now_ms), self.outdated_ms, self.ttl_seconds * 1000]
        found = _entries(self._current(keys=_keys(scene_id), args=args))
        return sorted(found, key=lambda entry: entry.client_id)

    def remove_connection(
        self, scene_id: str, connection_id: str, now_ms: int | None = None
    ) -> list[AwarenessEntry]:
        """Remove every present state of a connection that ended ($disconnect or a 410),
        with clock = stored clock + 1; return those removals (to broadcast). Later
        updates from that connection are ignored."""
        args: list[str | int] = [connection_id, _now(now_ms), self.ttl_seconds]
        return _entries(self._remove_connection(keys=_keys(scene_id), args=args))


def _keys(scene_id: str) -> list[str]:
    return [scene_key(scene_id, f"aw:{part}") for part in ("clock", "state", "conn", "at", "gone")]


def _now(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms


def _entries(flat: list[bytes]) -> list[AwarenessEntry]:
    """(clientId, clock, state) triples from a script's flat reply."""
    return [
        AwarenessEntry(int(flat[i]), int(flat[i + 1]), bytes(flat[i + 2]).decode("utf-8"))
        for i in range(0, len(flat), 3)
    ]
