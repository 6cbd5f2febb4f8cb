"""Presence without a cache (issue 11 item 2, `cacheKind: none`): AwarenessStore's rules
(collab.awareness, docs/design.md §4 invariants 6 and 9) on the documents table in DynamoDB.

The same interface and answers as AwarenessStore: the highest clock per client id wins
(an equal clock only removes a present state), a connection sets and removes only the
client ids it introduced (its user may take them back from an older connection of its
own; an id nobody wrote for `ttl_seconds` is free), an ended connection's late writes are
ignored, the caps are the same, a removal leaves a tombstone that keeps the clock, and the
oldest tombstone makes room in a full scene.

Items of the documents table, in the scene's partition (no other module's query reads
`aw#`: durable_log queries `log#` and `snap#`, durable_chunks `chunk#`, client_ids reads
`client#<id>` by key):

    aw#s               the scene: `n` (how many client id items) and `tombs` (the removed
                       ones, "id@removedAt,..."), what the caps and the eviction read
    aw#s#<client id>   one client id: clock, state, owner connection and user, `seen` (its
                       last accepted write, ms), `told` (when its own write was last
                       forwarded), `ended` (its owner has ended), `req` (the call that
                       wrote it)
    aw#s-roster        the last roster of held renewals: the call that took it and the
                       `seen` of every state it told peers of
    aw#c#<connection>  one connection: the ids it owns ("1,3"), `gone` once it has ended,
                       and the removals its end announced (for a retry)

One Query (`begins_with(sk, "aw#s")`) reads the scene item, every client id and the last
roster, nothing else: `current` and the roster's decision read at most the scene's cap
of ids.

How a Lua script's atomicity is kept: every call reads the items its decision depends on
(strongly consistent), decides exactly as the script does, in Python, and writes what
changed with a condition that each item it read still has the version (`ver`) it read.
If anything moved in between, nothing is written and the call reads and decides again.
That is serialisable for the items involved, so every race the scripts exclude is
excluded here too: two invocations of one connection reordered (the later clock wins,
whichever writes first), two connections of one user taking an id back and forth, a
$disconnect racing the connection's own last write (the removal and the ended mark are one
transaction with the connection's `gone`, so a write decided before it fails its version
and, decided again, finds the connection gone), and the scene cap: every admission
changes `aw#s` under its version, so the cap is exact while the items are intact.
Should DynamoDB's TTL delete `aw#s` while ids live on (only in a scene where nobody synced
for two hours: `current` refreshes it), the count starts again from zero and the scene may
take up to twice the cap until the next `current` repairs it; `current` reads at most
twice the cap, so that stays bounded. A call that loses its race
MAX_ATTEMPTS times raises AwarenessContended, for the caller to treat as an unavailable
cache (drop that awareness message; the client renews it within 15 s).

When one item is enough, one conditional write: a renewal or cursor move of an id the
connection owns (the hot path) is a BatchGetItem of the connection and the id and one
PutItem of the id. It does not check the connection item: the only change to it that
matters, its end, rewrites every id it owns in the same transaction, so the id's version
moves. TransactWriteItems only where items must change together: an id changing hands
(the id, its new owner's list and its old owner's list), a state appearing, disappearing
or being removed (the id and the scene's count and tombstones), a connection's end (its
`gone` and its ids' tombstones), an update of several ids (refused or applied whole).

Retries: a call that failed its condition because its own write had landed (botocore
retries a write whose response was lost; DynamoDB's transaction token makes a retried
transaction a no-op, moto's server does not) recognises that write by `req` and answers
as the first attempt did, and so does a caller's retry with the same `request_id`. What
it cannot recognise: an entry a newer write of the same id has replaced since. The Redis
store keeps its answer for `replay_seconds` and would broadcast that entry again; here it
is not returned, and peers would have ignored it (its clock is older than what they have).
A removal's retry gets the removals, kept on the connection item.

What is forgotten when: an id nobody wrote for `ttl_seconds` is forgotten by the next
`apply` that names it (as the script's prune does) or by `current` (a bounded batch per
call, amortised O(1) per id ever admitted). The script forgets every such id of the scene
on every call; `apply` here reads only its own ids (invariant 9), so a full scene whose
owners are silent makes room once a `current` has run, which every `sync` does before a
newcomer's first awareness. `current` also repairs `aw#s` if it disagrees with the items
(DynamoDB's TTL deleted an item, or `aw#s` itself expired), under its version. Every
write sets `expiresAt`, so an abandoned scene's presence disappears.

Held renewals (`apply_holding_renewals`, docs/presence.md) decide as the script does: an
accepted renewal keeps the id's `told`, and `roster_due` reads the scene's live states (the
Query above: the script reads them too). Peers were told of an id by its last forwarded
write or by the last roster, whichever is later, so a roster is one conditional put of
`aw#s-roster` on the version read (racing writers send one roster), not a write per id.
A retry of the call that took it gets the roster again, its states as they are now.

Work per call: `apply` reads and writes O(entries + the owners and tombstones they
touch); `remove_connection` O(ids of the connection); `current` and
`apply_holding_renewals` also read the scene's ids (at most `max_states` of them, bounded
at twice that).
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from collab import protocol
from collab.awareness import (
    MAX_ENTRIES,
    MAX_IDS_PER_CONNECTION,
    MAX_MESSAGE_BYTES,
    MAX_STATE_BYTES,
    MAX_STATES,
    REMOVED,
    Applied,
    AwarenessEntry,
    PresenceUnavailable,
    RosterPolicy,
    base64_length,
    decode_update,
)
from collab.errors import TooLarge

SCENE = "aw#s"
ID_PREFIX = "aw#s#"
CONN_PREFIX = "aw#c#"
HELD_ROSTER = "aw#s-roster"  # apply_holding_renewals': in the scene's Query, after the ids

# API Gateway closes a WebSocket connection after two hours: a connection item written
# now is needed at most that long, plus the idle timeout its ids are kept for.
CONNECTION_SECONDS = 2 * 3600
# A decision read again after a conflict; conflicts mean another call made progress.
MAX_ATTEMPTS = 8
# Ids forgotten by one `current`: one transaction, amortised over the calls.
PRUNE_BATCH = 25
# A transaction holds at most 100 items.
TRANSACTION_LIMIT = 100


class AwarenessContended(PresenceUnavailable):
    """Other calls kept changing the items this call read, MAX_ATTEMPTS times over."""


def _no_pause(point: str) -> None:
    return None


# ---------------------------------------------------------------------------- items


@dataclass
class _Id:
    clock: int
    state: str
    conn: str
    user: str
    seen: int
    ended: bool = False
    req: str = ""
    renewal: bool = False
    told: int = 0  # when peers were last told of this id's state by a write (ms)

    @property
    def present(self) -> bool:
        return self.state != REMOVED


@dataclass
class _Conn:
    ids: list[int] = field(default_factory=list)
    gone: int | None = None
    bye_req: str = ""
    bye: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Scene:
    n: int = 0
    tombs: dict[int, int] = field(default_factory=dict)  # removed client id -> when (ms)


@dataclass
class _Roster:
    """The last roster of held renewals: who took it, and the write of each live id it
    told peers of (a roster tells of every live state at once, so it is one item here,
    not a write to every id)."""

    at: int = 0
    req: str = ""
    told: dict[int, int] = field(default_factory=dict)  # client id -> `seen` it carried


_Value = _Id | _Conn | _Scene | _Roster
_T = TypeVar("_T")


class _Need(Exception):
    """A decision needs an item that has not been read yet: read it, decide again."""

    def __init__(self, sort_keys: list[str]) -> None:
        super().__init__(sort_keys)
        self.sort_keys = sort_keys


class _World:
    """The items one decision reads, as read (with their versions) and as it leaves them."""

    def __init__(self, me: str | None = None) -> None:
        self.read: dict[str, tuple[int, _Value] | None] = {}  # None: the item is absent
        self.work: dict[str, _Value | None] = {}
        self.consulted: set[str] = set()
        self.touched: set[str] = set()  # written even if unchanged (a refreshed TTL)
        self.expires: dict[str, int] = {}  # sort key -> expiresAt as read
        self.me = me  # the connection whose own ids a lone write need not check it for

    def reset(self) -> None:
        self.work = {sk: copy.deepcopy(kept[1]) if kept else None for sk, kept in self.read.items()}
        self.consulted = set()
        self.touched = set()

    def require(self, sort_keys: Iterable[str]) -> None:
        """Read these first (one BatchGetItem for all, not one round trip each)."""
        missing = [sk for sk in dict.fromkeys(sort_keys) if sk not in self.read]
        if missing:
            raise _Need(missing)

    def _get(self, sort_key: str) -> _Value | None:
        if sort_key not in self.read:
            raise _Need([sort_key])
        self.consulted.add(sort_key)
        return self.work[sort_key]

    def id(self, client: int) -> _Id | None:
        value = self._get(ID_PREFIX + str(client))
        assert value is None or isinstance(value, _Id)
        return value

    # An absent connection or scene item reads as empty, and is written only if changed.
    def conn(self, connection_id: str) -> _Conn:
        sort_key = CONN_PREFIX + connection_id
        value = self._get(sort_key)
        if value is None:
            value = self.work[sort_key] = _Conn()
        assert isinstance(value, _Conn)
        return value

    def scene(self) -> _Scene:
        value = self._get(SCENE)
        if value is None:
            value = self.work[SCENE] = _Scene()
        assert isinstance(value, _Scene)
        return value

    def put(self, sort_key: str, value: _Value) -> None:
        """Write an item whatever it held (it must have been read)."""
        self._get(sort_key)
        self.work[sort_key] = value

    def put_id(self, client: int, value: _Id | None) -> None:
        """Write (or, with None, forget) an id, keeping the scene's count and tombstones."""
        old = self.id(client)
        still_present = old is not None and value is not None and old.present and value.present
        same_tombstone = (
            old is not None
            and value is not None
            and not old.present
            and not value.present
            and old.seen == value.seen
        )
        if not (still_present or same_tombstone):
            scene = self.scene()
            if old is None:
                scene.n += 1
            if value is None:
                scene.n = max(0, scene.n - 1)
            if value is None or value.present:
                scene.tombs.pop(client, None)
            else:
                scene.tombs[client] = value.seen
        self.work[ID_PREFIX + str(client)] = value

    def forget(self, client: int) -> None:
        """As the scripts' `forget`: the id leaves its owner's list and the scene."""
        item = self.id(client)
        if item is None:
            scene = self.scene()  # the scene names an item that is gone: repair the count
            if client in scene.tombs:
                del scene.tombs[client]
                scene.n = max(0, scene.n - 1)
            return
        if not item.ended:  # an ended owner's list was emptied when it ended
            owner = self.conn(item.conn)
            if client in owner.ids:
                owner.ids.remove(client)
        self.put_id(client, None)

    def changed(self) -> list[str]:
        changes = []
        for sort_key in sorted(self.consulted):
            kept = self.read[sort_key]
            before = kept[1] if kept else _default(sort_key)
            after = self.work[sort_key]
            if sort_key in self.touched or after != before:
                changes.append(sort_key)
        return changes

    def lone_write_is_safe(self, sort_key: str) -> bool:
        """May `sort_key`, the only item changed, be written checking only its own version?
        Yes when it is the only item consulted, or an id owned by `me` before and after
        with only `me`'s item consulted besides: that item's one change that matters here
        (the connection's end) rewrites every id it owns, so the id's version moves."""
        others = self.consulted - {sort_key}
        if not others:
            return True
        if self.me is None or others != {CONN_PREFIX + self.me} or not sort_key.startswith(ID_PREFIX):
            return False
        kept, after = self.read[sort_key], self.work[sort_key]
        before = kept[1] if kept else None
        return isinstance(before, _Id) and isinstance(after, _Id) and before.conn == after.conn == self.me


