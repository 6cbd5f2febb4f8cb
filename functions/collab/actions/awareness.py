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
    try:
        accepted = rt.awareness.apply(caller.scene_id, caller.connection_id, entries, user_id=caller.user_id)
    except CacheUnavailable:
        metrics.add_metric(name="AwarenessDropped", unit=MetricUnit.Count, value=1)
        return
    if accepted and rt.client_ids is not None and not caller.is_viewer:
        # An editor's presence claims its client ids (review M8): a client announces itself
        # before it types, so its id is bound before a peer can learn it from a broadcast
        # and forge edits under it. Only ids the store accepted (at most 4 live ones per
        # connection), and not a viewer's, which can never write: bindings stay bounded.
        foreign = rt.client_ids.foreign(caller.scene_id, caller.user_id, [e.client_id for e in accepted])
        accepted = [entry for entry in accepted if entry.client_id not in foreign]
    if not accepted:
        return
    others = [m.connection_id for m in recipients(rt, caller)]
    update = awareness_codec.encode_update(accepted)
    text = protocol.data_message("awareness", protocol.awareness_message(update))
    broadcast(rt, caller, others, text)
