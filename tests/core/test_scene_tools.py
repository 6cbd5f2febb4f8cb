"""`collabctl scene check` and `collabctl scene remove-update` against moto (DynamoDB, S3)
and a real Redis: a scene holding an update Yjs cannot read (review F1, stored before the
strict reader existed) is reported by entry id, and after the removal what a sync serves
is what real Yjs reads back as the scene's text."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from pycrdt import Doc, Text, merge_updates

from collab.blobs import BlobStore
from collab.cache import connect, scene_key
from collab.documents import Documents
from collab.durable_log import DurableLog
from collab.hot_state import HotState
from collab.lib0 import var_string, var_uint
from collabctl.cli import main
from tests.support.yjs_node import apply_in_yjs

# Review F1's 15 bytes: client 42, a type with type ref 9 under the root "scene".
BAD = bytes([0x01, 0x01, 0x2A, 0x00, 0x07, 0x01, 0x05]) + b"scene" + bytes([0x09, 0x00])


@dataclass
class Scene:
    scene_id: str
    log: DurableLog
    documents: Documents
    redis_url: str
    tables: dict[str, str]


@pytest.fixture
def scene(
    aws_tables: dict[str, str], redis_standalone: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scene]:
    for name, value in aws_tables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    dynamodb = boto3.client("dynamodb")
    log = DurableLog(
        dynamodb, aws_tables["DOCUMENTS_TABLE"], BlobStore(boto3.client("s3"), aws_tables["SNAPSHOT_BUCKET"])
    )
    cache = connect(redis_standalone, False)
    yield Scene(
        f"scene-{uuid.uuid4().hex[:8]}", log, Documents(log, HotState(cache)), redis_standalone, aws_tables
    )
    cache.close()


def typed(text: str, client_id: int = 7) -> list[bytes]:
    doc: Doc = Doc(client_id=client_id)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for word in text.split(" "):
        doc.get("scene", type=Text).insert(len(str(doc.get("scene", type=Text))), word + " ")
    return updates


def yjs_text(state: bytes) -> str | None:
    """What a browser loading `state` sees in the root "scene" (None if Yjs throws)."""
    [result] = apply_in_yjs([(b"", state)])
    if result["fresh"] is not None:
        return None
    doc: Doc = Doc()
    doc.apply_update(state)
    return str(doc.get("scene", type=Text))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def bad_lines(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines() if line.startswith("BAD")]


def test_a_bad_log_entry_is_reported_by_id_and_removed(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [scene.log.append(scene.scene_id, u) for u in typed("the real screenplay")]
    bad = scene.log.append(scene.scene_id, BAD)  # stored before the strict reader existed
    assert yjs_text(scene.documents.load(scene.scene_id).state) is None  # every browser breaks

    code, out, _ = run(capsys, "scene", "check", "--scene", scene.scene_id)
    assert code == 2
    rows = bad_lines(out)
    assert [(r[1], r[2]) for r in rows] == [("log", bad), ("served", "merged")]
    assert "type ref 9" in rows[0][4] and "(client 42)" in rows[0][4]
    assert out.count("ok \tlog") == len(good)

    code, out, err = run(
        capsys,
        "scene",
        "remove-update",
        "--scene",
        scene.scene_id,
        "--entry",
        bad,
        "--redis-url",
        scene.redis_url,
    )
    assert code == 0, err
    assert f"removed log entry {bad}" in out and "purged the cache" in out
    assert [e.entry_id for e in scene.log.read_log(scene.scene_id)] == good
    assert yjs_text(scene.documents.load(scene.scene_id).state) == "the real screenplay "
    assert run(capsys, "scene", "check", "--scene", scene.scene_id)[0] == 0


def test_a_bad_struct_inside_the_snapshot_is_cut_out_with_its_client_group(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    # Compacted before anyone noticed: the snapshot holds it, and so does the Redis cache.
    head = scene.log.read_head(scene.scene_id)
    screenplay, more = typed("the real screenplay"), typed("and more", client_id=8)[0]
    head = scene.log.commit_snapshot(scene.scene_id, head, merge_updates(*screenplay, BAD), []) or head
    later = scene.log.append(scene.scene_id, more)
    scene.documents.load(scene.scene_id)  # fills the cache with the merged (bad) state
    redis = connect(scene.redis_url, False)
    assert redis.exists(scene_key(scene.scene_id, "doc"))

    code, out, _ = run(capsys, "scene", "check", "--scene", scene.scene_id, "--json")
    assert code == 2
    findings = {(f["kind"], f["entry_id"]): f for f in json.loads(out)}
    assert findings[("snapshot", head.snapshot_id)]["client"] == 42
    assert findings[("log", later)]["problem"] is None

    code, out, err = run(
        capsys,
        "scene",
        "remove-update",
        "--scene",
        scene.scene_id,
        "--entry",
        str(head.snapshot_id),
        "--redis-url",
        scene.redis_url,
    )
    assert code == 0, err
    assert "without client groups: 42" in out
    assert not redis.exists(scene_key(scene.scene_id, "doc"))  # the cached copy is gone too
    new_head = scene.log.read_head(scene.scene_id)
    assert new_head.version == head.version + 1
    expected = Doc()
    expected.apply_update(merge_updates(*screenplay, more))
    assert yjs_text(scene.documents.load(scene.scene_id).state) == str(expected.get("scene", type=Text))
    assert run(capsys, "scene", "check", "--scene", scene.scene_id)[0] == 0
    redis.close()


def test_a_spilled_bad_entry_loses_its_s3_object_too(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    # 400 KB: the update lives in S3, its item only points to it.
    big = var_uint(1) + var_uint(2) + var_uint(42) + var_uint(0)
    big += (
        b"\x04\x01"
        + var_string("scene")
        + var_string("x" * 400_000)
        + b"\x07\x01"
        + var_string("scene")
        + b"\x09"
        + b"\x00"
    )
    entry = scene.log.append(scene.scene_id, big)
    [item] = scene.log.read_log(scene.scene_id)
    assert item.spilled
    s3 = boto3.client("s3")
    bucket = scene.tables["SNAPSHOT_BUCKET"]
    s3.head_object(Bucket=bucket, Key=item.item["s3Key"]["S"])

    code, _out, err = run(
        capsys, "scene", "remove-update", "--scene", scene.scene_id, "--entry", entry, "--skip-cache"
    )
    assert code == 0, err
    assert "cache not purged" in err
    assert scene.log.read_log(scene.scene_id) == []
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key=item.item["s3Key"]["S"])


def test_refusals_change_nothing(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    [good] = [scene.log.append(scene.scene_id, u) for u in typed("fine")]
    bad = scene.log.append(scene.scene_id, BAD)
    cases = [
        (["--entry", bad], "REDIS_URL"),  # nowhere to purge the cache: refused before deleting
        (["--entry", good, "--skip-cache"], "is readable; --force"),
        (["--entry", "00000000000000000000-000000000000", "--skip-cache"], "no log entry"),
    ]
    for extra, message in cases:
        code, _out, err = run(capsys, "scene", "remove-update", "--scene", scene.scene_id, *extra)
        assert code == 1 and message in err
    assert [e.entry_id for e in scene.log.read_log(scene.scene_id)] == [good, bad]
    # --force removes a readable update (an operator's call, e.g. vandalism).
    code, _out, _err = run(
        capsys,
        "scene",
        "remove-update",
        "--scene",
        scene.scene_id,
        "--entry",
        good,
        "--force",
        "--skip-cache",
    )
    assert code == 2  # removed; the bad one still makes the scene unreadable
    assert [e.entry_id for e in scene.log.read_log(scene.scene_id)] == [bad]
