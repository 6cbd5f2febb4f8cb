"""The HTTP API's routes (collab.http_routes) on real storage and every stage shape, with
real HS256 tokens and API Gateway HTTP API v2 events (payload format 2.0) built as API
Gateway builds them; the fan-out goes to the rig's recorder. The same routes through the
emulator's HTTP API and real yjs clients: tests/e2e/test_http_api_routes.py."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pycrdt import Doc, Text

from collab import http_routes, protocol, runtime, session
from collabctl.devtoken import mint_dev_token
from tests.support.rig import (
    Recorder,
    Shape,
    an_update,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    update_frame,
)

SECRET = "s" * 40


@pytest.fixture
def rig(
    shape: Shape, aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[runtime.Runtime, Recorder]]:
    monkeypatch.setenv("AUTH_MODE", "hs256")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    for name in ("JWT_SECRET_PARAMETER", "JWT_SECRET_ARN", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    http_routes.verifier.cache_clear()
    rt, recorder, _ = build_rig(shape, aws_tables, MANAGEMENT_ENDPOINT="http://local")
    monkeypatch.setattr(runtime, "_runtime", rt)
    yield rt, recorder
    http_routes.verifier.cache_clear()


def event(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | str | None = None,
    content_type: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event as API Gateway sends it: binary bodies base64-encoded."""
    all_headers = {"host": "api.local", **(headers or {})}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    if content_type is not None:
        all_headers["content-type"] = content_type
    encoded = isinstance(body, bytes)
    template = path
    parts = path.strip("/").split("/")
    params: dict[str, str] = {}
    if len(parts) >= 2:
        params["sceneId"] = parts[1]
        template = "/scenes/{sceneId}" + "".join("/" + p for p in parts[2:3])
    if len(parts) >= 4:
        params["versionId"] = parts[3]
        template += "/{versionId}" + "".join("/" + p for p in parts[4:])
    return {
        "version": "2.0",
        "routeKey": f"{method} {template}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": all_headers,
        "queryStringParameters": query,
        "pathParameters": params,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "api.local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "t",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {template}",
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode() if encoded else body,
        "isBase64Encoded": encoded,
    }


