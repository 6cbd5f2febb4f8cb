"""What the HTTP API tests share: a request to a running stack's HTTP API, the refusal
shape every error has, and drafts written by many Yjs clients."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pycrdt import Doc, Text


def request(
    http_url: str,
    scene_id: str,
    method: str,
    path: str,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    """(status, content type, body) of `method` on /scenes/<scene_id><path>."""
    sent = {**(headers or {})}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if content_type:
        sent["content-type"] = content_type
    call = urllib.request.Request(
        f"{http_url}/scenes/{scene_id}{path}", data=body, method=method, headers=sent
    )
    try:
        with urllib.request.urlopen(call, timeout=60) as answer:
            return answer.status, answer.headers.get("content-type", ""), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("content-type", ""), refused.read()


def refusal(answer: tuple[int, str, bytes]) -> tuple[int, str]:
    """(status, code) of a refusal, checking its shape: JSON {code, message}."""
    status, kind, body = answer
    assert kind == "application/json", (status, kind, body[:200])
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message"} and parsed["message"], parsed
    return status, parsed["code"]


def many_authors(count: int, first_client: int = 10_000) -> tuple[bytes, str]:
    """A draft typed into Y.Text "t" by `count` Yjs clients in turn (every page load is a
    new client id: a scene edited over weeks has dozens), as one update, as `collabctl
    export --out` writes it; and its text."""
    doc: Doc = Doc()
    for n in range(count):
        author: Doc = Doc(client_id=first_client + n)
        author.apply_update(doc.get_update())
        text = author.get("t", type=Text)
        text.insert(len(text), f"<line {n}>")
        doc.apply_update(author.get_update(doc.get_state()))
    return doc.get_update(), str(doc.get("t", type=Text))
