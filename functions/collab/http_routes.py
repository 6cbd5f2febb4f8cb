"""The HTTP API's routes (routes.json, httpRoutes) on Powertools' HTTP resolver: the scene
as one update or as text, server-side updates, and version history (docs/http-api.md).

Identity and roles are the WebSocket side's: `Authorization: Bearer <JWT>` verified as the
$connect authorizer verifies it (the same modes and keys), the role from the access table.
The function checks the token itself instead of an API Gateway authorizer, so every
refusal is JSON shaped {"code", "message"} with the protocol's error codes, plus
`unauthorized` (no token or a bad one, 401), `not_found` (404) and `conflict` (409).

An update posted here is validated, stored and broadcast exactly as a WebSocket `update`
(collab.actions.update.apply_update): the poster is a member without a connection.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
import uuid
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from collab import runtime
from collab.access import parse_role
from collab.auth.config import AuthConfig
from collab.auth.handshake import SCENE_ID_PATTERN
from collab.auth.tokens import InvalidToken, TokenVerifier
from collab.caller import Caller
from collab.errors import BadRequest, CollabError, Forbidden, TooLarge
from collab.observability import logger
from collab.versions import LABEL_LIMIT, RestoreBusy, VersionNotFound, valid_version_id

OCTETS = "application/octet-stream"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
STATUS = {
    "bad_request": 400,
    "invalid_update": 400,
    "unauthorized": 401,
    "token_expired": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "internal": 500,
}
EDITORS = ("owner", "editor")
# Lambda's response limit is 6 MB and a binary body travels base64-encoded (4/3): a bigger
# answer is stored under exports/ (expired by the stack's lifecycle rule) and the client
# is sent there with a 303 and a presigned URL, valid for EXPORT_URL_SECONDS.
INLINE_ANSWER_LIMIT = 4_000_000
EXPORT_URL_SECONDS = 300

app = APIGatewayHttpResolver()


class Unauthorized(CollabError):
    code = "unauthorized"


class NotFound(CollabError):
    code = "not_found"


class Conflict(CollabError):
    code = "conflict"


@cache
def verifier() -> TokenVerifier:
    # Built on the first request, kept by warm environments (JWKS and secret caches).
    return TokenVerifier(AuthConfig.from_env())


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


# -- the routes ----------------------------------------------------------------------------
@app.get("/scenes/<sceneId>")
def get_scene(sceneId: str) -> Response[Any]:
    rt, caller = _caller(sceneId)
    return _scene_answer(rt, caller.scene_id, rt.documents.load(caller.scene_id).state)


@app.post("/scenes/<sceneId>/updates")
def post_update(sceneId: str) -> Response[Any]:
    # Imported here: the update path is what these routes share with the handlers.
    from collab.actions.update import apply_update

    rt, caller = _caller(sceneId, roles=EDITORS)
    body = _binary_body(rt.settings.max_message_bytes)
    if not body:
        raise BadRequest("the body must be one Yjs update (v1), application/octet-stream")
    apply_update(rt, caller, body)
    return Response(204, JSON, "")


@app.get("/scenes/<sceneId>/versions")
def list_versions(sceneId: str) -> Response[Any]:
    rt, caller = _caller(sceneId)
    params = app.current_event.query_string_parameters or {}
    before = params.get("before")
    if before is not None and not valid_version_id(before):
        raise BadRequest("before must be a version id from an earlier answer")
    page = rt.versions.page(caller.scene_id, before=before)
    answer: dict[str, Any] = {"versions": [v.public() for v in page.versions]}
    if page.before is not None:  # older ones: ask again with ?before=<this>
        answer["before"] = page.before
    return _json(200, answer)


@app.post("/scenes/<sceneId>/versions")
def create_version(sceneId: str) -> Response[Any]:
    from collab.scene_versions import take_version

    rt, caller = _caller(sceneId, roles=EDITORS)
    label = _label()
    version = take_version(rt, caller, label, auto=False)
    return _json(201, version.public())


@app.get("/scenes/<sceneId>/versions/<versionId>")
def get_version(sceneId: str, versionId: str) -> Response[Any]:
    rt, caller = _caller(sceneId)
    try:
        state = rt.versions.read(caller.scene_id, _version_id(versionId))
    except VersionNotFound:
        raise NotFound(f"scene {sceneId} has no version {versionId}") from None
    return _scene_answer(rt, caller.scene_id, state)


@app.post("/scenes/<sceneId>/versions/<versionId>/restore")
def restore(sceneId: str, versionId: str) -> Response[Any]:
    from collab.scene_versions import restore_version

    rt, caller = _caller(sceneId, roles=EDITORS)
    try:
        before = restore_version(rt, caller, _version_id(versionId))
    except VersionNotFound:
        raise NotFound(f"scene {sceneId} has no version {versionId}") from None
    except RestoreBusy:
        raise Conflict("another restore of this scene is still running; try again") from None
    return _json(200, {"versionId": before.version_id, "version": before.public()})


# -- errors --------------------------------------------------------------------------------
@app.exception_handler(CollabError)
def _refused(error: CollabError) -> Response[Any]:
    logger.info("refused", extra={"code": error.code, "reason": error.message})
    return _json(STATUS.get(error.code, 400), {"code": error.code, "message": error.message})


@app.exception_handler(Exception)
def _failed(error: Exception) -> Response[Any]:
    logger.exception("http route failed")
    return _json(500, {"code": "internal", "message": "internal error"})


@app.not_found
def _no_route(_: Exception) -> Response[Any]:
    return _json(404, {"code": "not_found", "message": "no such route"})


# -- helpers -------------------------------------------------------------------------------
def _caller(scene_id: str, roles: tuple[str, ...] = ()) -> tuple[runtime.Runtime, Caller]:
    """The runtime and the request's caller: a member of the scene without a connection."""
    if not SCENE_ID_PATTERN.fullmatch(scene_id):
        raise BadRequest("the scene id is not a plain id ([A-Za-z0-9_.:-], at most 128)")
    token = _bearer()
    try:
        identity = verifier().verify(token)
    except InvalidToken as error:
        message = str(error)
        if "expired" in message.lower():
            raise _Expired("the token has expired; get a fresh one") from None
        raise Unauthorized(f"invalid token: {message}") from None
    if identity.scene_id is not None and identity.scene_id != scene_id:
        raise Unauthorized("the token was issued for another scene")
    rt = runtime.current()
    role = parse_role(rt.access.get_role(scene_id, identity.user_id))
    if role is None:
        raise Forbidden(f"no access to scene {scene_id}")
    if roles and role not in roles:
        raise Forbidden(f"a {role} cannot change the scene")
    logger.append_keys(scene_id=scene_id, user_id=identity.user_id, route=app.current_event.route_key)
    endpoint = rt.settings.management_endpoint or ""
    caller = Caller(
        connection_id="",
        scene_id=scene_id,
        user_id=identity.user_id,
        user_name=identity.user_name,
        role=role,
        expires_at=identity.expires_at,
        endpoint=endpoint,
    )
    return rt, caller


