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
(strongly consistent), decides exactly as the script does, in Python (the decisions are
collab.awareness_decisions; this module reads, writes and retries), and writes what
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
import functools
import random
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from collab.awareness import (
    MAX_ENTRIES,
    MAX_IDS_PER_CONNECTION,
    MAX_MESSAGE_BYTES,
    MAX_STATE_BYTES,
    MAX_STATES,
    Applied,
    AwarenessEntry,
    PresenceUnavailable,
    RosterPolicy,
    check_entries,
    decode_message,
)
from collab.awareness_decisions import (
    CONN_PREFIX,
    HELD_ROSTER,
    ID_PREFIX,
    SCENE,
    ConnItem,
    IdItem,
    Item,
    Need,
    RosterItem,
    SceneItem,
    World,
    decide_apply,
    decide_remove,
    decide_roster,
    decide_tidy,
    live_ids,
    roster_due,
)
from collab.aws_json import prefix_pages

# What callers and tests import from here; the decisions live in collab.awareness_decisions.
__all__ = [
    "CONNECTION_SECONDS",
    "CONN_PREFIX",
    "HELD_ROSTER",
    "ID_PREFIX",
    "MAX_ATTEMPTS",
    "SCENE",
    "AwarenessContended",
    "AwarenessTable",
    "roster_due",
]

# API Gateway closes a WebSocket connection after two hours: a connection item written
# now is needed at most that long, plus the idle timeout its ids are kept for.
CONNECTION_SECONDS = 2 * 3600
# A decision read again after a conflict; conflicts mean another call made progress.
MAX_ATTEMPTS = 8
# Ids forgotten by one `current`: one transaction, amortised over the calls.
PRUNE_BATCH = 25
# A transaction holds at most 100 items.
TRANSACTION_LIMIT = 100

_T = TypeVar("_T")  # what a decision returns, through _run and _decide


class AwarenessContended(PresenceUnavailable):
    """Other calls kept changing the items this call read, MAX_ATTEMPTS times over."""


def _no_pause(point: str) -> None:
    return None


