"""Bad input through the whole local stack, with real WebSocket clients (issue 4 item 8,
docs/design.md §2 error codes, §4 invariants 4 and 5): each bad frame gets its `error`, nothing
invalid is stored or broadcast, and afterwards the scene still works: a fresh client syncs,
an editor's update reaches the others, and the server's text is the clients' text. Every
test runs on both shapes of the stack: with Redis, and without any cache (issue 11)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pycrdt import Doc, Text, write_var_uint

from collab import cache, durable_chunks, protocol
from devstack.stack import LocalStack
from tests.e2e.conftest import Scene
from tests.e2e.wsclient import (
    CLIENT_FRAME_LIMIT,
    Opener,
    WsClient,
    assert_scene_usable,
    awareness_data,
    chunk_frames,
    dynamodb,
    error,
    log_keys,
    of_type,
    participant,
    sync_step1_data,
    sync_step2_data,
    update_data,
)

ACTIONS = ("sync", "update", "awareness", "ping", "chunk")


@pytest.fixture(scope="module")
def stack(each_shape_stack: LocalStack) -> LocalStack:
    """The stack the `scene` fixture uses: the one with Redis, then the one without."""
    return each_shape_stack


@pytest.fixture
def open_client(scene: Scene) -> Iterator[Opener]:
    opener = Opener(scene)
    yield opener
    opener.close_all()


def two_editors(open_client: Opener) -> tuple[WsClient, WsClient]:
    alice, bob = open_client("alice"), open_client("bob")
    alice.synced()
    bob.synced()
    alice.edit("hello")
    bob.wait_text("hello")
    return alice, bob


def refused(
    client: WsClient, frame: str | dict[str, object], code: str | None = "bad_request", **fields: object
) -> dict[str, Any]:
    """Send one frame and wait for its error (one at a time: invocations run concurrently,
    so only a lone request's error can be told apart)."""
    mark = client.mark()
    client.send_text(frame if isinstance(frame, str) else json.dumps(frame))
    return client.wait_error(code, after=mark, **fields)


def b64(data: bytes) -> str:
    return protocol.encode_base64(data)


def other_doc_update(text: str) -> bytes:
    """A real update from another replica (its own client id)."""
    doc = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


# ---------------------------------------------------------------------------------- frames


def test_malformed_frames_get_bad_request(scene: Scene, open_client: Opener) -> None:
    alice, bob = two_editors(open_client)
    logged = log_keys(scene)
    bob_mark = bob.mark()

    for text in ("{not json", "", "[1, 2, 3]", '"sync"', "42", "null", '{"action": 7}'):
        answer = refused(alice, text)
        assert "action" not in answer, (text, answer)

    for action in ("frobnicate", "$disconnect", "$connect", "Sync"):
        answer = refused(alice, {"action": action, "data": "AAA="}, action=action)
        for name in ACTIONS:
            assert f"{name}" in answer["message"], answer
    for action in ("sync", "update", "awareness"):
        refused(alice, {"action": action}, action=action)  # missing data
        refused(alice, {"action": action, "data": ""}, action=action)
        refused(alice, {"action": action, "data": 12}, action=action)

    alice.ping()  # the connection is still served
    assert log_keys(scene) == logged
    bob.assert_nothing(of_type("update"), after=bob_mark, within=0)
    assert_scene_usable(open_client, alice, bob)


def test_bad_base64_gets_bad_request_naming_the_action(scene: Scene, open_client: Opener) -> None:
    alice, bob = two_editors(open_client)
    logged = log_keys(scene)
    # base64 of [0, 2, <2 bytes>] is "AAIC" + "AAA=": every variant below breaks it.
    assert b64(bytes([0, 2, 2, 0, 0])) == "AAICAAA="
    variants = {
        "non-alphabet": "AAIC*AA=",
        "url-safe alphabet": "AAIC-_A=",
        "whitespace": "AAIC AAA=",
        "newline": "AAICAAA=\n",
        "missing padding": "AAICAAA",
        "extra padding": "AAICAAA==",
        "padding inside": "AA=CAAA=",
        "non-canonical padding bits": "AAICAAB=",
        "non-ASCII": "AAIC\u00e9AA=",
    }
    for action in ("update", "sync", "awareness"):
        for what, data in variants.items():
            answer = refused(alice, {"action": action, "data": data}, action=action)
            assert "base64" in answer["message"], (action, what, answer)
    assert log_keys(scene) == logged
    assert_scene_usable(open_client, alice, bob)


# --------------------------------------------------------------------------------- updates


def test_undecodable_updates_and_wrong_message_kinds_are_refused_and_not_stored(
    scene: Scene, open_client: Opener
) -> None:
    alice, bob = two_editors(open_client)
    logged = log_keys(scene)
    bob_mark = bob.mark()

    rng = random.Random(20261125)
    for size in (1, 5, 64, 300):
        junk = rng.randbytes(size)
        with pytest.raises(ValueError):
            Doc().apply_update(junk)  # pycrdt cannot decode it: the server must refuse it
        refused(alice, {"action": "update", "data": update_data(junk)}, "invalid_update", action="update")
        refused(alice, {"action": "update", "data": sync_step2_data(junk)}, "invalid_update", action="update")

    real = other_doc_update("from another replica")
    for cut in (1, 3, len(real) // 2):
        truncated = real[:-cut]
        with pytest.raises(ValueError):
            Doc().apply_update(truncated)
        refused(
            alice, {"action": "update", "data": update_data(truncated)}, "invalid_update", action="update"
        )

    # Frames that are not exactly one y-protocols message of the right kind.
    wrong = {
        "update": [
            bytes([0, 2]) + write_var_uint(100) + b"x" * 10,  # length beyond the end
            bytes([0, 2]),  # no payload at all
            bytes([0, 2]) + b"\xff" * 9,  # a length beyond any JavaScript integer
            protocol.update_message(real) + b"\x00",  # trailing bytes
            protocol.sync_step1(b"\x00"),  # a SyncStep1 is not an update
            protocol.awareness_message(b"\x00"),  # an awareness message is not an update
            bytes([0, 3, 2, 0, 0]),  # an unknown sync message type
            bytes([2, 0]),  # an unknown message type
        ],
        "sync": [
            protocol.update_message(real),  # an Update is not a SyncStep1
            protocol.sync_step2(real),
            protocol.sync_step1(b"\x00") + b"\x00",
        ],
        "awareness": [
            protocol.update_message(real),
            protocol.awareness_message(b"\x00") + b"\x00",
            bytes([1]) + write_var_uint(50) + b"\x01",
        ],
    }
    for action, messages in wrong.items():
        for message in messages:
            refused(alice, {"action": action, "data": b64(message)}, action=action)

    assert log_keys(scene) == logged, "a refused update was stored"
    bob.assert_nothing(of_type("update"), after=bob_mark, within=0)

    # Updates that add nothing: neither stored, broadcast nor refused.
    mark = alice.mark()
    alice.send("update", data=sync_step2_data(b"\x00\x00"))
    alice.send("update", data=update_data(b"\x00\x00"))
    alice.assert_nothing(error(), after=mark, within=0.7)
    bob.assert_nothing(of_type("update"), after=bob_mark, within=0)
    assert log_keys(scene) == logged

    # The untruncated update is fine: it was the truncation that was refused.
    alice.send("update", data=update_data(real))
    alice.doc.apply_update(real)
    bob.wait_text(alice.current_text())
    assert len(log_keys(scene)) == len(logged) + 1
    assert_scene_usable(open_client, alice, bob)


# ---------------------------------------------------------------------------------- chunks


class ChunkWatch:
    """Knows that a slice is stored before the next one is sent (chunk invocations run
    concurrently and answer nothing) by reading the store that holds it: the assembler's
    Redis keys (chunks.py's layout), or, on a stack without a cache, the DynamoDB items of
    durable_chunks.py."""

    def __init__(self, scene: Scene) -> None:
        env = scene.stack.env
        self.scene = scene
        self.redis = cache.connect(env.get("REDIS_URL", ""), env.get("REDIS_CLUSTER") == "true")

    def stored(self, connection_id: str, chunk_id: str, seq: int) -> bool:
        if self.redis.enabled:
            return bool(self.redis.hexists(f"collab:{{{connection_id}}}:chunk:parts:{chunk_id}", str(seq)))
        sort_key = f"{durable_chunks.PREFIX}{connection_id}#{chunk_id.encode().hex()}#p{seq}"
        found = dynamodb().get_item(
            TableName=self.scene.stack.env["DOCUMENTS_TABLE"],
            Key={"sceneId": {"S": self.scene.scene_id}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        )
        return "Item" in found

    def wait_stored(self, connection_id: str, chunk_id: str, seq: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.stored(connection_id, chunk_id, seq):
            assert time.monotonic() < deadline, f"chunk {chunk_id}#{seq} never stored"
            time.sleep(0.01)


def chunk(chunk_id: str, seq: int, total: int, data: str) -> dict[str, object]:
    return {"action": "chunk", "id": chunk_id, "seq": seq, "total": total, "data": data}


def slices(text: str, count: int) -> list[str]:
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_chunks_out_of_order_duplicates_conflicts_floods_and_a_big_update(
    scene: Scene, open_client: Opener
) -> None:
    alice, bob = two_editors(open_client)
    assert alice.connection_id is not None
    watch = ChunkWatch(scene)
    expected_errors = 0

    def bob_got(update: bytes) -> list[dict[str, object]]:
        return bob.find(of_type("update", data=update_data(update)))

    # Out of order: 2, 0, 1.
    first = alice.change(" out-of-order")
    parts = slices(json.dumps({"action": "update", "data": update_data(first)}), 3)
    for seq in (2, 0, 1):
        alice.send_json(chunk("ooo", seq, 3, parts[seq]))
    bob.wait_text(alice.current_text())

    # Duplicates, before and after completion: the message is handled once.
    second = alice.change(" duplicated")
    parts = slices(json.dumps({"action": "update", "data": update_data(second)}), 2)
    for seq in (0, 0):
        alice.send_json(chunk("dup", seq, 2, parts[seq]))
    watch.wait_stored(alice.connection_id, "dup", 0)
    for seq in (1, 1, 0):
        alice.send_json(chunk("dup", seq, 2, parts[seq]))
    bob.wait_text(alice.current_text())

    # A conflicting total is refused (with the chunk id); the id keeps its first total.
    third = alice.change(" conflict")
    parts = slices(json.dumps({"action": "update", "data": update_data(third)}), 2)
    alice.send_json(chunk("conf", 0, 2, parts[0]))
    watch.wait_stored(alice.connection_id, "conf", 0)
    refused(alice, chunk("conf", 1, 3, parts[1]), id="conf", action="chunk")
    expected_errors += 1
    alice.send_json(chunk("conf", 1, 2, parts[1]))
    bob.wait_text(alice.current_text())

    # Malformed chunk fields.
    for bad in (
        chunk("m1", 0, 1, ""),  # empty data
        {"action": "chunk", "id": "m2", "seq": 0, "total": 1},  # no data
        chunk("m3", 2, 2, "x"),  # seq outside [0, total)
        chunk("m4", 0, 0, "x"),  # total below 1
        {**chunk("m5", 0, 1, "x"), "seq": "0"},  # seq not an integer
        {**chunk("m6", 0, 1, "x"), "total": 1.5},
        {**chunk("m7", 0, 1, "x"), "seq": True},
        chunk("m8", 0, 1, "\ud83d"),  # a lone surrogate (a JS string cut inside a pair)
    ):
        refused(alice, bad, id=bad["id"], action="chunk")
        expected_errors += 1
    refused(alice, chunk("x" * 200, 0, 1, "x"), action="chunk")  # an id over 128 characters
    refused(alice, {"action": "chunk", "seq": 0, "total": 1, "data": "x"}, action="chunk")
    expected_errors += 2

    # A flood: the stack allows 4 incomplete chunked messages per connection.
    ping = '{"action": "ping"}'
    for n in range(4):
        alice.send_json(chunk(f"f{n}", 0, 2, ping[:9]))
    for n in range(4):
        watch.wait_stored(alice.connection_id, f"f{n}", 0)
    refused(alice, chunk("f4", 0, 2, ping[:9]), "too_large", id="f4", action="chunk")
    refused(alice, chunk("f5", 0, 2, ping[:9]), "too_large", id="f5", action="chunk")
    expected_errors += 2
    mark = alice.mark()
    for n in range(4):  # completing the pending ones frees their places (four pongs)
        alice.send_json(chunk(f"f{n}", 1, 2, ping[9:]))
    for n in (4, 5):  # refused ids stay refused, silently
        alice.send_json(chunk(f"f{n}", 1, 2, ping[9:]))
    alice.wait_count(of_type("pong"), 4, after=mark)

    # Over the limit at once (more chunks than the assembler accepts): too_large exactly
    # once for the id, however many of its chunks follow.
    huge_refused = refused(alice, chunk("huge", 0, 5000, "x"), "too_large", id="huge", action="chunk")
    after_huge = alice.messages.index(huge_refused) + 1
    expected_errors += 1
    for seq in (1, 2, 4999, 0):
        alice.send_json(chunk("huge", seq, 5000, "x"))

    # Reassembled text that is garbage, a chunk inside a chunk, bad base64 inside.
    refused(alice, chunk("junk", 0, 1, "not json"), id="junk", action="chunk")
    inner = json.dumps(chunk("inner", 0, 1, "x"))
    refused(alice, chunk("nest", 0, 1, inner), id="nest", action="chunk")
    refused(alice, chunk("b64", 0, 1, '{"action": "update", "data": "!!"}'), id="b64", action="update")
    junk_update = json.dumps({"action": "update", "data": update_data(b"\x07" * 40)})
    refused(alice, chunk("inv", 0, 1, junk_update), "invalid_update", id="inv", action="update")
    expected_errors += 4

    # A proper chunked 200 KB update is applied and reaches the other client.
    rng = random.Random(4)
    big = alice.change("".join(rng.choice("abcdefghij klmnop\n") for _ in range(150_000)))
    text = json.dumps({"action": "update", "data": update_data(big)})
    assert len(text) > 190_000
    frames = chunk_frames(text, "big")
    assert len(frames) >= 7 and all(len(json.dumps(f)) <= CLIENT_FRAME_LIMIT for f in frames)
    for frame in frames:
        alice.send_json(frame)
    bob.wait_text(alice.current_text(), timeout=20)
    server_chunks = [f for f in bob.raw if isinstance(f, str) and f.startswith('{"type":"chunk"')]
    assert server_chunks and all(len(f) <= 120_000 for f in server_chunks)

    alice.ping()
    alice.assert_nothing(error(id="huge"), after=after_huge, within=0.3)
    errors = alice.find(error())
    assert len([e for e in errors if e.get("id") == "huge"]) == 1
    assert len([e for e in errors if e.get("id") == "f4"]) == 1
    assert len(errors) == expected_errors, errors
    for update in (first, second, third, big):
        assert len(bob_got(update)) == 1
    assert_scene_usable(open_client, alice, bob)


# -------------------------------------------------------------------- deeply nested JSON

NESTED = "[" * 14_000 + "]" * 14_000  # valid JSON, deeper than Python's recursion limit


def test_deeply_nested_json_in_a_chunk_is_a_bad_request(scene: Scene, open_client: Opener) -> None:
    """Reassembled text the server cannot parse is the client's fault: `bad_request`, not
    `internal` (json.loads raises RecursionError, which parse_frame does not catch)."""
    alice, bob = two_editors(open_client)
    nested_update = '{"action": "update", "data": ' + NESTED + "}"
    for n, text in enumerate((NESTED, nested_update)):
        answer = refused(alice, chunk(f"deep{n}", 0, 1, text), code=None, id=f"deep{n}")
        assert answer["code"] == "bad_request", answer
    assert_scene_usable(open_client, alice, bob)


def test_deeply_nested_json_frame_is_answered(scene: Scene, open_client: Opener) -> None:
    """The same text as one frame: it must reach a handler ($default) and be answered.
    The emulator's route selection raises RecursionError and drops the frame silently."""
    alice, bob = two_editors(open_client)
    mark = alice.mark()
    alice.send_text(NESTED)
    answer = alice.wait_for(error(), after=mark, timeout=3)
    assert answer["code"] == "bad_request", answer
    assert_scene_usable(open_client, alice, bob)


# ---------------------------------------------------------------------------------- binary


def test_binary_frame_closes_only_that_connection_with_1003(scene: Scene, open_client: Opener) -> None:
    alice, bob = two_editors(open_client)
    carol = open_client("carol")
    carol.synced()
    assert carol.connection_id is not None
    carol.send_binary(b"\x00\x02\x02\x00\x00")
    assert carol.wait_closed() == 1003
    bob.wait_for(participant("participant-left", carol.connection_id))
    assert_scene_usable(open_client, alice, bob)


def test_awareness_and_sync_garbage_keep_presence_working(scene: Scene, open_client: Opener) -> None:
    alice, bob = two_editors(open_client)
    bad_states = [
        protocol.awareness_message(b"\x01\x05\x01\x03abc"),  # state that is not JSON
        protocol.awareness_message(b"\x05\x05\x01\x02{}"),  # a count that lies
    ]
    for message in bad_states:
        refused(alice, {"action": "awareness", "data": b64(message)}, action="awareness")
    refused(alice, {"action": "sync", "data": sync_step1_data(b"\x05\x01")}, action="sync")
    mark = bob.mark()
    alice.send("awareness", data=awareness_data(4242, 1, {"user": {"name": "Alice"}}))
    bob.wait_for(of_type("awareness"), after=mark)
    assert_scene_usable(open_client, alice, bob)
