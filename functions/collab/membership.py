"""Who receives what: fan-out to the members of a scene, and eviction of members that are
gone (a 410 on post, `$disconnect`) or whose token has expired.

Costs stay bounded (invariant 9): evicting K gone members of a room of N costs K deletes,
one member read and two posts per remaining member per round, with every leave of a round
in one `participant-left` and every cursor removal in one awareness update. Rounds repeat
only for members found gone while announcing, at most `MAX_ROUNDS` times; rows found gone
after that are removed without an announcement (the participant list of each peer's next
sync reply, and awareness's 30 s timeout, catch up).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit

from collab import awareness as awareness_codec
from collab import protocol
from collab.awareness import AwarenessEntry
from collab.cache import CacheUnavailable
from collab.caller import Caller
from collab.observability import logger, metrics, tracer
from collab.rooms import Member
from collab.runtime import Runtime

MAX_ROUNDS = 3


def recipients(rt: Runtime, caller: Caller) -> list[Member]:
    """The scene's members other than the caller. Members whose token has expired get
    nothing more: they are told, closed and evicted here."""
    roster = rt.rooms.recipients(caller.scene_id)
    if roster.expired:
        expel_expired(rt, caller, roster.expired)
    return [m for m in roster.members if m.connection_id != caller.connection_id]


def participants(caller: Caller, members: Iterable[Member]) -> list[dict[str, str]]:
    """The users in a scene (each once): the caller, if it is connected, and the members."""
    users = {caller.user_id: caller.user()} if caller.connection_id and caller.user_id else {}
    for member in members:
        users.setdefault(member.user_id, {"userId": member.user_id, "userName": member.user_name})
    return list(users.values())


def broadcast(rt: Runtime, caller: Caller, connection_ids: list[str], text: str) -> None:
    started = time.perf_counter()
    with tracer.provider.in_subsegment("## fanout"):
        gone = rt.outbox(caller.endpoint).send_all(connection_ids, text)
    metrics.add_metric(name="FanoutRecipients", unit=MetricUnit.Count, value=len(connection_ids))
    metrics.add_metric(
        name="FanoutDuration", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    if gone:
        evict(rt, caller, gone)


def announce_join(rt: Runtime, caller: Caller, member: Member, others: Iterable[str]) -> None:
    text = protocol.server_message("participant-joined", participant=member.public())
    broadcast(rt, caller, list(others), text)


def expel_expired(rt: Runtime, caller: Caller, expired: list[Member]) -> None:
    outbox = rt.outbox(caller.endpoint)
    notice = protocol.error_message(
        "token_expired", "the token has expired; reconnect with a fresh one", None
    )
    ids = [m.connection_id for m in expired]
    outbox.send_all(ids, notice)
    for connection_id in ids:
        outbox.close(connection_id)
    metrics.add_metric(name="ExpiredConnections", unit=MetricUnit.Count, value=len(ids))
    evict(rt, caller, ids)


def evict(rt: Runtime, caller: Caller, connection_ids: Iterable[str]) -> None:
    """Remove connections that are gone; tell the others who left and drop their cursors."""
    gone: set[str] = set()
    pending = list(dict.fromkeys(connection_ids))
    for round_number in range(MAX_ROUNDS + 1):
        batch = [cid for cid in pending if cid not in gone]
        if not batch:
            return
        gone.update(batch)
        left = [m for m in (rt.rooms.leave(caller.scene_id, cid) for cid in batch) if m is not None]
        removed = _remove_cursors(rt, caller, batch)
        evicted = [cid for cid in batch if cid != caller.connection_id]
        if evicted:
            metrics.add_metric(name="Evictions", unit=MetricUnit.Count, value=len(evicted))
        if round_number == MAX_ROUNDS or not (left or removed):
            return
        members = [m.connection_id for m in rt.rooms.members(caller.scene_id) if m.connection_id not in gone]
        outbox = rt.outbox(caller.endpoint)
        found: list[str] = []
        if left:
            found += outbox.send_all(members, participants_left(left))
        if removed:
            update = awareness_codec.encode_update(removed)
            text = protocol.data_message("awareness", protocol.awareness_message(update))
            found += outbox.send_all(members, text)
        pending = found


def participants_left(left: list[Member]) -> str:
    """One `participant-left` for any number of leaves: `participant` is the first (what
    the protocol names), `participants` all of them."""
    return protocol.server_message(
        "participant-left", participant=left[0].public(), participants=[m.public() for m in left]
    )


def _remove_cursors(rt: Runtime, caller: Caller, connection_ids: list[str]) -> list[AwarenessEntry]:
    removed: list[AwarenessEntry] = []
    for connection_id in connection_ids:
        try:
            removed += rt.awareness.remove_connection(caller.scene_id, connection_id)
        except (CacheUnavailable, awareness_codec.PresenceUnavailable):
            # Presence is unavailable; peers drop a cursor not renewed in 30 s.
            logger.info("cursor removal skipped: the cache is unavailable")
            return removed
    return removed
