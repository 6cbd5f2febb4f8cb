"""What AwarenessTable (collab.awareness_table) decides: the rules of collab.awareness's Lua
scripts, in Python, over the items one call read from DynamoDB.

Nothing here reads or writes DynamoDB. A call of the store reads some items into a World,
runs one of the `decide_*` functions over it, and commits what the World says changed,
each item on the version it was read at (awareness_table's docstring says why that keeps
the scripts' atomicity). A decision that finds it needs an item nobody read yet raises
Need; the store reads it and decides again from the items as read, so a decision is a
function of the items and its arguments alone, and may run more than once.

The items, by sort key in the scene's partition of the documents table (what each holds:
awareness_table's docstring):

    SCENE            SceneItem: how many client id items, and the removed ones
    ID_PREFIX + id   IdItem: one client id's clock, state, owner and writes
    HELD_ROSTER      RosterItem: the last roster of held renewals
    CONN_PREFIX + c  ConnItem: the ids connection `c` owns, and its end
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from collab.awareness import REMOVED, AwarenessEntry, RosterPolicy
from collab.errors import TooLarge

SCENE = "aw#s"
ID_PREFIX = "aw#s#"
CONN_PREFIX = "aw#c#"
HELD_ROSTER = "aw#s-roster"  # after the ids: the scene's one Query (`aw#s...`) reads it too


# ---------------------------------------------------------------------------- items


@dataclass
class IdItem:
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
class ConnItem:
    ids: list[int] = field(default_factory=list)
    gone: int | None = None
    bye_req: str = ""
    bye: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class SceneItem:
    n: int = 0
    tombs: dict[int, int] = field(default_factory=dict)  # removed client id -> when (ms)


@dataclass
class RosterItem:
    """The last roster of held renewals: who took it, and the write of each live id it
    told peers of (a roster tells of every live state at once, so it is one item here,
    not a write to every id)."""

    at: int = 0
    req: str = ""
    told: dict[int, int] = field(default_factory=dict)  # client id -> `seen` it carried


Item = IdItem | ConnItem | SceneItem | RosterItem
_Kept = TypeVar("_Kept", ConnItem, SceneItem, RosterItem)  # the items that read as empty


class Need(Exception):
    """A decision needs an item that has not been read yet: read it, decide again."""

    def __init__(self, sort_keys: list[str]) -> None:
        super().__init__(sort_keys)
        self.sort_keys = sort_keys


class World:
    """The items one decision reads, as read (with their versions) and as it leaves them."""

    def __init__(self, me: str | None = None) -> None:
        self.read: dict[str, tuple[int, Item] | None] = {}  # None: the item is absent
        self.work: dict[str, Item | None] = {}
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
            raise Need(missing)

    def _get(self, sort_key: str) -> Item | None:
        if sort_key not in self.read:
            raise Need([sort_key])
        self.consulted.add(sort_key)
        return self.work[sort_key]

    def id(self, client: int) -> IdItem | None:
        value = self._get(ID_PREFIX + str(client))
        assert value is None or isinstance(value, IdItem)
        return value

    def conn(self, connection_id: str) -> ConnItem:
        return self._or_empty(CONN_PREFIX + connection_id, ConnItem)

    def scene(self) -> SceneItem:
        return self._or_empty(SCENE, SceneItem)

    def roster(self) -> RosterItem:
        return self._or_empty(HELD_ROSTER, RosterItem)

    def _or_empty(self, sort_key: str, kind: type[_Kept]) -> _Kept:
        """An absent connection, scene or roster item reads as empty, and is written only
        if changed (`changed` compares it with `default_item`)."""
        value = self._get(sort_key)
        if value is None:
            value = self.work[sort_key] = kind()
        assert isinstance(value, kind)
        return value

    def put(self, sort_key: str, value: Item) -> None:
        """Write an item whatever it held (it must have been read)."""
        self._get(sort_key)
        self.work[sort_key] = value

    def put_id(self, client: int, value: IdItem | None) -> None:
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
        """The sort keys to write: consulted items that differ from what was read."""
        changes = []
        for sort_key in sorted(self.consulted):
            kept = self.read[sort_key]
            before = kept[1] if kept else default_item(sort_key)
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
        return (
            isinstance(before, IdItem) and isinstance(after, IdItem) and before.conn == after.conn == self.me
        )


def default_item(sort_key: str) -> Item | None:
    """What an absent item reads as (None: an id, which is absent until written)."""
    if sort_key == SCENE:
        return SceneItem()
    if sort_key == HELD_ROSTER:
        return RosterItem()
    if sort_key.startswith(CONN_PREFIX):
        return ConnItem()
    return None


# ---------------------------------------------------------------------------- decisions


def decide_apply(
    world: World,
    me: str,
    user: str,
    now: int,
    entries: list[AwarenessEntry],
    request: str,
    *,
    hold: bool,
    ttl_ms: int,
    max_ids: int,
    max_states: int,
) -> list[AwarenessEntry]:
    """The apply script: connection `me` of `user` writes `entries` at `now`; the
    accepted ones. `hold`: a renewal keeps the id's `told` (apply_holding_renewals).
    `ttl_ms`, `max_ids`, `max_states`: AwarenessTable's ttl_seconds (in ms),
    max_ids_per_connection and max_states. Raises TooLarge over a cap, deciding nothing."""
    conn = world.conn(me)
    if conn.gone is not None:
        return []  # a late invocation of an ended connection brings nothing back

    clients = list(dict.fromkeys(e.client_id for e in entries))
    stored = {client: world.id(client) for client in clients}
    cutoff = now - ttl_ms
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
    if len(conn.ids) + introduced > max_ids:
        raise TooLarge(f"a connection may introduce at most {max_ids} awareness client ids")
    if new_ids:  # the scene's count is read only when it can refuse
        scene = world.scene()
        if new_ids > max_states - scene.n + len(scene.tombs):
            raise TooLarge(f"the scene already has the most awareness states allowed ({max_states})")

    accepted = []
    for i, entry in enumerate(entries):
        if i in earlier:
            accepted.append(_accepted(entry, earlier[i].renewal))
            continue
        kind, previous = access(entry.client_id)  # again: an earlier entry may have changed it
        if kind is None or not wins(entry):
            continue
        before = world.id(entry.client_id)
        renewal = kind == "own" and not entry.removed and before is not None and before.state == entry.state
        fits = kind == "own" or len(conn.ids) < max_ids
        if fits and kind == "new" and world.scene().n >= max_states:
            fits = _evict_oldest_tombstone(world)
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
            IdItem(entry.clock, entry.state, me, user, now, req=request, renewal=renewal, told=told),
        )
        accepted.append(_accepted(entry, renewal))
    return accepted


def _evict_oldest_tombstone(world: World) -> bool:
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


def decide_remove(world: World, me: str, now: int, request: str) -> list[AwarenessEntry]:
    """The remove_connection script: connection `me` ended at `now`; the removals."""
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


def live_ids(ids: dict[int, IdItem], now: int, outdated_ms: int) -> dict[int, IdItem]:
    """The present states written within `outdated_ms`, by client id: what peers still
    show, and what `current` and a roster carry (the scripts' `live`)."""
    return {c: item for c, item in sorted(ids.items()) if item.present and item.seen > now - outdated_ms}


def decide_roster(
    world: World,
    ids: dict[int, IdItem],
    now: int,
    outdated_ms: int,
    policy: RosterPolicy,
    request: str,
) -> list[AwarenessEntry] | None:
    """The apply script's roster step, over the scene's ids (`ids`, as read into `world`
    with HELD_ROSTER): every live state with its age if a roster is due, recording in
    `world` (one put of HELD_ROSTER) that peers are told of each; None when none is due.
    The call that took the last roster (`request`) gets it again, its states as they are
    now, and nothing changes."""
    world.reset()
    last = world.roster()
    live = live_ids(ids, now, outdated_ms)
    # Peers were last told of an id by its own forwarded write or by the last roster.
    told_of = {c: max(item.told, last.told.get(c, 0)) for c, item in live.items()}
    # `renewal` in a roster: held until now (the sender needs it if another's was).
    roster = [
        AwarenessEntry(
            c, item.clock, item.state, renewal=item.seen > told_of[c], age_ms=max(0, now - item.seen)
        )
        for c, item in live.items()
    ]
    if last.req == request:
        return roster  # a retry of the call that took it (or its put's lost response)
    told = [(item.seen, told_of[c], item.conn) for c, item in live.items()]
    if not roster_due(now, outdated_ms, policy.renew_ms, policy.margin_ms, told):
        return None
    world.put(HELD_ROSTER, RosterItem(now, request, {c: item.seen for c, item in live.items()}))
    return roster


def decide_tidy(
    world: World, ids: dict[int, IdItem], complete: bool, old: Iterable[int], keep_until_s: int
) -> None:
    """After `current` read the scene (`ids`; `complete`: all of them): forget the ids in
    `old` (nobody wrote them for the idle timeout), and make the scene item agree with
    the ids, or refresh it if it would expire before `keep_until_s` (epoch seconds)."""
    if complete:  # only a whole read of the scene knows the truth
        truth = SceneItem(len(ids), {c: item.seen for c, item in ids.items() if not item.present})
        if world.scene() != truth:
            world.put(SCENE, truth)
        elif world.read.get(SCENE) is not None and world.expires.get(SCENE, 0) < keep_until_s:
            world.touched.add(SCENE)  # an active scene's item must outlive its ids
    for client in old:
        world.forget(client)


def roster_due(
    now: int, outdated: int, renew: int, margin: int, live: Iterable[tuple[int, int, str]]
) -> bool:
    """The script's `roster_due` (collab.awareness), over (seen, told, owner connection)
    of each live state: a roster is due when a held renewal (seen > told) would reach its
    peers' deadline (told + outdated - margin) before writes from two connections can be
    counted on (every live y-protocols client writes within `renew` ms of its last write).

    The rule is written twice on purpose: the script's runs inside Redis, in Lua, in the
    same atomic call as the write it follows, and Redis cannot call Python. A change to
    one is a change to both; test_rosters_are_decided_as_the_script_decides_them
    (tests/core/test_awareness_table.py) plays one room on both stores and compares every
    message."""
    deadline = float("inf")
    soonest: dict[str, float] = {}
    for seen, told, conn in live:
        if seen > told:
            deadline = min(deadline, told + outdated - margin)
        if now - seen <= renew:
            soonest[conn] = min(soonest.get(conn, float("inf")), seen + renew)
    if deadline == float("inf"):
        return False
    first = second = float("inf")
    for expected in soonest.values():
        if expected < first:
            first, second = expected, first
        elif expected < second:
            second = expected
    return second >= deadline


def _accepted(entry: AwarenessEntry, renewal: bool) -> AwarenessEntry:
    return AwarenessEntry(entry.client_id, entry.clock, entry.state, renewal=renewal)
