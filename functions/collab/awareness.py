"""Presence (issue 4 item 5, docs/design.md §4 invariants 6 and 9): the y-protocols awareness
update codec and the per-scene awareness state in Redis.

An awareness update is varUint(count) then, per entry, varUint(clientID), varUint(clock),
varString(JSON state); the state `null` removes the client. Strings are lib0 varStrings:
varUint(UTF-8 byte length) + UTF-8 (pycrdt's encoder writes the code-point count, so it
is not used here).

The store mirrors y-protocols' `applyAwarenessUpdate`: an entry wins if its clock is above
the stored one (an unknown client counts as clock 0), or if the clock is equal and it
removes a state that is present. On top of that, a connection may only set or remove
client ids it introduced itself. Reordered invocations therefore never roll presence back.

Who owns a client id (review M7): the connection that introduced it, until that
connection ends ($disconnect or a 410), or until the same user writes it from another
connection (a reconnecting client keeps its Yjs client id, and the old connection's
$disconnect may be lost), or until nobody has written it for `ttl_seconds` (10 minutes,
API Gateway's idle timeout: a connection silent that long has been closed). An owner that
is merely quiet keeps its id: browsers throttle the timers of background tabs, so their
15 s renewals come late.

Bounded work (review F7): at most `max_entries` entries and `max_message_bytes` per
update, at most `max_ids_per_connection` client ids per connection and `max_states` ids per
scene (every role counts). Every script's work is O(entries + ids of the connection +
ids forgotten), and the whole scene is at most `max_states` ids.

Retries (review M2): a script that changed something keeps its answer for
`replay_seconds` under its request id, so a client retry of a call whose reply was lost
gets the same answer (and the caller broadcasts it) instead of "nothing changed".

Key layout, all under the scene's hash tag so each script touches one cluster slot:

    collab:{scene}:aw:clock     hash  clientId -> clock (decimal)
    collab:{scene}:aw:state     hash  clientId -> JSON state text ("null" once removed)
    collab:{scene}:aw:conn      hash  clientId -> connection id that owns it
    collab:{scene}:aw:user      hash  clientId -> user id of that connection ("" unknown)
    collab:{scene}:aw:seen      zset  clientId -> last accepted write (ms since the epoch)
    collab:{scene}:aw:tomb      zset  clientId -> when it was removed (the removed subset)
    collab:{scene}:aw:owned     hash  connection id -> "id,id,..." the ids it owns
    collab:{scene}:aw:gone      zset  connection id -> when it ended (ms)
    collab:{scene}:aw:reply:<request id>  list  a changing call's answer, for a retry

(The first layout had a hash `aw:at`; it is no longer written, and the new names never
reuse an old name with another type, so old and new code never meet a WRONGTYPE.)

A removed client keeps its clock (a tombstone) so a late older update cannot bring it
back; when the scene is full, the oldest tombstone makes room for a new state. Every key's
TTL is refreshed on write, so an abandoned scene's presence disappears.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from collab import protocol
from collab.cache import Cache, scene_key
from collab.errors import BadRequest, TooLarge
from collab.lib0 import Reader, var_string, var_uint

REMOVED = "null"

# y-protocols clients send their own state, one entry; providers in the y-websocket style
# also forward removals of a few timed-out peers. Eight keeps those whole.
MAX_ENTRIES = 8
# The y-protocols message: one state of MAX_STATE_BYTES plus a few small ones.
MAX_STATE_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
# A tab has one Yjs doc (one client id); a few allow for several docs or a remount.
MAX_IDS_PER_CONNECTION = 4
# Every sync reply carries every live state; a room's cursors, not a crowd's.
MAX_STATES = 256


@dataclass(frozen=True)
class AwarenessEntry:
    """One client's awareness state; `state` is its JSON text, "null" for a removal.

    Set by the store, not part of the value: `renewal` (an accepted entry whose state is
    the one stored before: only the clock moved, y-protocols' 15 s keep-alive; in a
    roster, an entry whose renewal was held until this roster) and `age_ms` (how long ago
    the store last accepted a write for this client id)."""

    client_id: int
    clock: int
    state: str
    renewal: bool = field(default=False, compare=False)
    age_ms: int | None = field(default=None, compare=False)

    @property
    def removed(self) -> bool:
        return self.state == REMOVED


@dataclass(frozen=True)
class Applied:
    """What `apply_holding_renewals` accepted, and the roster to send if one is due."""

    accepted: list[AwarenessEntry]
    roster: list[AwarenessEntry] | None

    @property
    def to_forward(self) -> list[AwarenessEntry]:
        """The accepted entries peers must hear of now: everything but held renewals."""
        return [entry for entry in self.accepted if not entry.renewal]

    @property
    def roster_for_sender(self) -> bool:
        """Whether the sender needs the roster too: it held back another client's renewal
        (in a roster, `renewal` marks an entry the peers had not been told of yet)."""
        own = {entry.client_id for entry in self.accepted}
        return any(entry.renewal and entry.client_id not in own for entry in self.roster or ())


@dataclass(frozen=True)
class RosterPolicy:
    """When held renewals go out (docs/presence.md). `renew_ms`: a live y-protocols
    client writes its state at least this often (it renews once 15 s have passed since its
    last write, on a 3 s timer; the provider's 80 ms throttle on top). `margin_ms`: how
    much sooner than the peers' 30 s timeout a roster is sent, for its delivery (peers
    drop at their first 3 s check after the timeout, which only adds time)."""

    renew_ms: int = 18_500
    margin_ms: int = 2_000

    def args(self, outdated_ms: int) -> tuple[int, int, int, int]:
        return (1, outdated_ms, self.renew_ms, self.margin_ms)


# ---------------------------------------------------------------------------- codec


def decode_update(data: bytes, max_entries: int = MAX_ENTRIES) -> list[AwarenessEntry]:
    """The entries of an awareness update (the payload of `[1, varUint8Array(update)]`).
    Raises TooLarge for a declared count over `max_entries` (before reading any entry),
    and BadRequest on truncation, out-of-range integers, invalid UTF-8 or JSON, and
    trailing bytes."""
    reader = Reader(data, "awareness update")
    count = reader.var_uint()
    if count > max_entries:
        raise TooLarge(f"an awareness update may carry at most {max_entries} entries, not {count}")
    entries = []
    for _ in range(count):
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


def decode_message(
    data: str, max_message_bytes: int, max_entries: int, max_state_bytes: int
) -> list[AwarenessEntry]:
    """The entries of an `awareness` frame's `data` (base64 of `[1, update]`), for either
    store. Raises TooLarge, before decoding anything, when the text is over
    `max_message_bytes` (chunked messages included) or the update declares more than
    `max_entries` entries, and after it for a state over `max_state_bytes`; BadRequest for
    anything malformed. Every check that needs no stored state is here, so that a frame
    is refused whole before anything is stored (an `update` carrying awareness)."""
    if len(data) > base64_length(max_message_bytes):
        raise TooLarge(f"an awareness message may be at most {max_message_bytes} bytes")
    update = protocol.decode_awareness_message(protocol.decode_base64(data))
    entries = decode_update(update, max_entries)
    check_entries(entries, max_entries, max_state_bytes)
    return entries


def check_entries(items: list[AwarenessEntry], max_entries: int, max_state_bytes: int) -> None:
    """The caps an update must pass before either store changes anything."""
    if len(items) > max_entries:
        raise TooLarge(f"an awareness update may carry at most {max_entries} entries")
    for entry in items:
        if len(entry.state.encode("utf-8")) > max_state_bytes:
            raise TooLarge(f"awareness state over {max_state_bytes} bytes")


def base64_length(size: int) -> int:
    """The length of the padded base64 text of `size` bytes."""
    return 4 * -(-size // 3)


# ---------------------------------------------------------------------------- store

# Shared by every script. KEYS[1..9]: clock, state, conn, user, told, seen, tomb, owned,
# gone.
_PRELUDE = """
local clocks, states, owners, users, told = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local seen, tombs, owned, gone = KEYS[6], KEYS[7], KEYS[8], KEYS[9]

