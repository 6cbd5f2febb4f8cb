"""The entry points' way in: one client frame (`handle_message`) or the end of a
connection (`on_disconnect`). Parsing, the caller's expiry and access, chunk reassembly and
turning every failure into an `error` message live here; what each action does lives in
collab.actions, who receives what in collab.membership.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from collab import protocol
from collab.actions import HANDLERS
from collab.cache import CacheUnavailable
from collab.caller import Caller
from collab.errors import BadRequest, CollabError, NoAccess, TokenExpired
from collab.membership import evict
from collab.observability import logger, metrics
from collab.runtime import Runtime
from collab.scene_versions import version_on_last_leave

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
            text = _reassemble(rt, caller, frame)
            if text is None:
                return
            frame = protocol.parse_frame(text)
            action = frame.get("action") if isinstance(frame.get("action"), str) else None
            if action == "chunk":
                raise BadRequest("a chunked message cannot itself be a chunk")
        handler = HANDLERS.get(action or "")
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


def _reassemble(rt: Runtime, caller: Caller, frame: dict[str, Any]) -> str | None:
    # The assemblers check the fields' types themselves (bad_request on any mismatch).
    part: dict[str, Any] = {key: frame.get(key) for key in ("id", "seq", "total", "data")}
    try:
        return rt.chunks.add(caller.connection_id, part["id"], part["seq"], part["total"], part["data"])
    except CacheUnavailable:
        if rt.durable_chunks is None:
            raise
    # Without the cache, slices go to DynamoDB: an edit too big for one frame is still
    # stored and broadcast. A message begun in Redis does not complete here; the
    # author's next resync sends it again.
    logger.info("chunk reassembled in DynamoDB: the cache is unavailable")
    return rt.durable_chunks.add(
        caller.scene_id, caller.connection_id, part["id"], part["seq"], part["total"], part["data"]
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


def on_disconnect(rt: Runtime, caller: Caller) -> None:
    with contextlib.suppress(CacheUnavailable):  # the slices expire on their own (TTL)
        rt.chunks.forget(caller.connection_id)
    evict(rt, caller, [caller.connection_id])
    version_on_last_leave(rt, caller)
