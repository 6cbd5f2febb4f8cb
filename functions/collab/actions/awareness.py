"""`awareness`: keep the latest state per Yjs client id; tell the others what changed at
once, and hold back renewals for the next roster (docs/presence.md).

Presence lives in the cache, or in DynamoDB on a stage without one (collab.runtime). With
the store unavailable an awareness update is dropped (nothing can check which client ids
the connection owns), and peers drop a state not renewed within 30 s, as y-protocols does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from collab import awareness as awareness_codec
from collab import protocol
from collab.awareness import AwarenessEntry, PresenceUnavailable
from collab.cache import CacheUnavailable
from collab.caller import Caller
from collab.membership import broadcast, recipients
from collab.observability import metrics
from collab.runtime import Runtime


@dataclass(frozen=True)
class Presence:
    """What one awareness message makes the server send: `forward` to the others now,
    or, when a roster is due, `roster` (every live state, with ages) to every member."""

    forward: list[AwarenessEntry]
    roster: list[AwarenessEntry] | None


def on_awareness(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    # Size and entry caps come before any base64 or entry work (invariant 9).
    share(rt, caller, rt.awareness.decode(protocol.require_str(frame, "data")))


def share(rt: Runtime, caller: Caller, entries: list[AwarenessEntry]) -> None:
    """Store the entries, then tell the others what changed, or send the roster."""
    presence = accept(rt, caller, entries)
    if presence is not None:
        send(rt, caller, presence)


def send(rt: Runtime, caller: Caller, presence: Presence) -> None:
    """What accepted entries make the server send, on their own."""
    if presence.roster is None and not presence.forward:
        return
    others = [m.connection_id for m in recipients(rt, caller)]
    if presence.roster is not None:
        send_roster(rt, caller, others, presence)
    else:
        broadcast(
            rt, caller, others, protocol.server_message("awareness", **awareness_fields(presence.forward))
        )


def accept(rt: Runtime, caller: Caller, entries: list[AwarenessEntry]) -> Presence | None:
    """Store a connection's awareness entries; None when the cache is unavailable."""
    try:
        applied = rt.awareness.apply_holding_renewals(
            caller.scene_id, caller.connection_id, entries, user_id=caller.user_id
        )
    except (CacheUnavailable, PresenceUnavailable):
        metrics.add_metric(name="AwarenessDropped", unit=MetricUnit.Count, value=1)
        return None
    forward = applied.to_forward
    held = len(applied.accepted) - len(forward)
    if held:
        metrics.add_metric(name="AwarenessRenewalsHeld", unit=MetricUnit.Count, value=held)
    if forward and rt.client_ids is not None and not caller.is_viewer:
        # An editor's presence claims its client ids (review M8): a client announces itself
        # before it types, so its id is bound before a peer can learn it from a broadcast
        # and forge edits under it. Only ids the store accepted (at most 4 live ones per
        # connection), and not a viewer's, which can never write: bindings stay bounded.
        foreign = rt.client_ids.foreign(caller.scene_id, caller.user_id, [e.client_id for e in forward])
        forward = [entry for entry in forward if entry.client_id not in foreign]
    return Presence(forward, applied.roster)


def send_roster(rt: Runtime, caller: Caller, others: list[str], presence: Presence) -> None:
    """Every live state to every member, the sender included: one message each instead of
    every held renewal fanned out on its own. (Leaving the sender out when only its own
    renewal was held broke the replay of the clownschool trace by bare y-protocols
    clients, tests/e2e/test_yjs_clients.py: a room of two pays one message more a roster.)"""
    assert presence.roster is not None
    if not others:
        return  # alone in the scene: nobody to tell, and nobody to hear from
    metrics.add_metric(name="AwarenessRosters", unit=MetricUnit.Count, value=1)
    text = protocol.server_message("awareness", **awareness_fields(presence.roster))
    broadcast(rt, caller, [*others, caller.connection_id], text)


def awareness_fields(entries: list[AwarenessEntry], field: str = "data") -> dict[str, Any]:
    """`field` (the base64 y-protocols message: `data` in an `awareness` frame, `awareness`
    in an `update`) and, when the store knows them, `ages`: per client id, the milliseconds
    since its state was last written, so that a peer times it out 30 s after that write
    (docs/presence.md), not 30 s after this message."""
    fields: dict[str, Any] = {
        field: protocol.encode_base64(protocol.awareness_message(awareness_codec.encode_update(entries)))
    }
    ages = {str(entry.client_id): entry.age_ms for entry in entries if entry.age_ms is not None}
    if ages:
        fields["ages"] = ages
    return fields
