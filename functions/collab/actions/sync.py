"""`sync`: register the connection as a member, then answer with what it lacks.

Order matters (docs/design.md §4): the member is registered (strongly consistent) before its sync
loads state, so an update appended meanwhile is either in what it loads or fanned out to
it. Replies go out in one invocation, in this order: `connected`, SyncStep2, the server's
SyncStep1 (not to viewers), every current awareness state; or, when the sync asks for it
with `"combined": true`, all of it in one `synced` frame.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pycrdt import get_update

from collab import awareness as awareness_codec
from collab import protocol
from collab.actions.awareness import awareness_fields
from collab.cache import CacheUnavailable
from collab.caller import Caller
from collab.compaction import compact
from collab.documents import EMPTY_UPDATE
from collab.durable_log import log_weight
from collab.errors import BadRequest, NoAccess
from collab.membership import announce_join, evict, expel_expired
from collab.observability import logger, metrics
from collab.rooms import Member
from collab.runtime import Runtime
from collab.yjs_format import read_state_vector

# Bytes a sync may fold into the stored summary before it has the cache compacted (after
# its replies), so that later syncs skip them: a few dozen KB merge in about a millisecond.
FOLD_LIMIT = 64 * 1024


def on_sync(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> None:
    message = protocol.decode_sync_message(protocol.decode_base64(protocol.require_str(frame, "data")))
    if message.kind != protocol.SYNC_STEP1:
        raise BadRequest("sync carries a SyncStep1 [0,0,stateVector] only")
    _check_state_vector(message.payload)  # before anything is written: no member from bad input
    member = Member.of(caller)
    roster = rt.rooms.roster(caller.scene_id)
    if roster.expired:
        expel_expired(rt, caller, [m for m in roster.expired if m.connection_id != caller.connection_id])
    members = roster.members
    me = next((m for m in members if m.connection_id == caller.connection_id), None)
    if me is None:
        # The first sync of this connection; a periodic resync finds its row, writes nothing.
        joined = rt.rooms.join(caller.scene_id, member)
        if not joined.verified:
            _recheck_role(rt, caller)
        members = rt.rooms.members(caller.scene_id)
        if joined.first:
            others = [m.connection_id for m in members if m.connection_id != caller.connection_id]
            announce_join(rt, caller, member, others)
    elif not me.verified:
        _recheck_role(rt, caller)  # a first sync that joined, then died before its check
    # A periodic resync usually lacks nothing: answered from the stored summary, without
    # reading the whole scene (Documents.answer_sync).
    answer = rt.documents.answer_sync(caller.scene_id, message.payload)
    participants = [m.public() for m in members]
    if not any(p["connectionId"] == caller.connection_id for p in participants):
        participants.append(member.public())
    connected: dict[str, Any] = {
        "sceneId": caller.scene_id,
        "connectionId": caller.connection_id,
        "user": caller.user(),
        "role": caller.role,
        "participants": participants,
    }
    step2 = protocol.encode_base64(protocol.sync_step2(answer.missing))
    step1 = None if caller.is_viewer else protocol.encode_base64(protocol.sync_step1(answer.state_vector))
    present = _present(rt, caller)
    if frame.get("combined") is True:
        # One frame instead of four (issue 11: a quiet room's periodic resyncs are most of
        # its messages); the client handles its parts in the order below.
        fields = {**connected, "data": step2}
        if step1 is not None:
            fields["stateVector"] = step1
        if present:
            fields.update(awareness_fields(present, "awareness"))
        replies = [protocol.server_message("synced", **fields)]
    else:
        replies = [
            protocol.server_message("connected", **connected),
            protocol.server_message("sync", data=step2),
        ]
        if step1 is not None:
            replies.append(protocol.server_message("sync", data=step1))
        if present:
            replies.append(protocol.server_message("awareness", **awareness_fields(present)))
    outbox = rt.outbox(caller.endpoint)
    for reply in replies:  # in order, one invocation (docs/design.md §2)
        if not outbox.send(caller.connection_id, reply):
            evict(rt, caller, [caller.connection_id])
            return
    if log_weight(answer.log) > rt.settings.log_tail_limit:  # by count and by bytes
        compact(rt, caller.scene_id, log=True)
    elif answer.compactable > FOLD_LIMIT:
        # Much of the tail is not in the cached snapshot yet (a paste): fold it there once,
        # so later syncs skip it (marks) instead of merging it each time.
        compact(rt, caller.scene_id, log=False)


def _check_state_vector(state_vector: bytes) -> None:
    # Counts bounded by the bytes present first: yrs allocates by a declared count (M6).
    read_state_vector(state_vector)
    try:
        get_update(EMPTY_UPDATE, state_vector)
    except ValueError:
        raise BadRequest("the sync's state vector cannot be decoded") from None


def _recheck_role(rt: Runtime, caller: Caller) -> None:
    """A row `$connect` did not admit (it checks the role after writing the row): check
    here, after the row exists, so a revoke either finds the row or is seen now. Every
    sync checks until one succeeds, so concurrent syncs or a crash cannot skip it."""
    role = rt.access.get_role(caller.scene_id, caller.user_id)
    if role != caller.role:
        rt.rooms.leave(caller.scene_id, caller.connection_id)
        if role is None:
            raise NoAccess(f"access to scene {caller.scene_id} was revoked")
        raise NoAccess(f"your role in scene {caller.scene_id} changed to {role}; reconnect")
    rt.rooms.mark_verified(caller.scene_id, caller.connection_id)


def _present(rt: Runtime, caller: Caller) -> list[awareness_codec.AwarenessEntry]:
    try:
        return rt.awareness.current(caller.scene_id)
    except (CacheUnavailable, awareness_codec.PresenceUnavailable):
        # Presence is unavailable (the cache is down); the scene is served from DynamoDB.
        logger.info("awareness skipped in the sync reply: the cache is unavailable")
        metrics.add_metric(name="AwarenessSkipped", unit=MetricUnit.Count, value=1)
        return []
