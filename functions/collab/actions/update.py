"""`update`: validate, persist (DynamoDB first: that is the acknowledgement), broadcast.

The member list for fan-out is read after the durable write (invariant 2), so a member
that joined before the write receives the update, and one that joins after loads it.

An update may carry, in `awareness`, the awareness change of the same moment (the cursor
move an edit causes), so a keystroke costs one message each way instead of two (issue 11).
Its format and size are checked before anything is stored (a malformed frame is refused
whole); it is applied after the durable write, so nothing presence does (a cap, an
outage) can cost the edit: a refused awareness part is answered on its own, and the edit
goes out without it. The change travels to the others inside the same `update` frame; a
roster it makes due goes out as its own `awareness` frame."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from collab import protocol
from collab.actions.awareness import accept, awareness_fields, send_roster, share
from collab.caller import Caller
from collab.compaction import compact
from collab.documents import validate_update
from collab.errors import BadRequest, Forbidden, TooLarge
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
    payload = message.payload
    if rt.client_ids is not None:
        # Structs under another user's client ids are dropped: the server already has
        # them (an honest client only learns them from the server), or they are forged.
        payload = rt.client_ids.filter_foreign(caller.scene_id, caller.user_id, payload)
        if payload is not message.payload and not validate_update(payload):
            if entries:
                share(rt, caller, entries)  # the cursor move still travels
            return
    with tracer.provider.in_subsegment("## durable_and_cache_write"):
        appended = rt.documents.append(caller.scene_id, payload)
    metrics.add_metric(name="UpdatesApplied", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="UpdateBytes", unit=MetricUnit.Bytes, value=len(payload))
    refused: TooLarge | None = None
    presence = None
    if entries:
        try:
            presence = accept(rt, caller, entries)
        except TooLarge as error:  # a presence cap: the edit is stored, and goes out alone
            refused = error
    others = [m.connection_id for m in recipients(rt, caller)]  # after the append
    data = protocol.encode_base64(protocol.update_message(payload))
    if presence is not None and presence.roster is None and presence.forward:
        text = protocol.server_message("update", data=data, **awareness_fields(presence.forward, "awareness"))
    else:
        text = protocol.server_message("update", data=data)
    broadcast(rt, caller, others, text)
    if presence is not None and presence.roster is not None:
        send_roster(rt, caller, others, presence)
    if refused is not None:
        notice = protocol.error_message(refused.code, refused.message, "awareness")
        rt.outbox(caller.endpoint).send(caller.connection_id, notice)
    if appended.compact_log:
        compact(rt, caller.scene_id, log=True)
    elif appended.compact_cache:
        compact(rt, caller.scene_id, log=False)