class _Expired(CollabError):
    code = "token_expired"


def _bearer() -> str:
    header = app.current_event.headers.get("authorization") or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the token as Authorization: Bearer <JWT>")
    return token.strip()


def _binary_body(limit: int) -> bytes:
    event = app.current_event
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != OCTETS:
        raise BadRequest(f"the body must be {OCTETS}, not {content_type or 'untyped'}")
    raw = event.body or ""
    if len(raw) > limit * 4 // 3 + 4:
        raise TooLarge(f"the update is over the limit of {limit} bytes")
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is not valid base64") from None
    else:
        body = raw.encode("utf-8")  # API Gateway encodes a binary type; this was sent as text
    if len(body) > limit:
        raise TooLarge(f"the update is over the limit of {limit} bytes")
    return body


def _label() -> str:
    raw = app.current_event.body
    if app.current_event.is_base64_encoded and raw:
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest("the body is not JSON") from None
    if not raw or not raw.strip():
        return ""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise BadRequest('the body must be JSON: {"label": "..."}') from None
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"label": "..."}')
    label = body.get("label", "")
    if not isinstance(label, str):
        raise BadRequest("label must be a string")
    if len(label) > LABEL_LIMIT:
        raise BadRequest(f"label is over {LABEL_LIMIT} characters")
    # One line of text: no control characters (an escape sequence would reach the terminal
    # of whoever lists versions) and no lone surrogates (not UTF-8: DynamoDB refuses them).
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in label):
        raise BadRequest("label must be one line of text, without control characters")
    return label


def _version_id(value: str) -> str:
    if not valid_version_id(value):
        raise NotFound(f"no version {value[:40]!r}")
    return value


def _scene_answer(rt: runtime.Runtime, scene_id: str, state: bytes) -> Response[Any]:
    """The scene as one update, or with ?text=NAME the content of that Y.Text root."""
    params = app.current_event.query_string_parameters or {}
    name = params.get("text")
    if name is None:
        return _answer(rt, scene_id, state, OCTETS)
    from collab.scene_content import text_of

    text = text_of(state, name)
    if text is None:
        raise NotFound(f"the scene has no text named {name[:100]!r}")
    return _answer(rt, scene_id, text.encode("utf-8"), TEXT)


def _answer(rt: runtime.Runtime, scene_id: str, body: bytes, content_type: str) -> Response[Any]:
    if len(body) <= INLINE_ANSWER_LIMIT:
        return Response(200, content_type, body)
    key = f"exports/{scene_id}/{uuid.uuid4().hex}"
    url = rt.blobs.share(key, body, content_type, EXPORT_URL_SECONDS)
    logger.info("answer over the inline limit sent by presigned URL", extra={"bytes": len(body)})
    return Response(303, JSON, json.dumps({"location": url}), headers={"Location": url})


def _json(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status, JSON, json.dumps(body, separators=(",", ":")))
