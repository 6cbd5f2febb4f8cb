"""Change events on the stage's EventBridge bus (issue 12): `Scene Changed`, `Version
Created`, `Version Restored`, source `collab`, for webhooks and other consumers
(docs/events.md).

Events are told after the edit is stored and broadcast, and a failure to tell one is
logged and counted, never an error of the edit: EventBridge is not on the acknowledgement
path. Without EVENT_BUS_NAME (a stage or test that has no bus) nothing is sent.

`Scene Changed` comes at most once per scene per SCENE_CHANGED_INTERVAL_SECONDS while the
scene is edited: each execution environment remembers when it may next ask, and a
conditional write on the scene's `events#changed` item decides between environments, so a
busy scene costs one conditional write per environment per interval, never one per edit.
Its `bytes` is what the edits the sending environment accepted since its previous event
for the scene weigh: exact with one environment, a lower bound with several.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from collab.observability import logger, metrics

SOURCE = "collab"
SCENE_CHANGED = "Scene Changed"
VERSION_CREATED = "Version Created"
VERSION_RESTORED = "Version Restored"
SCENE_CHANGED_INTERVAL_SECONDS = 30
MARKER = "events#changed"


class ChangeEvents:
    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        dynamodb: Any,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._events = events_client
        self._bus = bus_name
        self._db = dynamodb
        self._table = table
        self._clock = clock
        self._next_check: dict[str, float] = {}
        self._pending_bytes: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._bus)

    def scene_changed(self, scene_id: str, participants: list[dict[str, str]], edit_bytes: int) -> bool:
        """Counts an accepted edit; sends `Scene Changed` when the scene's interval allows.
        True when it was sent."""
        if not self.enabled:
            return False
        self._pending_bytes[scene_id] = self._pending_bytes.get(scene_id, 0) + edit_bytes
        now = self._clock()
        if self._next_check.get(scene_id, 0.0) > now:
            return False
        self._next_check[scene_id] = now + SCENE_CHANGED_INTERVAL_SECONDS
        if len(self._next_check) > 10_000:  # a long-lived environment's memo stays small
            self._next_check = {scene_id: self._next_check[scene_id]}
            self._pending_bytes = {scene_id: self._pending_bytes[scene_id]}
        try:
            if not self._claim(scene_id, now):
                return False
        except (BotoCoreError, ClientError):
            logger.exception("Scene Changed not sent: its claim failed", extra={"sceneId": scene_id})
            return False
        detail = {
            "sceneId": scene_id,
            "participants": participants,
            "bytes": self._pending_bytes.pop(scene_id, 0),
        }
        return self.put(SCENE_CHANGED, detail)

    def put(self, detail_type: str, detail: dict[str, Any]) -> bool:
        if not self.enabled:
            return False
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self._bus,
        }
        try:
            response = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError):
            logger.exception("event not sent", extra={"detailType": detail_type})
            metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=1)
            return False
        if response.get("FailedEntryCount"):
            failure = (response.get("Entries") or [{}])[0]
            logger.error(
                "event refused by EventBridge",
                extra={
                    "detailType": detail_type,
                    "error": failure.get("ErrorCode"),
                    "reason": failure.get("ErrorMessage"),
                },
            )
            metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=1)
            return False
        return True

    def _claim(self, scene_id: str, now: float) -> bool:
        # The claim names itself: botocore retries a write whose response was lost, and the
        # retry then fails the condition on this very write (whose item says it was ours).
        claim = secrets.token_hex(8)
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"sceneId": {"S": scene_id}, "sk": {"S": MARKER}},
                UpdateExpression="SET sentAt = :now, claim = :claim",
                ConditionExpression="attribute_not_exists(sentAt) OR sentAt <= :cutoff",
                ExpressionAttributeValues={
                    ":now": {"N": f"{now:.3f}"},
                    ":cutoff": {"N": f"{now - SCENE_CHANGED_INTERVAL_SECONDS:.3f}"},
                    ":claim": {"S": claim},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return error.response.get("Item", {}).get("claim", {}).get("S") == claim
            raise
        return True
