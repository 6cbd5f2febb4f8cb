"""Attacks on the HTTP API (issue 12) through the local stack: the emulator's HTTP API and
WebSocket API, the real handlers in worker processes, moto, Redis; real tokens, real
sockets, and WebSocket clients holding a Y.Doc (tests/e2e/wsclient.py).

Each test was written by attacking the HTTP API; those that failed at first are fixed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from pycrdt import Doc, Text

from tests.e2e.conftest import Scene
from tests.e2e.wsclient import Opener, of_type, server_text
from tests.support import http_api

OCTETS = "application/octet-stream"


@pytest.fixture
def open_client(scene: Scene) -> Iterator[Opener]:
    opener = Opener(scene)
    yield opener
    opener.close_all()


def request(
    scene: Scene,
    method: str,
    path: str,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    return http_api.request(
        scene.stack.http_url, scene.scene_id, method, path, token, body, content_type, headers
    )


def test_an_imported_draft_of_many_authors_reaches_connected_and_new_clients(
    scene: Scene, open_client: Opener
) -> None:
    token = scene.grant("ann", "editor")
    watcher = open_client("bob", "viewer")
    watcher.synced()
    draft, expected = http_api.many_authors(70)
    assert request(scene, "POST", "/updates", token, draft, OCTETS)[0] == 204
    watcher.wait_text(expected, timeout=10)
    assert server_text(scene) == expected


def test_http_edits_reach_members_durably_before_the_version_message_and_late_joiners(
    scene: Scene, open_client: Opener
) -> None:
    token = scene.grant("ann", "editor")
    member = open_client("bob", "editor")
    member.synced()
    mark = member.mark()
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    for piece in ("EXT. ROOF", " - DAWN"):
        before = doc.get_state()
        text.insert(len(text), piece)
        assert request(scene, "POST", "/updates", token, doc.get_update(before), OCTETS)[0] == 204
    member.wait_text("EXT. ROOF - DAWN")
    status, _, body = request(scene, "POST", "/versions", token, b'{"label": "dawn"}', "application/json")
    assert status == 201
    version = json.loads(body)
    told = member.wait_for(of_type("version"), after=mark)
    assert told["event"] == "created" and told["version"] == version
    updates = [i for i, m in enumerate(member.messages[mark:]) if m["type"] == "update"]
    versions = [i for i, m in enumerate(member.messages[mark:]) if m["type"] == "version"]
    assert max(updates) < min(versions)  # the content first, then what was saved of it
    # A client that joins later loads all of it from the server.
    late = open_client("cat", "viewer")
    late.synced()
    assert late.current_text() == "EXT. ROOF - DAWN"
    status, _, body = request(scene, "GET", f"/versions/{version['versionId']}?text=t", scene.token("cat"))
    assert (status, body) == (200, b"EXT. ROOF - DAWN")


def test_odd_headers_and_bodies_through_the_gateway_are_answered_as_json(scene: Scene) -> None:
    token = scene.grant("ann", "editor")
    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, "OK")
    update = doc.get_update()
    # A binary update sent as text: the gateway passes it as a string, the route refuses it.
    assert http_api.refusal(request(scene, "POST", "/updates", token, update, "text/plain")) == (
        400,
        "bad_request",
    )
    # No type at all: the gateway base64-encodes it; still not application/octet-stream.
    assert http_api.refusal(request(scene, "POST", "/updates", token, update)) == (400, "bad_request")
    assert http_api.refusal(request(scene, "POST", "/updates", token, b"", OCTETS)) == (400, "bad_request")
    assert http_api.refusal(request(scene, "POST", "/updates", "Bearer " + token, update, OCTETS)) == (
        401,
        "unauthorized",
    )
    assert http_api.refusal(request(scene, "POST", "/updates", "x" * 6000, update, OCTETS)) == (
        401,
        "unauthorized",
    )
    # A scene id the path cannot hold is never a key: 400 or the gateway's 404, nothing stored.
    for odd in ("%2E%2E", "a%2Fb", "a%00b", "%F0%9F%8E%AC"):
        url = f"{scene.stack.http_url}/scenes/{odd}/updates"
        call = urllib.request.Request(
            url,
            data=update,
            method="POST",
            headers={"authorization": f"Bearer {token}", "content-type": OCTETS},
        )
        try:
            urllib.request.urlopen(call, timeout=30)
            status = 200
        except urllib.error.HTTPError as refused:
            status = refused.code
        assert status in (400, 401, 403, 404), odd
    # The charset parameter does not matter; the scene works.
    assert (
        request(scene, "POST", "/updates", token, update, "Application/Octet-Stream; charset=binary")[0]
        == 204
    )
    assert server_text(scene) == "OK"


def test_versions_of_another_scene_stay_out_of_reach_through_the_gateway(scene: Scene) -> None:
    other = Scene(scene.stack, f"scene-{uuid.uuid4().hex[:10]}")
    boss = other.grant("boss", "owner")
    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, "THE TWIST")
    assert request(other, "POST", "/updates", boss, doc.get_update(), OCTETS)[0] == 204
    _, _, body = request(other, "POST", "/versions", boss)
    stolen = json.loads(body)["versionId"]
    eve = scene.grant("eve", "editor")
    assert http_api.refusal(request(scene, "GET", f"/versions/{stolen}?text=t", eve)) == (404, "not_found")
    # Eve's token is for her scene; with it, the other scene's path refuses before any read.
    assert http_api.refusal(request(other, "GET", f"/versions/{stolen}", eve)) == (401, "unauthorized")


def test_a_valid_nine_kilobyte_token_works_as_it_would_on_aws(scene: Scene) -> None:
    import time

    import jwt

    scene.grant("ann", "viewer")
    now = int(time.time())
    claims = {"sub": "ann", "iat": now, "exp": now + 600, "sceneId": scene.scene_id}
    # An identity provider's token with many group claims grows to this size.
    claims["groups"] = [f"group-{n:04d}" for n in range(500)]
    token = jwt.encode(claims, scene.stack.jwt_secret, algorithm="HS256")
    assert 8_500 < len("Bearer " + token) < 9_800
    status, kind, _ = request(scene, "GET", "", token)
    assert (status, kind) == (200, OCTETS)


def test_a_double_clicked_restore_gives_the_version_once(scene: Scene) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = scene.grant("ann", "editor")
    with ThreadPoolExecutor(2) as pool:  # two warm environments, as a busy stage has
        list(pool.map(lambda _: request(scene, "GET", "", token), range(2)))
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    text.insert(0, "VERSION A")
    assert request(scene, "POST", "/updates", token, doc.get_update(), OCTETS)[0] == 204
    _, _, body = request(scene, "POST", "/versions", token, b'{"label": "A"}', "application/json")
    version = json.loads(body)["versionId"]
    results = []
    for draft in range(3):
        _, _, state = request(scene, "GET", "", token)
        doc.apply_update(state)
        before = doc.get_state()
        del text[0 : len(text)]
        text.insert(0, f"DRAFT {draft}")
        assert request(scene, "POST", "/updates", token, doc.get_update(before), OCTETS)[0] == 204
        with ThreadPoolExecutor(2) as pool:  # the button pressed twice
            answers = list(
                pool.map(lambda _: request(scene, "POST", f"/versions/{version}/restore", token), range(2))
            )
        assert [status for status, _, _ in answers] == [200, 200]
        results.append(server_text(scene))
    assert results == ["VERSION A"] * 3
