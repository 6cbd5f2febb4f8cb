"""The version store (collab.versions) and the change events' throttle
(collab.change_events) on moto's DynamoDB and S3, with a clock the test moves: automatic
versions at most once per interval across environments, the clock restarting after a
pause in editing, retention, listing only entries, and Scene Changed at most once per 30 s
per scene whichever environment asks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from collab import aws_clients
from collab.blobs import BlobStore
from collab.change_events import SCENE_CHANGED, ChangeEvents
from collab.versions import AUTO_INTERVAL_SECONDS, VersionNotFound, Versions, valid_version_id


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(aws_tables: dict[str, str]) -> Any:
    return aws_clients.client("dynamodb")


def store(aws_tables: dict[str, str], dynamodb: Any, clock: Clock, retention_days: int = 90) -> Versions:
    blobs = BlobStore(aws_clients.client("s3"), aws_tables["SNAPSHOT_BUCKET"])
    return Versions(
        dynamodb, aws_tables["DOCUMENTS_TABLE"], blobs, retention_days=retention_days, clock=clock
    )


def test_automatic_versions_come_once_per_interval_of_editing_across_environments(
    aws_tables: dict[str, str], dynamodb: Any
) -> None:
    clock = Clock()
    scene = f"s-{uuid.uuid4().hex[:8]}"
    one, two = store(aws_tables, dynamodb, clock), store(aws_tables, dynamodb, clock)
    # The first edit starts the clock; nothing is due yet, in either environment.
    assert not one.claim_auto(scene) and not two.claim_auto(scene)
    clock.now += AUTO_INTERVAL_SECONDS / 2
    assert not one.claim_auto(scene) and not two.claim_auto(scene)  # memo: no write at all
    clock.now += AUTO_INTERVAL_SECONDS / 2 + 1
    # Both ask once the interval is over; exactly one takes the version.
    assert [one.claim_auto(scene), two.claim_auto(scene)].count(True) == 1
    assert not one.claim_auto(scene) and not two.claim_auto(scene)
    clock.now += AUTO_INTERVAL_SECONDS + 1
    assert [two.claim_auto(scene), one.claim_auto(scene)].count(True) == 1
    # A pause in editing longer than two intervals: the clock starts again at the next edit.
    clock.now += 3 * AUTO_INTERVAL_SECONDS
    assert not one.claim_auto(scene) and not two.claim_auto(scene)
    clock.now += AUTO_INTERVAL_SECONDS + 1
    assert [one.claim_auto(scene), two.claim_auto(scene)].count(True) == 1


def test_entries_are_listed_newest_first_and_expire_with_the_retention(
    aws_tables: dict[str, str], dynamodb: Any
) -> None:
    clock = Clock()
    scene = f"s-{uuid.uuid4().hex[:8]}"
    versions = store(aws_tables, dynamodb, clock, retention_days=1)
    made = []
    for n in range(3):
        made.append(
            versions.create(scene, b"\x00\x00", b"\x00", label=f"v{n}", created_by="ann", auto=n == 1)
        )
        clock.now += 1
    assert all(valid_version_id(v.version_id) for v in made)
    assert [v.label for v in versions.list(scene)] == ["v2", "v1", "v0"]
    assert versions.list(scene, limit=2) == [made[2], made[1]]
    assert versions.get(scene, made[1].version_id).auto is True
    assert versions.read(scene, made[0].version_id) == b"\x00\x00"
    item = dynamodb.get_item(
        TableName=aws_tables["DOCUMENTS_TABLE"],
        Key={"sceneId": {"S": scene}, "sk": {"S": "ver#" + made[0].version_id}},
    )["Item"]
    assert int(item["expiresAt"]["N"]) == int(Clock().now) + 86_400
    clock.now = Clock().now + 86_400.5  # past the first one's expiry only (TTL has not run)
    assert [v.label for v in versions.list(scene)] == ["v2", "v1"]
    with pytest.raises(VersionNotFound):
        versions.read(scene, made[0].version_id)
    with pytest.raises(VersionNotFound):
        versions.get(scene, "1234567890123-00000000")


def test_retention_zero_keeps_versions(aws_tables: dict[str, str], dynamodb: Any) -> None:
    clock = Clock()
    scene = f"s-{uuid.uuid4().hex[:8]}"
    versions = store(aws_tables, dynamodb, clock, retention_days=0)
    version = versions.create(scene, b"\x00\x00", b"\x00", label="", created_by="ann", auto=False)
    clock.now += 10 * 365 * 86_400
    assert versions.list(scene) == [version]


class Bus:
    """Stands in for EventBridge's client: what was put (the real bus: tests/e2e)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def test_scene_changed_comes_at_most_once_per_interval_whichever_environment_asks(
    aws_tables: dict[str, str], dynamodb: Any
) -> None:
    clock = Clock()
    bus = Bus()
    scene = f"s-{uuid.uuid4().hex[:8]}"
    table = aws_tables["DOCUMENTS_TABLE"]
    one = ChangeEvents(bus, "collab-test", dynamodb, table, clock=clock)
    two = ChangeEvents(bus, "collab-test", dynamodb, table, clock=clock)
    people = [{"userId": "ann", "userName": "Ann"}]
    assert one.scene_changed(scene, people, 10) is True
    assert not two.scene_changed(scene, people, 20)
    assert not one.scene_changed(scene, people, 5)
    clock.now += 31
    sent = [two.scene_changed(scene, people, 1), one.scene_changed(scene, people, 1)]
    assert sent.count(True) == 1
    assert [e["DetailType"] for e in bus.entries] == [SCENE_CHANGED, SCENE_CHANGED]
    assert all(e["Source"] == "collab" and e["EventBusName"] == "collab-test" for e in bus.entries)
    # Without a bus, nothing is sent and nothing is written.
    silent = ChangeEvents(bus, "", dynamodb, table, clock=clock)
    assert not silent.scene_changed(f"s-{uuid.uuid4().hex[:8]}", people, 1)
    assert len(bus.entries) == 2