def _default(sort_key: str) -> _Value | None:
    if sort_key == SCENE:
        return _Scene()
    if sort_key.startswith(CONN_PREFIX):
        return _Conn()
    return None


# ---------------------------------------------------------------------------- the store


class AwarenessTable:
    """The awareness states of every scene, in DynamoDB; see the module docstring."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        outdated_ms: int = 30_000,
        ttl_seconds: int = 600,
        max_state_bytes: int = MAX_STATE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_entries: int = MAX_ENTRIES,
        max_ids_per_connection: int = MAX_IDS_PER_CONNECTION,
        max_states: int = MAX_STATES,
        replay_seconds: int = 30,
        pause: Callable[[str], None] = _no_pause,
    ) -> None:
        # One transaction holds a whole update (each entry's id, old owner, evicted
        # tombstone and its owner) or a connection's whole end.
        if 4 * max_entries + 2 > TRANSACTION_LIMIT or max_ids_per_connection + 2 > TRANSACTION_LIMIT:
            raise ValueError("an update or a connection's ids must fit in one transaction")
        self._db = dynamodb
        self._table = table
        self._pause = pause  # tests stop a call at named points to drive races
        self.outdated_ms = outdated_ms  # y-protocols' outdatedTimeout
        self.ttl_seconds = ttl_seconds  # as AwarenessStore: API Gateway's idle timeout
        self.max_state_bytes = max_state_bytes
        self.max_message_bytes = max_message_bytes
        self.max_entries = max_entries
        self.max_ids_per_connection = max_ids_per_connection
        self.max_states = max_states
        # Accepted for AwarenessStore's signature; retries are recognised by `req` here.
        self.replay_seconds = replay_seconds

    # -- the interface ----------------------------------------------------------------------
    def decode(self, data: str) -> list[AwarenessEntry]:
        """As AwarenessStore.decode: TooLarge over `max_message_bytes` or `max_entries`,
        before decoding anything; BadRequest for anything malformed."""
        if len(data) > base64_length(self.max_message_bytes):
            raise TooLarge(f"an awareness message may be at most {self.max_message_bytes} bytes")
        update = protocol.decode_awareness_message(protocol.decode_base64(data))
        return decode_update(update, self.max_entries)

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
        """As AwarenessStore.apply: the accepted entries (`renewal` set on those whose
        state is the one stored before), TooLarge with nothing applied over a cap."""
        now, request = _now(now_ms), request_id or uuid.uuid4().hex
        return self._apply(scene_id, connection_id, list(entries), now, user_id or "", request, hold=False)

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
        """As AwarenessStore.apply_holding_renewals (docs/presence.md): `apply`, with
        renewals held back, and the roster when one is due. The roster's decision reads
        the scene's ids (one Query, as the script reads the scene's live states)."""
        now, request = _now(now_ms), request_id or uuid.uuid4().hex
        accepted = self._apply(scene_id, connection_id, list(entries), now, user_id or "", request, hold=True)
        if not accepted:
            return Applied([], None)
        return Applied(accepted, self._roster_if_due(scene_id, now, policy or RosterPolicy(), request))

    def _apply(
        self,
        scene_id: str,
        connection_id: str,
        items: list[AwarenessEntry],
        now: int,
        user: str,
        request: str,
        *,
        hold: bool,
    ) -> list[AwarenessEntry]:
        if len(items) > self.max_entries:
            raise TooLarge(f"an awareness update may carry at most {self.max_entries} entries")
        if not items:
            return []
        for entry in items:
            if len(entry.state.encode("utf-8")) > self.max_state_bytes:
                raise TooLarge(f"awareness state over {self.max_state_bytes} bytes")
        keys = [CONN_PREFIX + connection_id, *(ID_PREFIX + str(e.client_id) for e in items)]
        return self._run(
            scene_id,
            _World(connection_id),
            keys,
            lambda world: self._decide_apply(world, connection_id, user, now, items, request, hold),
            "apply:decided",
            now,
        )

    def current(self, scene_id: str, now_ms: int | None = None) -> list[AwarenessEntry]:
        """Every present state written within `outdated_ms`, by client id (`age_ms`: how
        long ago). Forgets a batch of ids nobody wrote for `ttl_seconds` on the way."""
        now = _now(now_ms)
        world, ids, complete = self._query(scene_id)
        live = [
            AwarenessEntry(client, item.clock, item.state, age_ms=now - item.seen)
            for client, item in ids.items()
            if item.present and item.seen > now - self.outdated_ms
        ]
        self._tidy(scene_id, world, ids, complete, now)
        return sorted(live, key=lambda entry: entry.client_id)

    def remove_connection(
        self,
        scene_id: str,
        connection_id: str,
        now_ms: int | None = None,
        *,
        request_id: str | None = None,
    ) -> list[AwarenessEntry]:
        """As AwarenessStore.remove_connection: every present state of the connection is
        removed with clock = stored clock + 1, and returned; its later writes are ignored."""
        now, request = _now(now_ms), request_id or uuid.uuid4().hex
        return self._run(
            scene_id,
            _World(),
            [CONN_PREFIX + connection_id],
            lambda world: self._decide_remove(world, connection_id, now, request),
            "remove:decided",
            now,
        )

    # -- decisions (the scripts, over the items read) ---------------------------------------
    def _decide_apply(
        self,
        world: _World,
        me: str,
        user: str,
        now: int,
        entries: list[AwarenessEntry],
        request: str,
        hold: bool,
    ) -> list[AwarenessEntry]:
        conn = world.conn(me)
        if conn.gone is not None:
            return []  # a late invocation of an ended connection brings nothing back

        clients = list(dict.fromkeys(e.client_id for e in entries))
        stored = {client: world.id(client) for client in clients}
        cutoff = now - self.ttl_seconds * 1000
        # In one read: the owners this update may take ids from or forget ids of, and the
        # scene's count unless no entry can change it (a renewal of present states only).
        owners = [
            CONN_PREFIX + item.conn
            for item in stored.values()
            if item is not None
            and item.conn != me
            and not item.ended
            and ((user and item.user == user) or item.seen <= cutoff)
        ]
        counted = any(e.removed for e in entries) or any(
            item is None or not item.present or item.seen <= cutoff for item in stored.values()
        )
        world.require([*owners, SCENE] if counted else owners)
        # Its own write, landed before a lost response or a caller's retry: same answer.
        earlier = {
            i: item
            for i, entry in enumerate(entries)
            if (item := stored[entry.client_id]) is not None
            and (item.req, item.conn, item.clock, item.state) == (request, me, entry.clock, entry.state)
        }
        for client, item in stored.items():
            if item is not None and item.seen <= cutoff:
                world.forget(client)  # nobody wrote it for the idle timeout: its owner is dead

        def access(client: int) -> tuple[str | None, str | None]:
            item = world.id(client)
            if item is None:
                return "new", None
            if item.conn == me:
                return "own", None
            if item.ended:
                return "takeover", None  # its owner ended and gave up its list already
            if user and item.user == user:
                return "takeover", item.conn
            return None, None

        def wins(entry: AwarenessEntry) -> bool:
            item = world.id(entry.client_id)
            stored = item.clock if item is not None else 0
            if entry.clock != stored:
                return entry.clock > stored
            return entry.removed and item is not None and item.present

        # The caps refuse the update whole, before it changes anything.
        introduced = new_ids = 0
        for i, entry in enumerate(entries):
            kind, _ = access(entry.client_id)
            if i not in earlier and kind not in (None, "own") and not entry.removed and wins(entry):
                introduced += 1
                new_ids += kind == "new"
        if len(conn.ids) + introduced > self.max_ids_per_connection:
            raise TooLarge(
                f"a connection may introduce at most {self.max_ids_per_connection} awareness client ids"
            )
        if new_ids:  # the scene's count is read only when it can refuse
            scene = world.scene()
            if new_ids > self.max_states - scene.n + len(scene.tombs):
                raise TooLarge(f"the scene already has the most awareness states allowed ({self.max_states})")

        accepted = []
        for i, entry in enumerate(entries):
            if i in earlier:
                accepted.append(_accepted(entry, earlier[i].renewal))
                continue
            kind, previous = access(entry.client_id)  # again: an earlier entry may have changed it
            if kind is None or not wins(entry):
                continue
            before = world.id(entry.client_id)
            renewal = (
                kind == "own" and not entry.removed and before is not None and before.state == entry.state
            )
            fits = kind == "own" or len(conn.ids) < self.max_ids_per_connection
            if fits and kind == "new" and world.scene().n >= self.max_states:
                fits = self._evict_oldest_tombstone(world)
            if not fits:
                continue
            if previous is not None:
                owner = world.conn(previous)
                if entry.client_id in owner.ids:
                    owner.ids.remove(entry.client_id)
            if kind != "own":
                conn.ids.append(entry.client_id)
            # A held renewal: peers were told of this id's earlier write only.
            told = before.told if renewal and hold and before is not None else now
            world.put_id(
                entry.client_id,
                _Id(entry.clock, entry.state, me, user, now, req=request, renewal=renewal, told=told),
            )
            accepted.append(_accepted(entry, renewal))
        return accepted

    @staticmethod
    def _evict_oldest_tombstone(world: _World) -> bool:
        scene = world.scene()
        while scene.tombs:
            oldest = min(scene.tombs, key=lambda c: (scene.tombs[c], str(c)))  # as ZPOPMIN
            item = world.id(oldest)
            if item is not None and not item.present:
                world.forget(oldest)
                return True
            # The scene's list disagrees with the item (repaired here; `current` repairs too).
            del scene.tombs[oldest]
            if item is None:
                scene.n = max(0, scene.n - 1)
        return False

    @staticmethod
    def _decide_remove(world: _World, me: str, now: int, request: str) -> list[AwarenessEntry]:
        conn = world.conn(me)
        if conn.gone is not None and conn.bye_req == request:
            return [AwarenessEntry(client, clock, REMOVED) for client, clock in conn.bye]
        world.require([*(ID_PREFIX + str(client) for client in conn.ids), *([SCENE] if conn.ids else [])])
        removed = []
        for client in conn.ids:
            item = world.id(client)
            if item is None or item.conn != me or item.ended:
                continue  # taken over by its user's newer connection, or forgotten
            if item.present:
                # One above the stored clock, so every peer (and this store) accepts it.
                clock = item.clock + 1
                removal = replace(
                    item,
                    clock=clock,
                    state=REMOVED,
                    seen=now,
                    ended=True,
                    req=request,
                    renewal=False,
                    told=now,
                )
                world.put_id(client, removal)
                removed.append(AwarenessEntry(client, clock, REMOVED))
            else:
                world.put_id(client, replace(item, ended=True))  # a tombstone anyone may take
        conn.ids = []
        if conn.gone is None:
            conn.gone = now
        if removed:
            conn.bye_req, conn.bye = request, [(e.client_id, e.clock) for e in removed]
        return removed

    def _roster_if_due(
        self, scene_id: str, now: int, policy: RosterPolicy, request: str
    ) -> list[AwarenessEntry] | None:
        """Every live state, with ages, if a roster is due (`roster_due`) and this call is
        the one that takes it: a conditional put of HELD_ROSTER on the version read, so
        racing writers send one roster, not one each."""
        for attempt in range(MAX_ATTEMPTS):
            world, ids, _ = self._query(scene_id)
            kept = world.read[HELD_ROSTER]
            last = kept[1] if kept else _Roster()
            assert isinstance(last, _Roster)
            live = {
                c: item
                for c, item in sorted(ids.items())
                if item.present and item.seen > now - self.outdated_ms
            }
            # Peers were last told of an id by its own forwarded write or by the last roster.
            told_of = {c: max(item.told, last.told.get(c, 0)) for c, item in live.items()}
            # `renewal` in a roster: held until now (the sender needs it if another's was).
            roster = [
                AwarenessEntry(
                    c, item.clock, item.state, renewal=item.seen > told_of[c], age_ms=now - item.seen
                )
                for c, item in live.items()
            ]
            if last.req == request:
                return roster  # a retry of the call that took it (or its put's lost response)
            told = [(item.seen, told_of[c]) for c, item in live.items()]
            if not roster_due(now, self.outdated_ms, policy.renew_ms, policy.margin_ms, told):
                return None
            world.reset()
            world.put(HELD_ROSTER, _Roster(now, request, {c: item.seen for c, item in live.items()}))
            self._pause("roster:decided")
            if self._commit(scene_id, world, now):
                return roster
            _backoff(attempt)  # another writer took one meanwhile: is one still due?
        return None  # others kept taking rosters: they told the peers

    def _tidy(self, scene_id: str, world: _World, ids: dict[int, _Id], complete: bool, now: int) -> None:
        """Best effort, after `current` read the scene: forget a batch of ids nobody wrote
        for `ttl_seconds`, and make `aw#s` agree with the items (or refresh its TTL). A
        conflict leaves it to the next call."""
        old = [c for c, item in ids.items() if item.seen <= now - self.ttl_seconds * 1000][:PRUNE_BATCH]

        def decide(world: _World) -> None:
            if complete:  # only a whole read of the scene knows the truth
                truth = _Scene(len(ids), {c: item.seen for c, item in ids.items() if not item.present})
                if world.scene() != truth:
                    world.work[SCENE] = truth
                elif world.read.get(SCENE) is not None and self._expires_soon(world, now):
                    world.touched.add(SCENE)  # an active scene's item must outlive its ids
            for client in old:
                world.forget(client)

        if old or complete:
            with contextlib.suppress(AwarenessContended):
                self._decide_and_commit(scene_id, world, decide, now)

    def _expires_soon(self, world: _World, now: int) -> bool:
        return world.expires.get(SCENE, 0) < now // 1000 + CONNECTION_SECONDS

    # -- reading, committing ----------------------------------------------------------------
    def _run(
        self,
        scene_id: str,
        world: _World,
        keys: list[str],
        decide: Callable[[_World], _T],
        point: str,
        now: int,
    ) -> _T:
        for attempt in range(MAX_ATTEMPTS):
            self._read(scene_id, world, keys)
            result = self._decide(scene_id, world, decide)
            self._pause(point)
            if self._commit(scene_id, world, now):
                return result
            keys = list(world.read)  # read everything again: something moved
            world = _World(world.me)
            _backoff(attempt)
        raise AwarenessContended(f"awareness of {scene_id}: the items kept changing")

    def _decide_and_commit(
        self, scene_id: str, world: _World, decide: Callable[[_World], None], now: int
    ) -> None:
        self._decide(scene_id, world, decide)
        if not self._commit(scene_id, world, now):
            raise AwarenessContended(scene_id)

    def _decide(self, scene_id: str, world: _World, decide: Callable[[_World], _T]) -> _T:
        while True:
            world.reset()
            try:
                return decide(world)
            except _Need as need:  # an owner or a tombstone the first read could not name
                self._read(scene_id, world, need.sort_keys)

    def _read(self, scene_id: str, world: _World, keys: list[str]) -> None:
        missing = [sk for sk in dict.fromkeys(keys) if sk not in world.read]
        for sk in missing:
            world.read[sk] = None
        request: dict[str, Any] = {
            self._table: {"Keys": [_key(scene_id, sk) for sk in missing], "ConsistentRead": True}
        }
        for attempt in range(MAX_ATTEMPTS):
            if not missing:
                return
            response = self._db.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                world.read[item["sk"]["S"]] = _decode(item)
                world.expires[item["sk"]["S"]] = int(item.get("expiresAt", {}).get("N", "0"))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            _backoff(attempt)
        raise AwarenessContended(f"awareness of {scene_id}: DynamoDB kept keys unprocessed")

    def _query(self, scene_id: str) -> tuple[_World, dict[int, _Id], bool]:
        """The scene item and every id, strongly consistent, as a World; False when there
        were more ids than twice the cap (then only that many are looked at)."""
        world = _World()
        world.read[SCENE] = world.read[HELD_ROSTER] = None
        ids: dict[int, _Id] = {}
        bound = 2 * self.max_states
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "sceneId = :s AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":s": {"S": scene_id}, ":p": {"S": SCENE}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            for item in page["Items"]:
                sort_key = item["sk"]["S"]
                world.read[sort_key] = kept = _decode(item)
                world.expires[sort_key] = int(item.get("expiresAt", {}).get("N", "0"))
                if isinstance(kept[1], _Id):
                    ids[int(sort_key[len(ID_PREFIX) :])] = kept[1]
            if "LastEvaluatedKey" not in page:
                return world, ids, True
            if len(ids) > bound:
                return world, ids, False
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _commit(self, scene_id: str, world: _World, now: int) -> bool:
        """Write what the decision changed, each item on the version it was read at; False
        when one of them (or an item it consulted) has moved since."""
        changes = world.changed()
        if not changes:
            return True
        checks = sorted(world.consulted - set(changes))
        try:
            if len(changes) == 1 and world.lone_write_is_safe(changes[0]):
                self._write_one(scene_id, world, changes[0], now)
            else:
                operations = [self._operation(scene_id, world, sk, now) for sk in changes]
                operations += [{"ConditionCheck": self._checked(scene_id, world, sk)} for sk in checks]
                # The token makes botocore's retry of a transaction whose response was lost a
                # no-op in DynamoDB (moto ignores it; then `req` recognises the write).
                self._db.transact_write_items(TransactItems=operations, ClientRequestToken=uuid.uuid4().hex)
        except ClientError as error:
            if _conflict(error):
                return False
            raise
        return True

    def _write_one(self, scene_id: str, world: _World, sort_key: str, now: int) -> None:
        operation = self._operation(scene_id, world, sort_key, now)
        if "Put" in operation:
            self._db.put_item(**operation["Put"])
        else:
            self._db.delete_item(**operation["Delete"])

    def _operation(self, scene_id: str, world: _World, sort_key: str, now: int) -> dict[str, Any]:
        value = world.work[sort_key]
        checked = self._checked(scene_id, world, sort_key)
        if value is None:
            return {"Delete": checked}
        kept = world.read[sort_key]
        version = kept[0] + 1 if kept else 1
        item = {**checked.pop("Key"), "ver": {"N": str(version)}, **self._encode(value, now)}
        return {"Put": {**checked, "Item": item}}

    def _checked(self, scene_id: str, world: _World, sort_key: str) -> dict[str, Any]:
        """The key, and the condition that the item is as it was read."""
        kept = world.read[sort_key]
        base: dict[str, Any] = {"TableName": self._table, "Key": _key(scene_id, sort_key)}
        if kept is None:
            return {**base, "ConditionExpression": "attribute_not_exists(sk)"}
        return {
            **base,
            "ConditionExpression": "ver = :ver",
            "ExpressionAttributeValues": {":ver": {"N": str(kept[0])}},
        }

    def _encode(self, value: _Value, now: int) -> dict[str, Any]:
        if isinstance(value, _Id):
            item: dict[str, Any] = {
                "clock": {"N": str(value.clock)},
                "state": {"S": value.state},
                "conn": {"S": value.conn},
                "user": {"S": value.user},
                "seen": {"N": str(value.seen)},
                "req": {"S": value.req},
                "renewal": {"BOOL": value.renewal},
                "told": {"N": str(value.told)},
                # Kept past the idle timeout, after which this store forgets it itself:
                # DynamoDB's TTL only clears scenes nobody reads any more.
                "expiresAt": {"N": str(value.seen // 1000 + 2 * self.ttl_seconds)},
            }
            if value.ended:
                item["ended"] = {"BOOL": True}
            return item
        horizon = {"N": str(now // 1000 + CONNECTION_SECONDS + self.ttl_seconds)}
        if isinstance(value, _Conn):
            item = {"ids": {"S": ",".join(map(str, value.ids))}, "expiresAt": horizon}
            if value.gone is not None:
                item["gone"] = {"N": str(value.gone)}
            if value.bye_req:
                item["byeReq"] = {"S": value.bye_req}
                item["bye"] = {"S": ",".join(f"{c}:{k}" for c, k in value.bye)}
            return item
        if isinstance(value, _Roster):
            told = ",".join(f"{c}@{seen}" for c, seen in value.told.items())
            # Needed while a state it told of is live, and for a retry of its call.
            expires = {"N": str(value.at // 1000 + self.ttl_seconds)}
            return {
                "at": {"N": str(value.at)},
                "req": {"S": value.req},
                "told": {"S": told},
                "expiresAt": expires,
            }
        tombs = ",".join(f"{c}@{at}" for c, at in value.tombs.items())
        return {"n": {"N": str(value.n)}, "tombs": {"S": tombs}, "expiresAt": horizon}


# ---------------------------------------------------------------------------- helpers


def _decode(item: dict[str, Any]) -> tuple[int, _Value]:
    sort_key, version = item["sk"]["S"], int(item["ver"]["N"])
    if sort_key == SCENE:
        return version, _Scene(int(item["n"]["N"]), _pairs(item["tombs"]["S"]))
    if sort_key == HELD_ROSTER:
        return version, _Roster(int(item["at"]["N"]), item["req"]["S"], _pairs(item["told"]["S"]))
    if sort_key.startswith(CONN_PREFIX):
        bye = []
        for part in filter(None, item.get("bye", {}).get("S", "").split(",")):
            client, clock = part.split(":")
            bye.append((int(client), int(clock)))
        return version, _Conn(
            [int(c) for c in filter(None, item["ids"]["S"].split(","))],
            int(item["gone"]["N"]) if "gone" in item else None,
            item.get("byeReq", {}).get("S", ""),
            bye,
        )
    return version, _Id(
        int(item["clock"]["N"]),
        item["state"]["S"],
        item["conn"]["S"],
        item["user"]["S"],
        int(item["seen"]["N"]),
        bool(item.get("ended", {}).get("BOOL", False)),
        item["req"]["S"],
        bool(item["renewal"]["BOOL"]),
        int(item["told"]["N"]),
    )


def _pairs(text: str) -> dict[int, int]:
    """ "id@ms,id@ms" -> {id: ms}."""
    found = {}
    for part in filter(None, text.split(",")):
        client, at = part.split("@")
        found[int(client)] = int(at)
    return found


def roster_due(now: int, outdated: int, renew: int, margin: int, live: Iterable[tuple[int, int]]) -> bool:
    """The script's `roster_due` (collab.awareness), over (seen, told) of each live state:
    a roster is due when a held renewal (seen > told) would reach its peers' deadline
    (told + outdated - margin) before two more writes can be counted on (every live
    y-protocols client writes within `renew` ms of its last write)."""
    deadline = first = second = float("inf")
    for seen, told in live:
        if seen > told:
            deadline = min(deadline, told + outdated - margin)
        if now - seen <= renew:
            expected = seen + renew
            if expected < first:
                first, second = expected, first
            elif expected < second:
                second = expected
    return deadline != float("inf") and second >= deadline


def _key(scene_id: str, sort_key: str) -> dict[str, Any]:
    return {"sceneId": {"S": scene_id}, "sk": {"S": sort_key}}


def _accepted(entry: AwarenessEntry, renewal: bool) -> AwarenessEntry:
    return AwarenessEntry(entry.client_id, entry.clock, entry.state, renewal=renewal)


def _now(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * 2**attempt))  # jittered: racing calls drift apart


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _conflict(error: ClientError) -> bool:
    """An item moved since it was read (or is in another transaction): decide again."""
    code = _code(error)
    if code in ("ConditionalCheckFailedException", "TransactionInProgressException"):
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
    return bool(reasons & {"ConditionalCheckFailed", "TransactionConflict"}) and reasons <= {
        "ConditionalCheckFailed",
        "TransactionConflict",
        "None",
    }
