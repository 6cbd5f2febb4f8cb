"""What happens for each client action, transport-agnostic: the entry points hand over a
Caller and the frame; replies and broadcasts go out through the Management API outbox.

Order matters for the invariants (DESIGN §4): a member is registered before its sync
loads state, and an update is durable before the member list for fan-out is read.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pycrdt import get_state, get_update

from collab import awareness as awareness_codec
from collab import protocol
from collab.caller import Caller
from collab.documents import EMPTY_UPDATE, validate_update
from collab.errors import BadRequest, CollabError, Forbidden, NoAccess, TokenExpired
from collab.observability import logger, metrics, tracer
from collab.rooms import Member
from collab.runtime import Runtime

ACCEPTED = ", ".join(protocol.ACTIONS)


def handle_message(rt: Runtime, caller: Caller, body: str | None) -> None:
    """Handle one client frame; every failure becomes an `error` message to the caller."""
    action: str | None = None
    chunk_id: str | None = None
    try:
        frame: dict[str, Any] = {}
        unreadable: BadRequest | None = None
        try:
            frame = protocol.parse_frame(body)
        except BadRequest as error:
            unreadable = error
        action = frame.get("action") if isinstance(frame.get("action"), str) else None
        # Expiry and access come first, but their errors still name the action they answer.
        if caller.token_expired():
            raise TokenExpired("the token has expired; reconnect with a fresh one")
        if not caller.role:
            raise NoAccess(f"no access to scene {caller.scene_id}")
        if unreadable is not None:
            raise unreadable
        if action == "chunk":
            chunk_id = frame.get("id") if isinstance(frame.get("id"), str) else None
            # The assembler checks the fields' types itself (bad_request on any mismatch).
            part: dict[str, Any] = {key: frame.get(key) for key in ("id", "seq", "total", "data")}
            text = rt.chunks.add(caller.connection_id, part["id"], part["seq"], part["total"], part["data"])
            if text is None:
                return
            frame = protocol.parse_frame(text)
            action = frame.get("action") if isinstance(frame.get("action"), str) else None
            if action == "chunk":
                raise BadRequest("a chunked message cannot itself be a chunk")
        handler = _HANDLERS.get(action or "")
        if handler is None:
            raise BadRequest(f"unknown action {action!r}; accepted actions: {ACCEPTED}")
        handler(rt, caller, frame)
    except CollabError as error:
        _refuse(rt, caller, error, action, chunk_id)
    except Exception:
        logger.exception("handler failed", extra={"action": action})
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        rt.outbox(caller.endpoint).send(
            caller.connection_id, protocol.error_message("internal", "internal error", action, chunk_id)
        )


def _refuse(
    rt: Runtime, caller: Caller, error: CollabError, action: str | None, chunk_id: str | None
) -> None:
    logger.info("refused", extra={"code": error.code, "action": action, "reason": error.message})
    metrics.add_metric(name=f"Errors_{error.code}", unit=MetricUnit.Count, value=1)
    outbox = rt.outbox(caller.endpoint)
    outbox.send(caller.connection_id, protocol.error_message(error.code, error.message, action, chunk_id))
    if error.closes_connection:
        outbox.close(caller.connection_id)


def on_sync(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    message = _sync_message(frame)
    if message.kind != protocol.SYNC_STEP1:
        raise BadRequest("sync carries a SyncStep1 [0,0,stateVector] only")
    try:  # before anything is written: a bad state vector must not make a member
        get_update(EMPTY_UPDATE, message.payload)
    except ValueError:
        raise BadRequest("the sync's state vector cannot be decoded") from None
    member = Member(caller.connection_id, caller.user_id, caller.user_name, caller.role, caller.connected_at)
    members = rt.rooms.members(caller.scene_id)
    joined = False
    if not any(m.connection_id == caller.connection_id for m in members):
        # The first sync of this connection; a periodic resync finds its row, writes nothing.
        joined = rt.rooms.join(caller.scene_id, member)
        if joined and rt.access.get_role(caller.scene_id, caller.user_id) is None:
            # Revoked between the upgrade and this first sync: `revoke` could not see the
            # connection (it had no row), so the check is here, after the row is written.
            rt.rooms.leave(caller.scene_id, caller.connection_id)
            raise NoAccess(f"access to scene {caller.scene_id} was revoked")
        members = rt.rooms.members(caller.scene_id)
    if joined:
        others = [m.connection_id for m in members if m.connection_id != caller.connection_id]
        joined_text = protocol.server_message("participant-joined", participant=member.public())
        _broadcast(rt, caller, others, joined_text)
    loaded = rt.documents.load(caller.scene_id)
    missing = get_update(loaded.state, message.payload)
    participants = [m.public() for m in members]
    if not any(p["connectionId"] == caller.connection_id for p in participants):
        participants.append(member.public())
    replies = [
        protocol.server_message(
            "connected",
            sceneId=caller.scene_id,
            connectionId=caller.connection_id,
            user=caller.user(),
            role=caller.role,
            participants=participants,
        ),
        protocol.data_message("sync", protocol.sync_step2(missing)),
    ]
    if not caller.is_viewer:
        state_vector = get_state(loaded.state)
        replies.append(protocol.data_message("sync", protocol.sync_step1(state_vector)))
    present = rt.awareness.current(caller.scene_id)
    if present:
        update = awareness_codec.encode_update(present)
        replies.append(protocol.data_message("awareness", protocol.awareness_message(update)))
    outbox = rt.outbox(caller.endpoint)
    for reply in replies:  # in order, one invocation (DESIGN §2)
        if not outbox.send(caller.connection_id, reply):
            evict(rt, caller, [caller.connection_id])
            return
    if len(loaded.log) > rt.settings.log_tail_limit:
        _compact(rt, caller.scene_id, log=True)


def on_update(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    message = _sync_message(frame)
    if message.kind == protocol.SYNC_STEP1:
        raise BadRequest("update carries a SyncStep2 [0,1,update] or an Update [0,2,update]")
    with tracer.provider.in_subsegment("## validate"):
        changes = validate_update(message.payload)
    if not changes:
        return  # an empty SyncStep2 adds nothing: neither stored, broadcast nor refused
    if caller.is_viewer:
        raise Forbidden("viewers cannot change the scene")
    with tracer.provider.in_subsegment("## durable_and_cache_write"):
        appended = rt.documents.append(caller.scene_id, message.payload)
    metrics.add_metric(name="UpdatesApplied", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="UpdateBytes", unit=MetricUnit.Bytes, value=len(message.payload))
    members = rt.rooms.members(caller.scene_id)  # after the append (invariant 2)
    others = [m.connection_id for m in members if m.connection_id != caller.connection_id]
    text = protocol.data_message("update", protocol.update_message(message.payload))
    _broadcast(rt, caller, others, text)
    if appended.compact_log:
        _compact(rt, caller.scene_id, log=True)
    elif appended.compact_cache:
        _compact(rt, caller.scene_id, log=False)


def on_awareness(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    raw = protocol.decode_base64(protocol.require_str(frame, "data"))
    entries = awareness_codec.decode_update(protocol.decode_awareness_message(raw))
    accepted = rt.awareness.apply(caller.scene_id, caller.connection_id, entries)
    if not accepted:
        return
    members = rt.rooms.members(caller.scene_id)
    others = [m.connection_id for m in members if m.connection_id != caller.connection_id]
    update = awareness_codec.encode_update(accepted)
    text = protocol.data_message("awareness", protocol.awareness_message(update))
    _broadcast(rt, caller, others, text)


def on_ping(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    rt.outbox(caller.endpoint).send(caller.connection_id, protocol.server_message("pong"))


def on_disconnect(rt: Runtime, caller: Caller) -> None:
    rt.chunks.forget(caller.connection_id)
    evict(rt, caller, [caller.connection_id])


def evict(rt: Runtime, caller: Caller, connection_ids: list[str]) -> None:
    """Remove connections that are gone, telling the others they left and removing their
    cursors; announcing may find more gone peers, which are evicted in turn."""
    pending = list(connection_ids)
    seen: set[str] = set()
    while pending:
        connection_id = pending.pop()
        if connection_id in seen:
            continue
        seen.add(connection_id)
        left = rt.rooms.leave(caller.scene_id, connection_id)
        removed = rt.awareness.remove_connection(caller.scene_id, connection_id)
        if left is None and not removed:
            continue
        if connection_id != caller.connection_id:
            metrics.add_metric(name="Evictions", unit=MetricUnit.Count, value=1)
        members = [m.connection_id for m in rt.rooms.members(caller.scene_id)]
        outbox = rt.outbox(caller.endpoint)
        if left is not None:
            text = protocol.server_message("participant-left", participant=left.public())
            pending += outbox.send_all(members, text)
        if removed:
            update = awareness_codec.encode_update(removed)
            text = protocol.data_message("awareness", protocol.awareness_message(update))
            pending += outbox.send_all(members, text)


def _broadcast(rt: Runtime, caller: Caller, connection_ids: list[str], text: str) -> None:
    started = time.perf_counter()
    with tracer.provider.in_subsegment("## fanout"):
        gone = rt.outbox(caller.endpoint).send_all(connection_ids, text)
    metrics.add_metric(name="FanoutRecipients", unit=MetricUnit.Count, value=len(connection_ids))
    metrics.add_metric(
        name="FanoutDuration", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    if gone:
        evict(rt, caller, gone)


def _compact(rt: Runtime, scene_id: str, log: bool) -> None:
    """Compaction runs after the replies and broadcasts, off the latency path; a failure is
    logged (the tail only grows a little until the next attempt)."""
    try:
        done = rt.documents.compact_log(scene_id) if log else rt.documents.compact_cache(scene_id)
    except Exception:
        logger.exception("compaction failed", extra={"log": log})
        return
    if done:
        name = "LogCompactions" if log else "CacheCompactions"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _sync_message(frame: dict[str, Any]) -> protocol.SyncMessage:
    return protocol.decode_sync_message(protocol.decode_base64(protocol.require_str(frame, "data")))


_HANDLERS = {
    "sync": on_sync,
    "update": on_update,
    "awareness": on_awareness,
    "ping": on_ping,
}
