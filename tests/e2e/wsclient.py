"""A small synchronous WebSocket client for the end-to-end tests: it speaks the wire
protocol (docs/design.md §2) to the local stack, keeps every server message it receives (server
`chunk` frames reassembled), waits for a message matching a predicate with a timeout, and
holds a pycrdt Doc (one Y.Text "t") that follows the updates it sends and receives.

Messages are never consumed: `wait_for` searches from a position (`mark()`), so a test can
count what arrived and prove that something did not."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from collab import protocol, runtime
from collab.awareness import AwarenessEntry, encode_update

if TYPE_CHECKING:
    from tests.e2e.conftest import Scene

Message = dict[str, Any]
Predicate = Callable[[Message], bool]

# A client splits any message whose JSON text is over this into `chunk` frames (docs/design.md §2).
CLIENT_FRAME_LIMIT = 30_000
TEXT = "t"


class Closed(Exception):
    """The connection is closed: nothing more can arrive."""


# --------------------------------------------------------------------- message builders


def sync_step1_data(state_vector: bytes) -> str:
    return protocol.encode_base64(protocol.sync_step1(state_vector))


def sync_step2_data(update: bytes) -> str:
    return protocol.encode_base64(protocol.sync_step2(update))


def update_data(update: bytes) -> str:
    return protocol.encode_base64(protocol.update_message(update))


def awareness_data(client_id: int, clock: int, state: Any) -> str:
    """A y-protocols awareness message with one entry; `state` None removes the client."""
    entry = AwarenessEntry(client_id, clock, json.dumps(state))
    return protocol.encode_base64(protocol.awareness_message(encode_update([entry])))


def decode_sync(message: Message) -> protocol.SyncMessage:
    """The y-protocols sync message a server `sync` or `update` message carries."""
    return protocol.decode_sync_message(protocol.decode_base64(message["data"]))


def chunk_frames(text: str, chunk_id: str, limit: int = CLIENT_FRAME_LIMIT) -> list[dict[str, Any]]:
    """`text` as `chunk` frames whose serialized JSON is at most `limit` bytes each."""
    envelope = len(
        json.dumps({"action": "chunk", "id": chunk_id, "seq": 99_999, "total": 99_999, "data": ""})
    )
    budget = limit - envelope
    pieces: list[str] = []
    pos = 0
    while pos < len(text):
        count = min(budget, len(text) - pos)
        while len(json.dumps(text[pos : pos + count])) - 2 > budget:
            count -= max(1, count // 100)
        pieces.append(text[pos : pos + count])
        pos += count
    frames = [
        {"action": "chunk", "id": chunk_id, "seq": seq, "total": len(pieces), "data": piece}
        for seq, piece in enumerate(pieces)
    ]
    assert all(len(json.dumps(frame)) <= limit for frame in frames)
    return frames


# --------------------------------------------------------------------- predicates


def of_type(kind: str, **fields: Any) -> Predicate:
    """Messages of this `type` whose listed fields have these values."""
    return lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items())


def error(code: str | None = None, **fields: Any) -> Predicate:
    return lambda m: (
        m.get("type") == "error"
        and (code is None or m.get("code") == code)
        and all(m.get(k) == v for k, v in fields.items())
    )


def sync_kind(kind: int) -> Predicate:
    """Server `sync` messages carrying this y-protocols sync type."""
    return lambda m: m.get("type") == "sync" and decode_sync(m).kind == kind


def participant(kind: str, connection_id: str) -> Predicate:
    """`participant-joined` / `participant-left` about this connection."""
    return lambda m: m.get("type") == kind and m.get("participant", {}).get("connectionId") == connection_id


# --------------------------------------------------------------------- the client


class WsClient:
    def __init__(self, ws: ClientConnection, name: str = "") -> None:
        self.ws = ws
        self.name = name
        self.messages: list[Message] = []
        self.raw: list[str | bytes] = []
        self.doc: Doc = Doc()
        self.text: Text = self.doc.get(TEXT, type=Text)
        self.connection_id: str | None = None
        self._applied = 0
        self._chunks: dict[str, dict[int, str]] = {}
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str,
        name: str = "",
        subprotocols: Sequence[str] | None = None,
        timeout: float = 15.0,
    ) -> WsClient:
        # No compression (API Gateway declines it) and no proxy from the environment.
        ws = connect(
            url,
            subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
            compression=None,
            proxy=None,
            open_timeout=timeout,
            max_size=None,
            max_queue=None,
            close_timeout=2,
            legacy=True,  # a plain connection object, closed by the test
        )
        return cls(ws, name)

    def __enter__(self) -> WsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()
        self._closed = True

    def __repr__(self) -> str:
        return f"WsClient({self.name or self.connection_id})"

    # -- sending --------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def send_json(self, payload: Any) -> None:
        self.ws.send(json.dumps(payload))

    def send(self, action: str, **fields: Any) -> None:
        """A protocol frame; chunked when its JSON text is over the client frame limit."""
        text = json.dumps({"action": action, **fields})
        if len(text) <= CLIENT_FRAME_LIMIT:
            self.ws.send(text)
            return
        for frame in chunk_frames(text, f"{action}-{time.monotonic_ns()}"):
            self.send_json(frame)

    def send_binary(self, data: bytes) -> None:
        self.ws.send(data)

    def sync(self) -> int:
        """Send `sync` with the doc's state vector; the position its replies follow."""
        mark = self.mark()
        self.send("sync", data=sync_step1_data(self.doc.get_state()))
        return mark

    def synced(self, timeout: float = 10.0) -> Message:
        """Sync and wait for the reply's `connected` and SyncStep2; the `connected`."""
        mark = self.sync()
        connected = self.wait_for(of_type("connected"), after=mark, timeout=timeout)
        self.wait_for(sync_kind(protocol.SYNC_STEP2), after=mark, timeout=timeout)
        self.connection_id = connected["connectionId"]
        return connected

    def change(self, insert: str, index: int | None = None) -> bytes:
        """Insert into the doc's text without sending; the update."""
        self.current_text()  # apply what arrived first, as a real provider would have
        before = self.doc.get_state()
        self.text.insert(len(self.text) if index is None else index, insert)
        return self.doc.get_update(before)

    def edit(self, insert: str, index: int | None = None) -> bytes:
        """Insert into the doc's text and send the change as an Update; the update."""
        update = self.change(insert, index)
        self.send("update", data=update_data(update))
        return update

    def ping(self, timeout: float = 10.0) -> Message:
        mark = self.mark()
        self.send("ping")
        return self.wait_for(of_type("pong"), after=mark, timeout=timeout)

    # -- receiving ------------------------------------------------------------------------
    def mark(self) -> int:
        """The position after everything received so far (pull what is already here)."""
        self._drain(0)
        return len(self.messages)

    def _receive(self, timeout: float) -> bool:
        """Take one frame (reassembling server chunks); False on timeout."""
        if self._closed:
            raise Closed(f"{self!r} is closed")
        try:
            frame = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return False
        except ConnectionClosed:
            self._closed = True
            raise Closed(f"{self!r} is closed") from None
        self.raw.append(frame)
        message = json.loads(frame)
        if isinstance(message, dict) and message.get("type") == "chunk":
            parts = self._chunks.setdefault(message["id"], {})
            parts[message["seq"]] = message["data"]
            if len(parts) < message["total"]:
                return True
            del self._chunks[message["id"]]
            message = json.loads("".join(parts[i] for i in range(message["total"])))
        self.messages.append(message)
        return True

    def _drain(self, timeout: float) -> None:
        try:
            while self._receive(timeout):
                pass
        except Closed:
            pass

    def find(self, predicate: Predicate, after: int = 0) -> list[Message]:
        return [m for m in self.messages[after:] if predicate(m)]

    def wait_for(self, predicate: Predicate, after: int = 0, timeout: float = 10.0) -> Message:
        """The first message at or after position `after` matching `predicate`."""
        return self.wait_count(predicate, 1, after, timeout)[0]

    def wait_count(
        self, predicate: Predicate, count: int, after: int = 0, timeout: float = 10.0
    ) -> list[Message]:
        """Wait until `count` messages at or after `after` match; all the matching ones."""
        deadline = time.monotonic() + timeout
        while len(found := self.find(predicate, after)) < count:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not self._receive(remaining):
                    break
            except Closed:
                break
        assert len(found) >= count, f"{self!r}: {len(found)} of {count} within {timeout}s: {_brief(found)}"
        return found

    def wait_error(self, code: str | None, after: int = 0, timeout: float = 10.0, **fields: Any) -> Message:
        return self.wait_for(error(code, **fields), after=after, timeout=timeout)

    def assert_nothing(self, predicate: Predicate, after: int = 0, within: float = 0.5) -> None:
        """Nothing matching `predicate` arrives at or after `after` within `within` seconds."""
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                if not self._receive(remaining):
                    break
            except Closed:
                break
        self._drain(0)
        unexpected = self.find(predicate, after)
        assert not unexpected, f"{self!r}: unexpected {_brief(unexpected)}"

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Wait until the server closes the connection; its close code."""
        deadline = time.monotonic() + timeout
        while not self._closed:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self!r} still open after {timeout}s; got {_brief(self.messages)}"
            try:
                self._receive(remaining)
            except Closed:
                break
        rcvd = self.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the document ---------------------------------------------------------------------
    def current_text(self) -> str:
        """The doc's text after applying every update and SyncStep2 received so far."""
        self._drain(0)
        for message in self.messages[self._applied :]:
            if message.get("type") in ("sync", "update"):
                sync = decode_sync(message)
                if sync.kind != protocol.SYNC_STEP1:
                    self.doc.apply_update(sync.payload)
        self._applied = len(self.messages)
        return str(self.text)

    def wait_text(self, expected: str, timeout: float = 10.0) -> None:
        """Wait until the doc's text is `expected`."""
        deadline = time.monotonic() + timeout
        while self.current_text() != expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self!r}: text {_short(self.current_text())} != {_short(expected)}")
            try:
                self._receive(min(remaining, 0.5))
            except Closed:
                raise AssertionError(f"{self!r} closed with text {_short(self.current_text())}") from None