local function ids_of(conn)
  local list = {}
  for id in string.gmatch(redis.call('HGET', owned, conn) or '', '[^,]+') do
    list[#list + 1] = id
  end
  return list
end

local function disown(conn, id)
  local kept = {}
  for _, other in ipairs(ids_of(conn)) do
    if other ~= id then
      kept[#kept + 1] = other
    end
  end
  if #kept == 0 then
    redis.call('HDEL', owned, conn)
  else
    redis.call('HSET', owned, conn, table.concat(kept, ','))
  end
end

local function forget(id)
  local owner = redis.call('HGET', owners, id)
  if owner then
    disown(owner, id)
  end
  for k = 1, 5 do
    redis.call('HDEL', KEYS[k], id)
  end
  redis.call('ZREM', seen, id)
  redis.call('ZREM', tombs, id)
end

-- Ids nobody wrote for `keep` ms: their owners are dead (API Gateway closes a connection
-- idle for 10 minutes) and no reordered invocation arrives that late. At most the
-- scene's cap, and each id is forgotten once: amortised O(1) per id ever admitted.
local function prune(now, keep)
  local old = redis.call('ZRANGEBYSCORE', seen, '-inf', string.format('%.0f', now - keep))
  for _, id in ipairs(old) do
    forget(id)
  end
end

local function refresh(ttl)
  for k = 1, 9 do
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end

-- Present states written within `outdated` ms, as {id, clock, state, age ms} quadruples.
local function live(now, outdated)
  local found = {}
  local recent = redis.call('ZRANGEBYSCORE', seen, '(' .. string.format('%.0f', now - outdated), '+inf', 'WITHSCORES')
  for i = 1, #recent, 2 do
    local id = recent[i]
    local state = redis.call('HGET', states, id)
    if state and state ~= 'null' then
      found[#found + 1] = id
      found[#found + 1] = redis.call('HGET', clocks, id)
      found[#found + 1] = state
      -- Never negative: an invocation that read its clock before another's write ran first.
      found[#found + 1] = string.format('%.0f', math.max(0, now - tonumber(recent[i + 1])))
    end
  end
  return found
end

-- Is a roster due (docs/presence.md)? Renewals are held back, not fanned out; a roster
-- sends every live state to every member at once. Peers keep a state until 30 s
-- (`outdated`) after the write they were last told of (`told`), so a held renewal must
-- reach them before that, less `margin`. Every live y-protocols client writes within
-- `renew` ms of its last write, and each write is a chance to act: a roster goes out
-- when something is held and fewer than two writes can be counted on before the earliest
-- deadline (two, from two connections: so that one client dying silently, however many
-- client ids it holds, cannot make a held renewal late).
local function roster_due(now, outdated, renew, margin)
  local deadline = math.huge
  local soonest = {}  -- connection -> the earliest write it can be counted on for
  local recent = redis.call('ZRANGEBYSCORE', seen, '(' .. string.format('%.0f', now - outdated), '+inf', 'WITHSCORES')
  for i = 1, #recent, 2 do
    local id, at = recent[i], tonumber(recent[i + 1])
    local state = redis.call('HGET', states, id)
    if state and state ~= 'null' then
      local last_told = tonumber(redis.call('HGET', told, id) or '0')
      if at > last_told then
        deadline = math.min(deadline, last_told + outdated - margin)
      end
      if now - at <= renew then
        local conn = redis.call('HGET', owners, id) or id
        soonest[conn] = math.min(soonest[conn] or math.huge, at + renew)
      end
    end
  end
  if deadline == math.huge then
    return false
  end
  local first, second = math.huge, math.huge
  for _, expected in pairs(soonest) do
    if expected < first then
      first, second = expected, first
    elseif expected < second then
      second = expected
    end
  end
  return second >= deadline
end

-- Send a roster: every live state, each now told as of its last write. Returns
-- {id, clock, state, age, held ('1': peers had not been told of its last write)}.
local function take_roster(now, outdated)
  local found = live(now, outdated)
  local roster = {}
  for i = 1, #found, 4 do
    local id, written = found[i], redis.call('ZSCORE', seen, found[i])
    local held = tonumber(redis.call('HGET', told, id) or '0') < tonumber(written)
    redis.call('HSET', told, id, written)
    for k = 0, 3 do
      roster[#roster + 1] = found[i + k]
    end
    roster[#roster + 1] = held and '1' or '0'
  end
  return roster
end

-- A retry of a call whose reply was lost must get the same answer, not "nothing new".
local function keep_reply(reply, result, seconds)
  for i = 1, #result, 500 do
    redis.call('RPUSH', reply, unpack(result, i, math.min(i + 499, #result)))
  end
  redis.call('EXPIRE', reply, seconds)
  return result
end
"""

# KEYS as in the prelude, then KEYS[10] the reply key. ARGV: connection, user, now_ms,
# ttl, max_ids, max_states, replay_seconds, hold (1: hold renewals for rosters), outdated,
# renew and margin (ms), then (clientId, clock, state) triples. Clocks
# travel as decimal strings: Lua numbers are doubles, exact up to 2**53, which is all
# lib0 accepts anyway. Returns {'ok', n, n (clientId, clock, state, renewal) accepted,
# then the roster's (clientId, clock, state, age) if one is due} or {refusal}.
_APPLY_SCRIPT = (
    _PRELUDE
    + """
local reply = KEYS[10]
local conn, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl, max_ids, max_states = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local replay_for = tonumber(ARGV[7])
local hold, outdated, renew, margin = ARGV[8] == '1', tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local FIRST = 12

local kept = redis.call('LRANGE', reply, 0, -1)
if #kept > 0 then
  return kept
end
-- A late invocation of a connection that has ended must not bring its presence back.
if redis.call('ZSCORE', gone, conn) then
  return {'ok', '0'}
end
prune(now, ttl * 1000)

-- 'own', 'takeover' (with the owner it is taken from), 'new', or nil: not this caller's.
local function access(id)
  local owner = redis.call('HGET', owners, id)
  if not owner then
    return 'new'
  elseif owner == conn then
    return 'own'
  elseif redis.call('ZSCORE', gone, owner) then
    return 'takeover', owner
  elseif user ~= '' and redis.call('HGET', users, id) == user then
    return 'takeover', owner
  end
  return nil
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

-- The caps refuse an update whole, before it changes anything, when its states would
-- take the connection or the scene over them. Tombstones make room; removals alone are
-- never refused (below they are just not recorded when there is no room).
local introduced, new_ids = 0, 0
for i = FIRST, #ARGV, 3 do
  local id, clock, state = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local kind = access(id)
  if kind and kind ~= 'own' and state ~= 'null' and wins(id, clock, state) then
    introduced = introduced + 1
    if kind == 'new' then
      new_ids = new_ids + 1
    end
  end
end
if #ids_of(conn) + introduced > max_ids then
  return {'too_many_ids'}
end
if new_ids > max_states - redis.call('ZCARD', seen) + redis.call('ZCARD', tombs) then
  return {'scene_full'}
end

local accepted = {}
for i = FIRST, #ARGV, 3 do
  local id, clock, state = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local kind, previous = access(id)  -- again: an earlier entry may have changed it
  if kind and wins(id, tonumber(clock), state) then
    local renewal = kind == 'own' and state ~= 'null' and redis.call('HGET', states, id) == state
    local fits = kind == 'own' or #ids_of(conn) < max_ids
    if fits and kind == 'new' and redis.call('ZCARD', seen) >= max_states then
      local oldest = redis.call('ZPOPMIN', tombs)
      if #oldest > 0 then
        forget(oldest[1])
      else
        fits = false
      end
    end
    if fits then
      if previous then
        disown(previous, id)
      end
      if kind ~= 'own' then
        local list = ids_of(conn)
        list[#list + 1] = id
        redis.call('HSET', owned, conn, table.concat(list, ','))
      end
      redis.call('HSET', clocks, id, clock)
      redis.call('HSET', states, id, state)
      redis.call('HSET', owners, id, conn)
      redis.call('HSET', users, id, user)
      redis.call('ZADD', seen, now, id)
      if state == 'null' then
        redis.call('ZADD', tombs, now, id)
      else
        redis.call('ZREM', tombs, id)
      end
      -- A held renewal: peers were told of this id's earlier write only.
      if not renewal or not hold then
        redis.call('HSET', told, id, string.format('%.0f', now))
      end
      accepted[#accepted + 1] = id
      accepted[#accepted + 1] = clock
      accepted[#accepted + 1] = state
      accepted[#accepted + 1] = renewal and '1' or '0'
    end
  end
end
if #accepted == 0 then
  return {'ok', '0'}
end
refresh(ttl)
local result = {'ok', tostring(#accepted / 4)}
for _, value in ipairs(accepted) do
  result[#result + 1] = value
end
if hold and roster_due(now, outdated, renew, margin) then
  for _, value in ipairs(take_roster(now, outdated)) do
    result[#result + 1] = value
  end
end
return keep_reply(reply, result, replay_for)
"""
)

# KEYS as for apply. ARGV: connection, now_ms, ttl, replay_seconds, max_gone.
_REMOVE_CONNECTION_SCRIPT = (
    _PRELUDE
    + """
local reply = KEYS[10]
local conn, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local replay_for, max_gone = tonumber(ARGV[4]), tonumber(ARGV[5])

local kept = redis.call('LRANGE', reply, 0, -1)
if #kept > 0 then
  return kept
end

local removed = {'ok'}
for _, id in ipairs(ids_of(conn)) do
  local state = redis.call('HGET', states, id)
  if redis.call('HGET', owners, id) == conn and state and state ~= 'null' then
    -- One above the stored clock, so every peer (and this store) accepts the removal.
    local clock = string.format('%.0f', tonumber(redis.call('HGET', clocks, id) or '0') + 1)
    redis.call('HSET', clocks, id, clock)
    redis.call('HSET', states, id, 'null')
    redis.call('ZADD', seen, now, id)
    redis.call('ZADD', tombs, now, id)
    redis.call('HSET', told, id, string.format('%.0f', now))
    removed[#removed + 1] = id
    removed[#removed + 1] = clock
    removed[#removed + 1] = 'null'
  end
end
-- Its ids stay as tombstones, owned by a gone connection: anyone may take them now.
redis.call('HDEL', owned, conn)
redis.call('ZADD', gone, now, conn)
redis.call('ZREMRANGEBYSCORE', gone, '-inf', string.format('%.0f', now - ttl * 1000))
redis.call('ZREMRANGEBYRANK', gone, 0, -(max_gone + 1))
refresh(ttl)
if #removed > 1 then
  keep_reply(reply, removed, replay_for)
end
return removed
"""
)

# KEYS as in the prelude. ARGV: now_ms, outdated_ms, keep_ms. Forgets ids unwritten for
# keep_ms, then returns the present states written within outdated_ms: O(scene cap).
_CURRENT_SCRIPT = (
    _PRELUDE
    + """
local now, outdated, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
prune(now, keep)
return live(now, outdated)
"""
)

_PARTS = ("clock", "state", "conn", "user", "told", "seen", "tomb", "owned", "gone")


class PresenceUnavailable(Exception):
    """The presence store could not serve this call now (a cache outage, or, in DynamoDB,
    a call that kept losing its races); the caller carries on without presence."""


class Presence(Protocol):
    """What the handlers need of a presence store: AwarenessStore (Redis) or, on a stage
    without a cache, collab.awareness_table.AwarenessTable (DynamoDB)."""

    def decode(self, data: str) -> list[AwarenessEntry]: ...

    def apply(
        self,
        scene_id: str,
        connection_id: str,
        entries: Iterable[AwarenessEntry],
        now_ms: int | None = None,
        *,
        user_id: str | None = None,
        request_id: str | None = None,
    ) -> list[AwarenessEntry]: ...

    def apply_holding_renewals(
        self,
        scene_id: str,
        connection_id: str,
        entries: Iterable[AwarenessEntry],
        now_ms: int | None = None,
        *,
        user_id: str | None = None,
        request_id: str | None = None,
        policy: RosterPolicy | None = None,
    ) -> Applied: ...

    def current(self, scene_id: str, now_ms: int | None = None) -> list[AwarenessEntry]: ...

    def remove_connection(
        self,
        scene_id: str,
        connection_id: str,
        now_ms: int | None = None,
        *,
        request_id: str | None = None,
    ) -> list[AwarenessEntry]: ...


class AwarenessStore:
    """The awareness states of every scene, in Redis; see the module docstring."""

    def __init__(
        self,
        cache: Cache,
        *,
        outdated_ms: int = 30_000,
        ttl_seconds: int = 600,
        max_state_bytes: int = MAX_STATE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_entries: int = MAX_ENTRIES,
        max_ids_per_connection: int = MAX_IDS_PER_CONNECTION,
        max_states: int = MAX_STATES,
        replay_seconds: int = 30,
    ) -> None:
        self._apply = cache.register_script(_APPLY_SCRIPT)
        self._remove_connection = cache.register_script(_REMOVE_CONNECTION_SCRIPT)
        self._current = cache.register_script(_CURRENT_SCRIPT)
        self.outdated_ms = outdated_ms  # y-protocols' outdatedTimeout
        # How long an id is remembered after its last write; also when a silent owner is
        # dead. API Gateway closes a connection idle for 10 minutes.
        self.ttl_seconds = ttl_seconds
        # Every sync reply carries every current state: a cursor and a name, not a payload.
        self.max_state_bytes = max_state_bytes
        self.max_message_bytes = max_message_bytes
        self.max_entries = max_entries
        self.max_ids_per_connection = max_ids_per_connection
        self.max_states = max_states
        # Longer than any client retry of one call (redis-py's default retries end in
        # about 30 s); the kept answers are a few hundred bytes each.
        self.replay_seconds = replay_seconds
        # Ended connections remembered, so their late invocations stay ignored.
        self.max_gone = 4 * max_states

    def decode(self, data: str) -> list[AwarenessEntry]:
        """The entries of an `awareness` frame's `data` (`decode_message`)."""
        return decode_message(data, self.max_message_bytes, self.max_entries, self.max_state_bytes)

    def apply(
        self,
        scene_id: str,
        connection_id: str,
        entries: Iterable[AwarenessEntry],
        now_ms: int | None = None,
        *,
        user_id: str | None = None,
        request_id: str | None = None,
    ) -> list[AwarenessEntry]:
        """Apply a connection's update atomically; return the accepted entries (what to
        broadcast to the others), renewals included. `user_id` is the connection's user:
        the same user may take its client ids back from an older connection of its own. A
        retry with the same `request_id` (one per call by default) gets the same answer.

        Raises TooLarge, with nothing applied, if a state is over `max_state_bytes`, the
        update has more than `max_entries` entries, or its states would take the
        connection over `max_ids_per_connection` client ids or the scene over `max_states`.
        """
        return self._run_apply(scene_id, connection_id, entries, now_ms, user_id, request_id, None).accepted

    def apply_holding_renewals(
        self,
        scene_id: str,
        connection_id: str,
        entries: Iterable[AwarenessEntry],
        now_ms: int | None = None,
        *,
        user_id: str | None = None,
        request_id: str | None = None,
        policy: RosterPolicy | None = None,
    ) -> Applied:
        """`apply`, with renewals held back (docs/presence.md): the accepted entries, each
        marked `renewal` or not, and a roster when one is due (then every live state, for
        every member of the scene, instead of fanning the accepted entries out)."""
        return self._run_apply(
            scene_id, connection_id, entries, now_ms, user_id, request_id, policy or RosterPolicy()
        )

    def _run_apply(
        self,
        scene_id: str,
        connection_id: str,
        entries: Iterable[AwarenessEntry],
        now_ms: int | None,
        user_id: str | None,
        request_id: str | None,
        policy: RosterPolicy | None,
    ) -> Applied:
        items = list(entries)
        check_entries(items, self.max_entries, self.max_state_bytes)
        if not items:
            return Applied([], None)
        args: list[str | int] = [
            connection_id,
            user_id or "",
            _now(now_ms),
            self.ttl_seconds,
            self.max_ids_per_connection,
            self.max_states,
            self.replay_seconds,
            *(policy.args(self.outdated_ms) if policy is not None else (0, self.outdated_ms, 0, 0)),
        ]
        for entry in items:
            args += [entry.client_id, entry.clock, entry.state]
        keys = [*_keys(scene_id), _reply_key(scene_id, request_id)]
        flat = self._apply(keys=keys, args=args)
        status = bytes(flat[0]).decode("ascii")
        if status == "too_many_ids":
            raise TooLarge(
                f"a connection may introduce at most {self.max_ids_per_connection} awareness client ids"
            )
        if status == "scene_full":
            raise TooLarge(f"the scene already has the most awareness states allowed ({self.max_states})")
        count = int(flat[1])
        end = 2 + 4 * count
        accepted = [
            AwarenessEntry(
                int(flat[i]), int(flat[i + 1]), bytes(flat[i + 2]).decode("utf-8"), flat[i + 3] == b"1"
            )
            for i in range(2, end, 4)
        ]
        roster = _roster(flat[end:]) if len(flat) > end else None
        return Applied(accepted, roster)

    def current(self, scene_id: str, now_ms: int | None = None) -> list[AwarenessEntry]:
        """Every present state written within `outdated_ms`, by client id."""
        args: list[int] = [_now(now_ms), self.outdated_ms, self.ttl_seconds * 1000]
        return _aged(self._current(keys=_keys(scene_id), args=args))

    def remove_connection(
        self,
        scene_id: str,
        connection_id: str,
        now_ms: int | None = None,
        *,
        request_id: str | None = None,
    ) -> list[AwarenessEntry]:
        """Remove every present state of a connection that ended ($disconnect or a 410),
        with clock = stored clock + 1; return those removals (to broadcast). Later
        updates from that connection are ignored. A retry with the same `request_id` gets
        the same removals."""
        args: list[str | int] = [
            connection_id,
            _now(now_ms),
            self.ttl_seconds,
            self.replay_seconds,
            self.max_gone,
        ]
        keys = [*_keys(scene_id), _reply_key(scene_id, request_id)]
        return _reply(self._remove_connection(keys=keys, args=args))[1]


def key_parts() -> tuple[str, ...]:
    """The per-scene key names (after `aw:`), for tests and tools that clean up."""
    return _PARTS


def _keys(scene_id: str) -> list[str]:
    return [scene_key(scene_id, f"aw:{part}") for part in _PARTS]


def _reply_key(scene_id: str, request_id: str | None) -> str:
    return scene_key(scene_id, f"aw:reply:{request_id or uuid.uuid4().hex}")


def _now(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms


def _reply(flat: list[bytes]) -> tuple[str, list[AwarenessEntry]]:
    """A changing script's {status, triples...} reply."""
    return bytes(flat[0]).decode("ascii"), _entries(flat[1:])


def _roster(flat: list[bytes]) -> list[AwarenessEntry]:
    """(clientId, clock, state, age ms, held) quintuples, by client id."""
    found = [
        AwarenessEntry(
            int(flat[i]),
            int(flat[i + 1]),
            bytes(flat[i + 2]).decode("utf-8"),
            flat[i + 4] == b"1",
            int(flat[i + 3]),
        )
        for i in range(0, len(flat), 5)
    ]
    return sorted(found, key=lambda entry: entry.client_id)


def _aged(flat: list[bytes]) -> list[AwarenessEntry]:
    """(clientId, clock, state, age ms) quadruples, by client id."""
    found = [
        AwarenessEntry(
            int(flat[i]), int(flat[i + 1]), bytes(flat[i + 2]).decode("utf-8"), age_ms=int(flat[i + 3])
        )
        for i in range(0, len(flat), 4)
    ]
    return sorted(found, key=lambda entry: entry.client_id)


def _entries(flat: list[bytes]) -> list[AwarenessEntry]:
    """(clientId, clock, state) triples from a script's flat reply."""
    return [
        AwarenessEntry(int(flat[i]), int(flat[i + 1]), bytes(flat[i + 2]).decode("utf-8"))
        for i in range(0, len(flat), 3)
    ]
