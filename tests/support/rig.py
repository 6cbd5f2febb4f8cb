"""The handlers' core on moto and each stage shape (real Redis standalone or cluster, or
no cache at all), with the Management API replaced by an in-memory recorder: what was
posted to whom, which connections are gone (410), closes."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text

from collab import protocol, runtime
from collab.awareness import AwarenessEntry, encode_update
from collab.caller import Caller
from collab.settings import CACHE_KIND, REDIS_CLUSTER, REDIS_URL, Settings
from tests.support.pause import PausePoints


class Recorder:
    """Stands in for the Management API: keeps every message per connection; posts to a
    connection in `gone` fail as API Gateway's 410 does."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.closed: list[str] = []
        self.posts = 0
        self.lock = threading.Lock()

    def send(self, connection_id: str, text: str) -> bool:
        with self.lock:
            self.posts += 1
            if connection_id in self.gone:
                return False
            self.sent[connection_id].append(json.loads(text))
        return True

    def send_all(self, connection_ids: list[str], text: str) -> list[str]:
        return [cid for cid in connection_ids if not self.send(cid, text)]

    def close(self, connection_id: str) -> None:
        with self.lock:
            self.closed.append(connection_id)


@dataclass(frozen=True)
class Shape:
    """A stage shape the handlers run on (tests/conftest.py `shape`): a Redis, standalone
    or cluster, at `redis_url`, or no cache at all (`redis_url` empty: infra cacheKind
    none, CACHE_KIND=none)."""

    name: str
    redis_url: str = ""
    cluster: bool = False

    @property
    def has_cache(self) -> bool:
        return bool(self.redis_url)

    def env(self) -> dict[str, str]:
        """The settings that select this shape, as the CDK app and devstack set them."""
        if not self.has_cache:
            return {CACHE_KIND: "none"}
        return {REDIS_URL: self.redis_url, REDIS_CLUSTER: "true" if self.cluster else "false"}


def build_rig(
    shape: Shape, aws_tables: dict[str, str], **env: str
) -> tuple[runtime.Runtime, Recorder, PausePoints]:
    settings = {**aws_tables, **shape.env(), **env}
    pause = PausePoints()
    rt = runtime.build(Settings.from_env(settings), pause=pause)
    recorder = Recorder()
    rt.outbox_factory = lambda endpoint: recorder  # type: ignore[assignment,return-value]
    return rt, recorder, pause


def caller(
    scene: str, connection: str, user: str, role: str = "editor", expires_at: int = 4_000_000_000
) -> Caller:
    return Caller(connection, scene, user, user.title(), role, expires_at, "http://local")


def sync_frame(state_vector: bytes = b"\x00") -> str:
    return json.dumps({"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(state_vector))})


def update_frame(update: bytes) -> str:
    return json.dumps({"action": "update", "data": protocol.encode_base64(protocol.update_message(update))})


def text_seen_by(messages: list[dict[str, Any]]) -> str:
    doc = Doc()
    for message in messages:
        if message["type"] in ("sync", "update"):
            decoded = protocol.decode_sync_message(protocol.decode_base64(message["data"]))
            if decoded.kind != protocol.SYNC_STEP1:
                doc.apply_update(decoded.payload)
    return str(doc.get("t", type=Text))


def an_update(text: str, doc: Doc | None = None) -> bytes:
    """An insert at the end of Y.Text "t" of `doc` (a new doc by default), as an update."""
    doc = doc if doc is not None else Doc()
    before = doc.get_state()
    text_type = doc.get("t", type=Text)
    text_type.insert(len(text_type), text)
    return doc.get_update(before)


def typed(text: str, client_id: int) -> bytes:
    """`text` typed into Y.Text "t" of a new doc with that Yjs client id, as an update."""
    doc = Doc(client_id=client_id)
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


def awareness_frame(*entries: tuple[int, int, Any]) -> str:
    """An `awareness` frame of (client id, clock, state) entries; state None removes."""
    update = encode_update(AwarenessEntry(c, k, json.dumps(state)) for c, k, state in entries)
    return json.dumps(
        {"action": "awareness", "data": protocol.encode_base64(protocol.awareness_message(update))}
    )
