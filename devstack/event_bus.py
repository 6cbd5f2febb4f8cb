"""The local stage's EventBridge bus (in moto), and SQS queues subscribed to it: how a
test, or a developer, reads the change events the handlers publish ("Scene Changed",
"Version Created", "Version Restored"), as one would on AWS through a rule to a queue.

    queue = stack.subscribe_events()            # devstack.stack.LocalStack
    ...                                         # something publishes to the bus
    events = queue.receive(count=1)             # [{"detail-type": ..., "detail": {...}}]

From another process (`python -m devstack` runs elsewhere), `subscribe(MOTO_URL,
EVENT_BUS_NAME)` with the values of its READY block and state file does the same.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.services import local_client

# The handlers' setting that names the bus (collab.settings.EVENT_BUS_NAME).
EVENT_BUS_NAME = "EVENT_BUS_NAME"
# What a subscription receives unless it asks for less: every change event type.
CHANGE_EVENTS: Mapping[str, Any] = {"detail-type": ["Scene Changed", "Version Created", "Version Restored"]}


def bus_name(stage: str) -> str:
    return f"collab-{stage}-events"


def create_bus(moto_url: str, name: str) -> str:
    """Create the bus; its ARN."""
    return str(local_client("events", moto_url).create_event_bus(Name=name)["EventBusArn"])


@dataclass
class EventQueue:
    """An SQS queue behind a rule on the bus."""

    moto_url: str
    queue_url: str
    rule: str

    def receive(self, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The next events (EventBridge's envelopes, `detail` parsed), once `count` are
        there or `timeout` is up, oldest first; each is taken off the queue."""
        sqs = local_client("sqs", self.moto_url)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(events) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(20, int(remaining))  # whole seconds; under one: a last short poll
            got = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, count - len(events)),
                WaitTimeSeconds=wait,
            )
            messages = got.get("Messages", [])
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages and wait == 0:
                break
        return events


def subscribe(
    moto_url: str, bus: str, pattern: Mapping[str, Any] | None = None, name: str | None = None
) -> EventQueue:
    """A new queue and a rule on `bus` that sends it the events matching `pattern` (an
    EventBridge event pattern; by default every change event)."""
    name = name or f"collab-events-{uuid.uuid4().hex[:12]}"
    sqs = local_client("sqs", moto_url)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = local_client("events", moto_url)
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps(dict(pattern or CHANGE_EVENTS)), State="ENABLED"
    )
    # On AWS the queue's policy must also let events.amazonaws.com send to it; moto does
    # not check it, and nothing here is deployed.
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return EventQueue(moto_url, queue_url, name)