class Opener:
    """Opens clients on a scene and closes them all at the end of a test."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.opened: list[WsClient] = []

    def __call__(self, user: str, role: str | None = "editor", token: str | None = None) -> WsClient:
        """A client of `user`, granted `role` first (None: no grant), with `token` if given."""
        if token is None:
            token = self.scene.grant(user, role) if role else self.scene.token(user)
        return self.url(self.scene.url(token), name=user)

    def url(self, url: str, name: str = "", subprotocols: Sequence[str] | None = None) -> WsClient:
        client = WsClient.open(url, name=name, subprotocols=subprotocols)
        self.opened.append(client)
        return client

    def close_all(self) -> None:
        for client in self.opened:
            with contextlib.suppress(Exception):
                client.close()


# --------------------------------------------------------------------- the server's side


def server_text(scene: Scene) -> str:
    """The text the server would serve a new client, read from its own stores."""
    state = runtime.build(scene.settings()).documents.load(scene.scene_id).state
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get(TEXT, type=Text))


def dynamodb() -> Any:
    import boto3  # the `stack` fixture points boto3 at the stack's moto

    return boto3.client("dynamodb")


def log_keys(scene: Scene) -> set[str]:
    """The sort keys of the scene's durable log items."""
    pages = (
        dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=scene.stack.env["DOCUMENTS_TABLE"],
            KeyConditionExpression="sceneId = :s AND begins_with(sk, :p)",
            ExpressionAttributeValues={":s": {"S": scene.scene_id}, ":p": {"S": "log#"}},
            ConsistentRead=True,
        )
    )
    return {item["sk"]["S"] for page in pages for item in page["Items"]}


def assert_scene_usable(open_client: Opener, editor: WsClient, other: WsClient) -> str:
    """After whatever a test did: an editor's real update reaches another client, a fresh
    client syncs the same text, and the server's state holds exactly that text."""
    editor.edit(f" [still working {time.monotonic_ns()}]")
    expected = editor.current_text()
    other.wait_text(expected)
    fresh = open_client(f"fresh{time.monotonic_ns()}", "editor")
    fresh.synced()
    assert fresh.current_text() == expected
    assert server_text(open_client.scene) == expected
    return expected


def _short(text: str) -> str:
    return repr(text if len(text) < 80 else f"{text[:40]}…({len(text)} chars)")


def _brief(messages: list[Message]) -> str:
    out = []
    for m in messages[-12:]:
        shown = {k: (v if not isinstance(v, str) or len(v) < 60 else v[:57] + "...") for k, v in m.items()}
        out.append(json.dumps(shown)[:200])
    return "[" + ", ".join(out) + "]"
