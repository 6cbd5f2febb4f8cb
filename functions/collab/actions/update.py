"""`update`: validate, persist (DynamoDB first: that is the acknowledgement), broadcast.

The member list for fan-out is read after the durable write (invariant 2), so a member
that joined before the write receives the update, and one that joins after loads it.

An update may carry, in `awareness`, the awareness change of the same moment (the cursor
move an edit causes): it is checked before anything is stored, applied as an `awareness`
message would be, and travels to the others inside the same `update` frame, so a
keystroke costs one message each way instead of two (issue 11)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from collab import protocol
from collab.actions.awareness import accept, send, share, share_with_update
from collab.caller import Caller
from collab.compaction import compact
from collab.documents import validate_update
from collab.errors import BadRequest, Forbidden
from collab.membership import broadcast, recipients
from collab.observability import metrics, tracer
from collab.runtime import Runtime


def on_update(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    message = protocol.decode_sync_message(protocol.decode_base64(protocol.require_str(frame, "data")))
    if message.kind == protocol.SYNC_STEP1:
        raise BadRequest("update carries a SyncStep2 [0,1,update] or an Update [0,2,update]")
    entries = rt.awareness.decode(protocol.require_str(frame, "awareness")) if "awareness" in frame else None
    with tracer.provider.in_subsegment("## validate"):
        changes = validate_update(message.payload)
    if not changes:
        # An empty SyncStep2 adds nothing: neither stored, broadcast nor refused.
        if entries:
            share(rt, caller, entries)
        return
    if caller.is_viewer:
        raise Forbidden("viewers cannot change the scene")
    # Before the durable write: a refused awareness part refuses the frame whole.
    presence = accept(rt, caller, entries) if entries else None
    payload = message.payload
    if rt.client_ids is not None:
        # Structs under another user's client ids are dropped: the server already has
        # them (an honest client only learns them from the server), or they are forged.
        payload = rt.client_ids.filter_foreign(caller.scene_id, caller.user_id, payload)
        if payload is not message.payload and not validate_update(payload):
            if presence is not None:
                send(rt, caller, presence)  # the cursor move still travels
            return
    with tracer.provider.in_subsegment("## durable_and_cache_write"):
        appended = rt.documents.append(caller.scene_id, payload)
    metrics.add_metric(name="UpdatesApplied", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="UpdateBytes", unit=MetricUnit.Bytes, value=len(payload))
    others = [m.connection_id for m in recipients(rt, caller)]  # after the append
    text = protocol.server_message(
        "update",
        data=protocol.encode_base64(protocol.update_message(payload)),
        **share_with_update(rt, caller, presence),
    )
    broadcast(rt, caller, others, text)
    if appended.compact_log:
        compact(rt, caller.scene_id, log=True)
    elif appended.compact_cache:
        compact(rt, caller.scene_id, log=False)