def call(ev: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    answer = http_routes.resolve(ev, None)
    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    return answer["statusCode"], headers, body


def token(user: str, scene: str | None = None, ttl: int = 600, now: int | None = None) -> str:
    return mint_dev_token(SECRET, user, scene, name=user.title(), ttl=ttl, now=now)


def edit(text: str, doc: Doc | None = None) -> bytes:
    return an_update(text, doc)


def scene_text(state: bytes) -> str:
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


def room(rt: runtime.Runtime, **roles: str) -> str:
    scene = f"scene-{uuid.uuid4().hex[:8]}"
    for user, role in roles.items():
        rt.access.grant(scene, user, role)
    return scene


def error_of(status_and_body: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, body = status_and_body
    assert headers["content-type"] == "application/json"
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message"} and parsed["message"]
    return status, parsed["code"]


def test_an_update_posted_is_stored_and_reaches_connected_members(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    rt, recorder = rig
    scene = room(rt, ann="editor", bob="viewer")
    session.handle_message(rt, caller(scene, "bob=", "bob", role="viewer"), sync_frame())
    before = len(recorder.sent["bob="])
    status, _, body = call(
        event(
            "POST",
            f"/scenes/{scene}/updates",
            token=token("ann"),
            body=edit("INT. KITCHEN"),
            content_type="application/octet-stream",
        )
    )
    assert (status, body) == (204, b"")
    assert text_seen_by(recorder.sent["bob="][before:]) == "INT. KITCHEN"
    status, headers, state = call(event("GET", f"/scenes/{scene}", token=token("bob")))
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert scene_text(state) == "INT. KITCHEN"
    status, headers, text = call(event("GET", f"/scenes/{scene}", token=token("bob"), query={"text": "t"}))
    assert (status, headers["content-type"], text.decode()) == (
        200,
        "text/plain; charset=utf-8",
        "INT. KITCHEN",
    )


def test_roles_and_tokens(rig: tuple[runtime.Runtime, Recorder]) -> None:
    rt, _ = rig
    scene = room(rt, ann="owner", vic="viewer")
    update = edit("x")

    def post(tok: str | None) -> dict[str, Any]:
        return event(
            "POST",
            f"/scenes/{scene}/updates",
            token=tok,
            body=update,
            content_type="application/octet-stream",
        )

    assert error_of(call(post(token("vic")))) == (403, "forbidden")
    assert error_of(call(post(token("eve")))) == (403, "forbidden")  # a valid token, no access
    assert error_of(call(post(None))) == (401, "unauthorized")
    assert error_of(call(post("not-a-jwt"))) == (401, "unauthorized")
    forged = mint_dev_token("f" * 40, "ann", None, ttl=600)
    assert error_of(call(post(forged))) == (401, "unauthorized")
    assert error_of(call(post(token("ann", scene="another-scene")))) == (401, "unauthorized")
    expired = token("ann", ttl=60, now=int(time.time()) - 3600)
    assert error_of(call(post(expired))) == (401, "token_expired")
    wrong_scheme = event("GET", f"/scenes/{scene}", headers={"authorization": "Basic YW5uOng="})
    assert error_of(call(wrong_scheme)) == (401, "unauthorized")
    # Nothing refused was stored.
    status, _, state = call(event("GET", f"/scenes/{scene}", token=token("vic")))
    assert status == 200 and scene_text(state) == ""


def test_bad_bodies_get_clear_errors_and_the_scene_keeps_working(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    rt, _ = rig
    scene = room(rt, ann="editor")
    path = f"/scenes/{scene}/updates"
    ann = token("ann")
    assert error_of(
        call(event("POST", path, token=ann, body=b"\xff\x00garbage", content_type="application/octet-stream"))
    ) == (400, "invalid_update")
    assert error_of(
        call(event("POST", path, token=ann, body=b"", content_type="application/octet-stream"))
    ) == (400, "bad_request")
    assert error_of(call(event("POST", path, token=ann, body="hello", content_type="text/plain"))) == (
        400,
        "bad_request",
    )
    not_base64 = event("POST", path, token=ann, content_type="application/octet-stream")
    not_base64.update(body="%%%not base64%%%", isBase64Encoded=True)
    assert error_of(call(not_base64)) == (400, "bad_request")
    huge = b"\x00" * (rt.settings.max_message_bytes + 1)
    assert error_of(
        call(event("POST", path, token=ann, body=huge, content_type="application/octet-stream"))
    ) == (413, "too_large")
    assert error_of(call(event("GET", "/scenes/bad{scene}", token=ann))) == (400, "bad_request")
    assert error_of(call(event("GET", f"/scenes/{scene}", token=ann, query={"text": "nope"}))) == (
        404,
        "not_found",
    )
    status, _, _ = call(
        event("POST", path, token=ann, body=edit("still works"), content_type="application/octet-stream")
    )
    assert status == 204
    _, _, text = call(event("GET", f"/scenes/{scene}", token=ann, query={"text": "t"}))
    assert text.decode() == "still works"


def test_versions_are_listed_newest_first_and_read_back(rig: tuple[runtime.Runtime, Recorder]) -> None:
    rt, recorder = rig
    scene = room(rt, ann="editor", vic="viewer")
    session.handle_message(rt, caller(scene, "vic=", "vic", role="viewer"), sync_frame())
    doc = Doc()
    ann = token("ann")
    octets = "application/octet-stream"
    assert (
        call(
            event(
                "POST",
                f"/scenes/{scene}/updates",
                token=ann,
                body=edit("DRAFT ONE", doc),
                content_type=octets,
            )
        )[0]
        == 204
    )
    status, _, body = call(
        event(
            "POST",
            f"/scenes/{scene}/versions",
            token=ann,
            body='{"label": "table read"}',
            content_type="application/json",
        )
    )
    assert status == 201
    first = json.loads(body)
    assert (
        first["label"] == "table read"
        and first["createdBy"] == "ann"
        and first["auto"] is False
        and first["bytes"] > 0
    )
    assert (
        call(
            event(
                "POST", f"/scenes/{scene}/updates", token=ann, body=edit(" AND TWO", doc), content_type=octets
            )
        )[0]
        == 204
    )
    status, _, body = call(event("POST", f"/scenes/{scene}/versions", token=ann))  # no body: no label
    assert status == 201 and json.loads(body)["label"] == ""
    second = json.loads(body)

    status, _, body = call(event("GET", f"/scenes/{scene}/versions", token=token("vic")))
    assert status == 200
    listed = json.loads(body)["versions"]
    assert [v["versionId"] for v in listed] == [second["versionId"], first["versionId"]]
    assert set(listed[0]) == {"versionId", "label", "createdAt", "createdBy", "bytes", "auto"}

    status, headers, state = call(
        event("GET", f"/scenes/{scene}/versions/{first['versionId']}", token=token("vic"))
    )
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert scene_text(state) == "DRAFT ONE"
    status, _, text = call(
        event(
            "GET",
            f"/scenes/{scene}/versions/{second['versionId']}",
            token=token("vic"),
            query={"text": "t"},
        )
    )
    assert text.decode() == "DRAFT ONE AND TWO"

    # Members were told of each version as it was taken.
    told = [m for m in recorder.sent["vic="] if m["type"] == "version"]
    assert [(m["event"], m["version"]["versionId"]) for m in told] == [
        ("created", first["versionId"]),
        ("created", second["versionId"]),
    ]

    # A viewer cannot take one; unknown and malformed ids are 404; bad labels are 400.
    assert error_of(call(event("POST", f"/scenes/{scene}/versions", token=token("vic")))) == (
        403,
        "forbidden",
    )
    assert error_of(call(event("GET", f"/scenes/{scene}/versions/1234567890123-deadbeef", token=ann))) == (
        404,
        "not_found",
    )
    assert error_of(call(event("GET", f"/scenes/{scene}/versions/..%2F..", token=ann))) == (404, "not_found")
    for bad in ("[1]", "{", '{"label": 7}', json.dumps({"label": "x" * 201})):
        assert error_of(
            call(
                event(
                    "POST", f"/scenes/{scene}/versions", token=ann, body=bad, content_type="application/json"
                )
            )
        ) == (400, "bad_request")
    status, _, body = call(event("GET", f"/scenes/{scene}/versions", token=ann))
    assert len(json.loads(body)["versions"]) == 2


def test_a_version_over_the_item_limit_lives_in_s3(rig: tuple[runtime.Runtime, Recorder]) -> None:
    rt, _ = rig
    scene = room(rt, ann="editor")
    paste = "".join(uuid.uuid4().hex for _ in range(16_000))  # 512 kB of text that does not compress
    assert (
        call(
            event(
                "POST",
                f"/scenes/{scene}/updates",
                token=token("ann"),
                body=edit(paste),
                content_type="application/octet-stream",
            )
        )[0]
        == 204
    )
    _, _, body = call(event("POST", f"/scenes/{scene}/versions", token=token("ann")))
    version = json.loads(body)
    assert version["bytes"] > 400_000
    _, _, text = call(
        event(
            "GET",
            f"/scenes/{scene}/versions/{version['versionId']}",
            token=token("ann"),
            query={"text": "t"},
        )
    )
    assert text.decode() == paste


def test_unknown_routes_are_json_404s(rig: tuple[runtime.Runtime, Recorder]) -> None:
    ev = event("GET", "/nowhere", token=token("ann"))
    ev["routeKey"] = "$default"
    assert error_of(call(ev)) == (404, "not_found")


def test_an_update_message_to_a_scene_with_a_member_is_the_protocol_frame(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    rt, recorder = rig
    scene = room(rt, ann="editor", bob="editor")
    session.handle_message(rt, caller(scene, "bob=", "bob"), sync_frame())
    before = len(recorder.sent["bob="])
    call(
        event(
            "POST",
            f"/scenes/{scene}/updates",
            token=token("ann"),
            body=edit("A"),
            content_type="application/octet-stream",
        )
    )
    (frame,) = recorder.sent["bob="][before:]
    assert frame["type"] == "update"
    decoded = protocol.decode_sync_message(protocol.decode_base64(frame["data"]))
    assert decoded.kind == protocol.SYNC_UPDATE


def test_updates_yjs_cannot_read_are_refused_and_what_is_stored_loads_in_yjs(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    from tests.core.test_yjs_format import F1_UPDATE, ROOT_PARENT, one_struct, var_string
    from tests.support.yjs_node import apply_in_yjs

    rt, _ = rig
    scene = room(rt, ann="editor")
    octets = "application/octet-stream"
    ann = token("ann")
    unreadable = [
        F1_UPDATE,  # type ref 9: pycrdt reads it, Yjs does not
        one_struct(5, ROOT_PARENT + var_string("NaN")),
        one_struct(0, b"\x05") + b"\x00",  # trailing bytes
        b"\x80\x80\x80\x80\x04\x00\x00\x00",  # 2**30 client groups declared in 8 bytes
    ]
    for update in unreadable:
        answer = call(event("POST", f"/scenes/{scene}/updates", token=ann, body=update, content_type=octets))
        assert error_of(answer) == (400, "invalid_update"), update
    assert (
        call(event("POST", f"/scenes/{scene}/updates", token=ann, body=edit("OK"), content_type=octets))[0]
        == 204
    )
    _, _, state = call(event("GET", f"/scenes/{scene}", token=ann))
    [result] = apply_in_yjs([(b"", state)])
    assert result["fresh"] is None, result
    assert scene_text(state) == "OK"


def test_the_last_participant_leaving_saves_a_version_if_the_scene_changed(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    rt, _ = rig
    scene = room(rt, ann="editor", bob="editor")
    ann, bob = caller(scene, "ann=", "ann"), caller(scene, "bob=", "bob")
    for member in (ann, bob):
        session.handle_message(rt, member, sync_frame())
    session.handle_message(rt, ann, update_frame(edit("EXT. ROOF")))
    session.on_disconnect(rt, ann)
    assert rt.versions.list(scene) == []  # bob is still there
    session.on_disconnect(rt, bob)
    (saved,) = rt.versions.list(scene)
    assert saved.auto and saved.label == "when the last participant left" and saved.created_by == "bob"
    assert scene_text(rt.versions.read(scene, saved.version_id)) == "EXT. ROOF"
    # Back and gone again without a change: nothing new.
    session.handle_message(rt, ann, sync_frame())
    session.on_disconnect(rt, ann)
    assert len(rt.versions.list(scene)) == 1
    # An empty scene is not saved.
    empty = room(rt, ann="editor")
    quiet = caller(empty, "ann2=", "ann")
    session.handle_message(rt, quiet, sync_frame())
    session.on_disconnect(rt, quiet)
    assert rt.versions.list(empty) == []


def test_a_scene_over_lambdas_response_limit_is_sent_by_a_presigned_url(
    rig: tuple[runtime.Runtime, Recorder],
) -> None:
    import urllib.request

    rt, _ = rig
    scene = room(rt, ann="viewer")
    paste = "".join(uuid.uuid4().hex for _ in range(150_000))  # 4.8 MB that does not compress
    rt.documents.append(scene, edit(paste))
    for query, check in (
        (None, lambda body: scene_text(body) == paste),
        ({"text": "t"}, lambda body: body.decode() == paste),
    ):
        status, headers, body = call(event("GET", f"/scenes/{scene}", token=token("ann"), query=query))
        assert status == 303 and json.loads(body)["location"] == headers["location"]
        with urllib.request.urlopen(headers["location"], timeout=60) as fetched:
            assert check(fetched.read())
