"""The HTTP API through the local stack (the emulator's HTTP API, the real http function,
moto, Redis or no cache), with real tokens, real yjs clients over the WebSocket API, and
the change events read from moto's EventBridge through a rule to an SQS queue."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from pycrdt import Doc, Text

from collab import runtime
from devstack.stack import LocalStack
from tests.e2e.conftest import Scene, run_scenario
from tests.support import http_api


@pytest.fixture(scope="module")
def stack(each_shape_stack: LocalStack) -> LocalStack:
    return each_shape_stack


@pytest.fixture
def scene(stack: LocalStack) -> Scene:
    return Scene(stack, f"scene-{uuid.uuid4().hex[:10]}")


def request(
    scene: Scene,
    method: str,
    path: str,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, str, bytes]:
    return http_api.request(scene.stack.http_url, scene.scene_id, method, path, token, body, content_type)


def typed(text: str) -> bytes:
    doc = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


def server_text(scene: Scene) -> str:
    state = runtime.build(scene.settings()).documents.load(scene.scene_id).state
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


def test_each_route_with_real_tokens_and_the_events_they_cause(scene: Scene) -> None:
    events = scene.stack.subscribe_events()
    editor, viewer = scene.grant("ann", "editor"), scene.grant("vic", "viewer")
    octets = "application/octet-stream"
    assert request(scene, "POST", "/updates", editor, typed("INT. HALL - NIGHT"), octets)[0] == 204
    status, kind, body = request(scene, "GET", "?text=t", viewer)
    assert (status, kind, body.decode()) == (200, "text/plain; charset=utf-8", "INT. HALL - NIGHT")
    status, kind, state = request(scene, "GET", "", viewer)
    assert (status, kind) == (200, octets)
    doc = Doc()
    doc.apply_update(state)
    assert str(doc.get("t", type=Text)) == "INT. HALL - NIGHT"

    status, _, body = request(scene, "POST", "/versions", editor, b'{"label": "first"}', "application/json")
    assert status == 201
    version = json.loads(body)
    status, _, body = request(scene, "GET", "/versions", viewer)
    assert status == 200 and [v["versionId"] for v in json.loads(body)["versions"]] == [version["versionId"]]
    status, _, body = request(scene, "GET", f"/versions/{version['versionId']}?text=t", viewer)
    assert (status, body.decode()) == (200, "INT. HALL - NIGHT")

    # Refusals, as JSON with the protocol's codes.
    refusal = http_api.refusal
    assert refusal(request(scene, "POST", "/updates", viewer, typed("x"), octets)) == (403, "forbidden")
    assert refusal(request(scene, "POST", "/versions", viewer)) == (403, "forbidden")
    assert refusal(request(scene, "GET", "", None)) == (401, "unauthorized")
    assert refusal(request(scene, "GET", "", "forged.token.here")) == (401, "unauthorized")
    assert refusal(request(scene, "POST", "/updates", editor, b"\x01\x02\x03", octets)) == (
        400,
        "invalid_update",
    )
    assert refusal(request(scene, "GET", "/versions/1234567890123-abcdef01", viewer)) == (404, "not_found")
    outsider = Scene(scene.stack, scene.scene_id).token("eve")
    assert refusal(request(scene, "GET", "", outsider)) == (403, "forbidden")

    received = events.receive(count=2, timeout=20)
    by_type = {e["detail-type"]: e for e in received}
    assert set(by_type) == {"Scene Changed", "Version Created"}
    changed = by_type["Scene Changed"]["detail"]
    assert changed["sceneId"] == scene.scene_id and changed["bytes"] > 0
    assert by_type["Version Created"]["detail"]["version"]["versionId"] == version["versionId"]
    assert all(e["source"] == "collab" for e in received)


def test_a_restore_while_three_clients_type(scene: Scene) -> None:
    events = scene.stack.subscribe_events({"detail-type": ["Version Restored"]})
    tokens = [scene.grant(f"writer{i}", "editor") for i in range(3)]
    config = {
        "wsUrl": scene.stack.ws_url,
        "httpUrl": scene.stack.http_url,
        "sceneId": scene.scene_id,
        "tokens": tokens,
    }
    result = run_scenario("restore", config)
    assert result["errors"] == []
    assert result["created"]["status"] == 201 and result["restored"]["status"] == 200
    texts = result["texts"]
    assert len(set(texts)) == 1, "replicas diverged"
    final = texts[0]
    assert server_text(scene) == final
    # Everything typed after the restore is there; without it (and without what was typed
    # while the restore was in flight, which may or may not survive it) the scene is the
    # version's content, although the text had moved on.
    missing = [m for m in result["typedAfter"] if m not in final]
    assert not missing, (missing, final, result["told"])
    assert result["beforeRestore"] != result["atVersion"]
    assert re.sub(r"\[[da]\d:\d+\]", "", final) == result["atVersion"]
    assert result["meta"] == [{"title": "Draft 1"}] * 3
    assert all(told[-1] == "restored" for told in result["told"])
    # The version saved just before the restore holds the scene as it was then.
    saved = result["restored"]["answer"]["versionId"]
    status, _, body = request(scene, "GET", f"/versions/{saved}?text=t", tokens[0])
    assert status == 200 and re.sub(r"\[d\d:\d+\]", "", body.decode()) == re.sub(
        r"\[d\d:\d+\]", "", result["beforeRestore"]
    )
    (restored,) = events.receive(count=1, timeout=20)
    assert restored["detail"]["version"]["versionId"] == result["created"]["version"]["versionId"]
    assert restored["detail"]["savedBefore"] == saved