# ---------------------------------------------------------------------------- the store


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _unavailable_on_failure(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """DynamoDB failing (throttled past botocore's retries, unreachable, an error) makes
    presence unavailable for this call, as a cache outage does for the Redis store: the
    caller drops the awareness and the message it came with goes on (an edit is stored)."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise PresenceUnavailable(f"presence in DynamoDB failed: {error}") from error

    return guarded


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
        return decode_message(data, self.max_message_bytes, self.max_entries, self.max_state_bytes)

    @_unavailable_on_failure
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

    @_unavailable_on_failure
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
        check_entries(items, self.max_entries, self.max_state_bytes)
        if not items:
            return []
        keys = [CONN_PREFIX + connection_id, *(ID_PREFIX + str(e.client_id) for e in items)]
        return self._run(
            scene_id,
            World(connection_id),
            keys,
            lambda world: decide_apply(
                world,
                connection_id,
                user,
                now,
                items,
                request,
                hold=hold,
                ttl_ms=self.ttl_seconds * 1000,
                max_ids=self.max_ids_per_connection,
                max_states=self.max_states,
            ),
            "apply:decided",
            now,
        )

    @_unavailable_on_failure
    def current(self, scene_id: str, now_ms: int | None = None) -> list[AwarenessEntry]:
        """Every present state written within `outdated_ms`, by client id (`age_ms`: how
        long ago). Forgets a batch of ids nobody wrote for `ttl_seconds` on the way."""
        now = _now(now_ms)
        world, ids, complete = self._query(scene_id)
        live = [
            AwarenessEntry(client, item.clock, item.state, age_ms=max(0, now - item.seen))
            for client, item in live_ids(ids, now, self.outdated_ms).items()
        ]
        self._tidy(scene_id, world, ids, complete, now)
        return live

    @_unavailable_on_failure
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
            World(),
            [CONN_PREFIX + connection_id],
            lambda world: decide_remove(world, connection_id, now, request),
            "remove:decided",
            now,
        )

    def _roster_if_due(
        self, scene_id: str, now: int, policy: RosterPolicy, request: str
    ) -> list[AwarenessEntry] | None:
        """Every live state, with ages, if a roster is due and this call is the one that
        takes it: a conditional put of HELD_ROSTER on the version read, so racing writers
        send one roster, not one each."""
        for attempt in range(MAX_ATTEMPTS):
            world, ids, _ = self._query(scene_id)
            roster = decide_roster(world, ids, now, self.outdated_ms, policy, request)
            if roster is None or not world.changed():
                return roster  # none due, or this call's own, taken before (a retry)
            self._pause("roster:decided")
            if self._commit(scene_id, world, now):
                return roster
            _backoff(attempt)  # another writer took one meanwhile: is one still due?
        return None  # others kept taking rosters: they told the peers

    def _tidy(self, scene_id: str, world: World, ids: dict[int, IdItem], complete: bool, now: int) -> None:
        """Best effort, after `current` read the scene: forget a batch of ids nobody wrote
        for `ttl_seconds`, and make `aw#s` agree with the items (or refresh its TTL, so it
        outlives the connections that may still write). A conflict leaves it to the next
        call."""
        old = [c for c, item in ids.items() if item.seen <= now - self.ttl_seconds * 1000][:PRUNE_BATCH]
        if old or complete:
            keep_until_s = now // 1000 + CONNECTION_SECONDS
            with contextlib.suppress(AwarenessContended):
                self._decide_and_commit(
                    scene_id, world, lambda world: decide_tidy(world, ids, complete, old, keep_until_s), now
                )

    # -- reading, committing ----------------------------------------------------------------
    def _run(
        self,
        scene_id: str,
        world: World,
        keys: list[str],
        decide: Callable[[World], _T],
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
            world = World(world.me)
            _backoff(attempt)
        raise AwarenessContended(f"awareness of {scene_id}: the items kept changing")

    def _decide_and_commit(
        self, scene_id: str, world: World, decide: Callable[[World], None], now: int
    ) -> None:
        self._decide(scene_id, world, decide)
        if not self._commit(scene_id, world, now):
            raise AwarenessContended(scene_id)

    def _decide(self, scene_id: str, world: World, decide: Callable[[World], _T]) -> _T:
        while True:
            world.reset()
            try:
                return decide(world)
            except Need as need:  # an owner or a tombstone the first read could not name
                self._read(scene_id, world, need.sort_keys)

    def _read(self, scene_id: str, world: World, keys: list[str]) -> None:
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

    def _query(self, scene_id: str) -> tuple[World, dict[int, IdItem], bool]:
        """The scene item and every id, strongly consistent, as a World; False when there
        were more ids than twice the cap (then only that many are looked at)."""
        world = World()
        world.read[SCENE] = world.read[HELD_ROSTER] = None
        ids: dict[int, IdItem] = {}
        bound = 2 * self.max_states
        pages = prefix_pages(self._db, self._table, scene_id, SCENE)
        for page in pages:
            for item in page["Items"]:
                sort_key = item["sk"]["S"]
                world.read[sort_key] = kept = _decode(item)
                world.expires[sort_key] = int(item.get("expiresAt", {}).get("N", "0"))
                if isinstance(kept[1], IdItem):
                    ids[int(sort_key[len(ID_PREFIX) :])] = kept[1]
            if len(ids) > bound and page.get("LastEvaluatedKey"):
                return world, ids, False  # the next page is not read
        return world, ids, True

    def _commit(self, scene_id: str, world: World, now: int) -> bool:
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

    def _write_one(self, scene_id: str, world: World, sort_key: str, now: int) -> None:
        operation = self._operation(scene_id, world, sort_key, now)
        if "Put" in operation:
            self._db.put_item(**operation["Put"])
        else:
            self._db.delete_item(**operation["Delete"])

    def _operation(self, scene_id: str, world: World, sort_key: str, now: int) -> dict[str, Any]:
        value = world.work[sort_key]
        checked = self._checked(scene_id, world, sort_key)
        if value is None:
            return {"Delete": checked}
        kept = world.read[sort_key]
        version = kept[0] + 1 if kept else 1
        item = {**checked.pop("Key"), "ver": {"N": str(version)}, **self._encode(value, now)}
        return {"Put": {**checked, "Item": item}}

    def _checked(self, scene_id: str, world: World, sort_key: str) -> dict[str, Any]:
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

    def _encode(self, value: Item, now: int) -> dict[str, Any]:
        if isinstance(value, IdItem):
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
        if isinstance(value, ConnItem):
            item = {"ids": {"S": ",".join(map(str, value.ids))}, "expiresAt": horizon}
            if value.gone is not None:
                item["gone"] = {"N": str(value.gone)}
            if value.bye_req:
                item["byeReq"] = {"S": value.bye_req}
                item["bye"] = {"S": ",".join(f"{c}:{k}" for c, k in value.bye)}
            return item
        if isinstance(value, RosterItem):
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


def _decode(item: dict[str, Any]) -> tuple[int, Item]:
    sort_key, version = item["sk"]["S"], int(item["ver"]["N"])
    if sort_key == SCENE:
        return version, SceneItem(int(item["n"]["N"]), _pairs(item["tombs"]["S"]))
    if sort_key == HELD_ROSTER:
        return version, RosterItem(int(item["at"]["N"]), item["req"]["S"], _pairs(item["told"]["S"]))
    if sort_key.startswith(CONN_PREFIX):
        bye = []
        for part in filter(None, item.get("bye", {}).get("S", "").split(",")):
            client, clock = part.split(":")
            bye.append((int(client), int(clock)))
        return version, ConnItem(
            [int(c) for c in filter(None, item["ids"]["S"].split(","))],
            int(item["gone"]["N"]) if "gone" in item else None,
            item.get("byeReq", {}).get("S", ""),
            bye,
        )
    return version, IdItem(
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


def _key(scene_id: str, sort_key: str) -> dict[str, Any]:
    return {"sceneId": {"S": scene_id}, "sk": {"S": sort_key}}


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
