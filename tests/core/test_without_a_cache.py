"""What a stage without a cache (or with its cache down) must still do, against moto and
each shape: a failing presence store costs the awareness, never the edit it came with;
and the durable log is compacted by updates alone, with no sync to notice its size."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from pycrdt import Doc, Text

from collab import protocol, session
from collab.documents import Documents
from tests.support.faults import before_send
from tests.support.rig import Shape, an_update, awareness_frame, build_rig, caller, sync_frame, text_seen_by


def _break_presence(rt: Any, shape: Shape) -> None:
    """Presence's store fails: the cache is down, or DynamoDB times out on its items."""
    if shape.has_cache:
        rt.cache._skip_until = float("inf")  # the breaker is open: every call refused
        return
    db = rt.documents._log._db

    def time_out(operation: str, body: bytes) -> None:
        if b'"aw#' in body:
            raise ReadTimeoutError(endpoint_url="http://dynamodb.local")

    before_send(db, time_out)


@pytest.mark.parametrize("shape", ["standalone", "none"], indirect=True)
def test_a_failing_presence_store_drops_the_awareness_not_the_edit(
    shape: Shape, aws_tables: dict[str, str]
) -> None:
    rt, recorder, _ = build_rig(shape, aws_tables)
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user in ("ann", "bob"):
        rt.access.grant(scene, user, "editor")
    ann, bob = caller(scene, "ann=", "ann"), caller(scene, "bob=", "bob")
    for who in (ann, bob):
        session.handle_message(rt, who, sync_frame())
    _break_presence(rt, shape)
    cursor = json.loads(awareness_frame((9, 1, {"cursor": 3})))["data"]
    update = protocol.encode_base64(protocol.update_message(an_update("INT. KITCHEN - DAY")))
    session.handle_message(rt, ann, json.dumps({"action": "update", "data": update, "awareness": cursor}))
    session.handle_message(rt, ann, awareness_frame((9, 2, {"cursor": 4})))
    assert [m for m in recorder.sent["ann="] if m["type"] == "error"] == []
    assert text_seen_by(recorder.sent["bob="]) == "INT. KITCHEN - DAY"
    assert rt.documents.load(scene).state  # stored, not only relayed
    assert "awareness" not in recorder.sent["bob="][-1]


@pytest.mark.parametrize("shape", ["none"], indirect=True)
def test_updates_alone_keep_the_log_compacted_without_a_cache(
    shape: Shape, aws_tables: dict[str, str]
) -> None:
    """No sync comes (one client typing, nobody resyncing): the log stays near its limit."""
    rt, _, _ = build_rig(shape, aws_tables, LOG_TAIL_LIMIT="10")
    # A seeded chance: the same run every time (in production, random.random).
    rt.documents = Documents(
        rt.documents._log, rt.documents._hot, log_tail_limit=10, chance=random.Random(3).random
    )
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    rt.access.grant(scene, "ann", "editor")
    ann = caller(scene, "ann=", "ann")
    session.handle_message(rt, ann, sync_frame())
    writer, lengths = Doc(), []
    for n in range(200):
        update = protocol.encode_base64(protocol.update_message(an_update(f"{n} ", writer)))
        session.handle_message(rt, ann, json.dumps({"action": "update", "data": update}))
        lengths.append(len(rt.documents._log.read_log(scene)))
    assert max(lengths) < 60, max(lengths)
    # Nothing lost on the way: every update is in a snapshot or the log.
    stored = Doc()
    stored.apply_update(rt.documents.load(scene).state)
    assert str(stored.get("t", type=Text)) == "".join(f"{n} " for n in range(200))
