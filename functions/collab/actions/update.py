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

from collab import client_ids, protocol
from collab.actions.awareness import accept, awareness_fields, send_roster, share
from collab.caller import Caller
from collab.compaction import compact
from collab.documents import Appended, validate_update
from collab.errors import BadRequest, Forbidden, TooLarge
from collab.membership import broadcast, participants, recipients
from collab.observability import metrics, tracer
from collab.rooms import Member
from collab.runtime import Runtime
from collab.scene_versions import auto_version_if_due


def on_update(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    message = protocol.decode_sync_message(protocol.decode_base64(protocol.require_str(frame, "data")))
    if message.kind == protocol.SYNC_STEP1:
        raise BadRequest("update carries a SyncStep2 [0,1,update] or an Update [0,2,update]")
    entries = rt.awareness.decode(protocol.require_str(frame, "awareness")) if "awareness" in frame else None
    payload = accepted_payload(rt, caller, message.payload)
    if payload is None:
        # An empty SyncStep2 adds nothing: neither stored, broadcast nor refused; nor do
        # structs that were all another user's. The cursor move still travels.
        if entries:
            share(rt, caller, entries)
        return
    appended = _store(rt, caller, payload)
    refused: TooLarge | None = None
    presence = None
    if entries:
        try:
            presence = accept(rt, caller, entries)
        except TooLarge as error:  # a presence cap: the edit is stored, and goes out alone
            refused = error
    members = recipients(rt, caller)  # after the append
    others = [m.connection_id for m in members]
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
    _after_store(rt, caller, appended, members, len(payload))


def apply_update(rt: Runtime, caller: Caller, update: bytes) -> bool:
    """An update from outside a WebSocket (the HTTP API, a restore): validated, stored and
    broadcast to every member exactly as an `update` frame is. False when it adds nothing.
    No resync follows it, so it binds every new client id it names at once (an import of
    a scene written over many page loads), where a frame binds a few and leaves the rest
    to its author's next resync."""
    payload = accepted_payload(rt, caller, update, bind_all=True)
    if payload is None:
        return False
    appended = _store(rt, caller, payload)
    members = recipients(rt, caller)
    text = protocol.data_message("update", protocol.update_message(payload))
    broadcast(rt, caller, [m.connection_id for m in members], text)
    _after_store(rt, caller, appended, members, len(payload))
    return True


def accepted_payload(rt: Runtime, caller: Caller, update: bytes, *, bind_all: bool = False) -> bytes | None:
    """What of `update` is stored: None when it changes nothing. InvalidUpdate when Yjs
    could not read it, Forbidden from a viewer, TooLarge when it names too many client ids."""
    with tracer.provider.in_subsegment("## validate"):
        changes = validate_update(update)
    if not changes:
        return None
    if caller.is_viewer:
        raise Forbidden("viewers cannot change the scene")
    payload = update
    if rt.client_ids is not None:
        # Structs under another user's client ids are dropped: the server already has
        # them (an honest client only learns them from the server), or they are forged.
        max_new = client_ids.MAX_IDS_PER_UPDATE if bind_all else None
        payload = rt.client_ids.filter_foreign(caller.scene_id, caller.user_id, update, max_new)
        if payload is not update and not validate_update(payload):
            return None
    return payload


def _store(rt: Runtime, caller: Caller, payload: bytes) -> Appended:
    with tracer.provider.in_subsegment("## durable_and_cache_write"):
        appended = rt.documents.append(caller.scene_id, payload)
    metrics.add_metric(name="UpdatesApplied", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="UpdateBytes", unit=MetricUnit.Bytes, value=len(payload))
    return appended


def _after_store(rt: Runtime, caller: Caller, appended: Appended, members: list[Member], size: int) -> None:
    """Off the latency path, after the broadcast: compaction, the change event, and an
    automatic version when one is due."""
    if appended.compact_log:
        compact(rt, caller.scene_id, log=True)
    elif appended.compact_cache:
        compact(rt, caller.scene_id, log=False)
    rt.events.scene_changed(caller.scene_id, participants(caller, members), size)
    auto_version_if_due(rt, caller)
