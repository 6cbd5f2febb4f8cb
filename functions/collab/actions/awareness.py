"""`awareness`: keep the latest state per Yjs client id, broadcast what was accepted.

Presence lives in the cache only: with the cache unavailable an awareness update is
dropped (nothing can check which client ids the connection owns), and peers drop a state
not renewed within 30 s, as y-protocols does."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from collab import awareness as awareness_codec
from collab import protocol
from collab.cache import CacheUnavailable
from collab.caller import Caller
from collab.membership import broadcast, recipients
from collab.observability import metrics
from collab.runtime import Runtime


def on_awareness(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    # Size and entry caps come before any base64 or entry work (invariant 9).
    entries = rt.awareness.decode(protocol.require_str(frame, "data"))
    if rt.client_ids is not None and entries:
        # Presence claims its client ids for the user (review M8): announced before any
        # edit, an id is bound before a peer can learn it from a broadcast and forge it.
        foreign = rt.client_ids.foreign(caller.scene_id, caller.user_id, [e.client_id for e in entries])
        entries = [entry for entry in entries if entry.client_id not in foreign]
    try:
        accepted = rt.awareness.apply(caller.scene_id, caller.connection_id, entries, user_id=caller.user_id)
    except CacheUnavailable:
        metrics.add_metric(name="AwarenessDropped", unit=MetricUnit.Count, value=1)
        return
    if not accepted:
        return
    others = [m.connection_id for m in recipients(rt, caller)]
    update = awareness_codec.encode_update(accepted)
    text = protocol.data_message("awareness", protocol.awareness_message(update))
    broadcast(rt, caller, others, text)
