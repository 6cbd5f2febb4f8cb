"""Attacks on the version restore (issue 12) as a hostile or unlucky user makes them:
collab.restore on scenes real Yjs built (tests/e2e/lib/restore_attack.mjs) and read back
by real Yjs after the restore; the whole flow (collab.scene_versions through the HTTP route)
on real storage and every stage shape (moto, real Redis or no cache), real HS256 tokens.

A test marked xfail(strict=True) shows a defect that is still there: it flips to a failure
("XPASS(strict)") once the defect is fixed, and the mark is then removed."""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, merge_updates

from collab import http_routes, protocol, runtime, session
from collab import restore as restore_module
from collab.documents import validate_update
from collab.errors import CollabError
from collab.lib0 import var_string, var_uint
from collab.restore import CannotRestore, restore_update
from collab.scene_content import UnloadableState
from collab.versions import RESTORE_LEASE, RESTORE_LEASE_SECONDS, RESTORE_WAIT_SECONDS, Versions
from collab.yjs_format import read_state_vector
from devstack import event_bus
from tests.core.storage_rig import LoseResponse
from tests.core.test_http_routes import SECRET, call, error_of, event, room, token
from tests.support.faults import SendThenLose
from tests.support.pause import Crash, PausePoints
from tests.support.rig import (
    Recorder,
    Shape,
    awareness_frame,
    build_rig,
    caller,
    sync_frame,
    text_seen_by,
    update_frame,
)
from tests.support.yjs_node import apply_in_yjs, node

OCTETS = "application/octet-stream"

# -- real Yjs on both sides --------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    name: str
    kinds: dict[str, str]
    old_kinds: dict[str, str]
    version: bytes
    current: bytes


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def built() -> dict[str, Built]:
    rows = node("restore_attack.mjs", "scenes")
    return {
        r["name"]: Built(
            r["name"],
            r["kinds"],
            r["oldKinds"],
            base64.b64decode(r["version"]),
            base64.b64decode(r["current"]),
        )
        for r in rows
    }


def read_in_yjs(cases: list[tuple[Built, bytes]], digest: bool = False) -> dict[str, dict[str, Any]]:
    """Each (scene, restore) applied on the scene and read back by Yjs, in one Node process."""
    lines = [
        json.dumps(
            {
                "name": s.name,
                "kinds": s.kinds,
                "oldKinds": s.old_kinds,
                "version": b64(s.version),
                "current": b64(s.current),
                "restore": b64(restore),
                "digest": digest,
            }
        )
        for s, restore in cases
    ]
    return {r["name"]: r for r in node("restore_attack.mjs", "check", stdin="\n".join(lines) + "\n")}


def joined(dump: Any) -> Any:
    """`dump` with neighbouring string runs of a delta that have equal attributes joined (where
    Yjs cuts a run depends on the marks a history left; a restore need not copy those cuts)."""
    if isinstance(dump, list):
        return [joined(v) for v in dump]
    if not isinstance(dump, dict):
        return dump
    out = {k: joined(v) for k, v in dump.items()}
    for key in ("text", "xmltext"):
        if isinstance(out.get(key), list):
            ops: list[dict[str, Any]] = []
            for op in out[key]:
                last = ops[-1] if ops else None
                if (
                    last is not None
                    and isinstance(op["insert"], str)
                    and isinstance(last["insert"], str)
                    and last["attributes"] == op["attributes"]
                ):
                    ops[-1] = {"insert": last["insert"] + op["insert"], "attributes": op["attributes"]}
                else:
                    ops.append(op)
            out[key] = ops
    return out


CONTENT = [
    "unicode-crlf",
    "empty-version",
    "deep-50",
    "xml-attributes",
    "formats",
    "map-values",
    "array-duplicates",
]


@pytest.mark.parametrize("name", CONTENT)
def test_yjs_reads_exactly_the_version_after_the_restore(name: str, built: dict[str, Built]) -> None:
    scene = built[name]
    update = restore_update(scene.current, scene.version)
    assert update and validate_update(update)
    result = read_in_yjs([(scene, update)])[name]
    assert result["error"] is None
    assert joined(result["restored"]) == joined(result["expected"])


def test_a_version_embedding_any_shared_type_in_a_text_is_restored_or_refused_clearly(
    built: dict[str, Built],
) -> None:
    """An array, an element, a fragment and an XmlText embedded in a Y.Text (Yjs takes each):
    restored as Yjs reads them, or refused whole as one pycrdt cannot write (CannotRestore,
    HTTP 400), never another error (HTTP 500)."""
    scene = built["embedded-types"]
    try:
        update = restore_update(scene.current, scene.version)
    except CannotRestore:
        return
    result = read_in_yjs([(scene, update)])[scene.name]
    assert result["error"] is None
    assert joined(result["restored"]) == joined(result["expected"])


def test_a_line_of_a_megabyte_and_a_half_is_restored_exactly(built: dict[str, Built]) -> None:
    # Longer than the restore's line block (1 MB, collab.restore._lines), with no newline at all.
    scene = built["long-line"]
    started = time.perf_counter()
    update = restore_update(scene.current, scene.version)
    assert time.perf_counter() - started < 20
    result = read_in_yjs([(scene, update)], digest=True)[scene.name]
    assert result["error"] is None and result["restored"] == result["expected"]


@pytest.mark.xfail(
    strict=True,
    reason="restore.py writes the version's -0 back as pycrdt takes it: Yjs reads 0 after the restore",
)
def test_a_negative_zero_is_restored_as_negative_zero(built: dict[str, Built]) -> None:
    scene = built["negative-zero"]
    result = read_in_yjs([(scene, restore_update(scene.current, scene.version))])[scene.name]
    assert result["expected"] == {"map": {"map": [["z", {"number": "-0"}]]}}
    assert result["restored"] == result["expected"]


def test_a_text_root_holding_an_array_element_is_emptied_or_refused_clearly(built: dict[str, Built]) -> None:
    """A root the version lacks, used as text, into which one page inserted an array element
    (Yjs takes it: a root's sequence holds any content)."""
    scene = built["mixed-root"]
    try:
        update = restore_update(scene.current, scene.version)
    except CollabError:
        return
    result = read_in_yjs([(scene, update)])[scene.name]
    assert result["error"] is None
    assert result["restored"] == {"script": result["expected"]["script"], "notes": {"text": []}}


@pytest.mark.parametrize("name", ["kinds-unrelated", "kinds-one-history"])
def test_every_change_of_a_roots_kind_is_restored(name: str, built: dict[str, Built]) -> None:
    """Each of the 12 ordered pairs of kinds: the root in the version's kind reads as the
    version's, and read in the kind it has now it shows no more than the version does."""
    scene = built[name]
    update = restore_update(scene.current, scene.version)
    result = read_in_yjs([(scene, update)])[name]
    assert result["error"] is None
    assert joined(result["restored"]) == joined(result["expected"])
    for root, old in result["asOld"].items():
        assert joined(old) == joined(result["versionAsOld"][root]), root


def _merged(*updates: bytes) -> bytes:
    return bytes(merge_updates(*updates))


@pytest.mark.parametrize(
    "name",
    [
        "unicode-crlf",
        "formats",
        "xml-attributes",
        "map-values",
        "kinds-unrelated",  # a text emptied keeps its formatting marks: not text once written as another kind
    ],
)
def test_a_restore_undone_and_redone_gives_each_state_back(name: str, built: dict[str, Built]) -> None:
    """Restore the version, then the state saved just before it (undo), then the version
    again (redo): Yjs reads each time what was asked for."""
    scene = built[name]
    restored = _merged(scene.current, restore_update(scene.current, scene.version))
    undo = restore_update(restored, scene.current)  # the "before restore" version is `current`
    undone = _merged(restored, undo)
    redo = restore_update(undone, scene.version)
    kinds_now = scene.old_kinds or scene.kinds  # the roots as the scene holds them before the restore
    cases = [
        (Built(f"{name}-undo", kinds_now, {}, scene.current, restored), undo),
        (Built(f"{name}-redo", scene.kinds, {}, scene.version, undone), redo),
    ]
    results = read_in_yjs(cases)
    for case, _ in cases:
        assert results[case.name]["error"] is None, case.name
        assert joined(results[case.name]["restored"]) == joined(results[case.name]["expected"]), case.name
    assert restore_update(_merged(undone, redo), scene.version) == b""  # nothing left to do


def test_a_concurrent_edit_in_the_unchanged_middle_of_a_paragraph_stays_where_it_was_typed() -> None:
    """One paragraph, no newline (a Y.Text of prose): the version, then a word changed near
    each end. bob, who has not seen the restore yet, types after the 100th word, which the
    version and the scene share; Yjs merges his edit with the restore, in both orders."""
    from tests.core.test_restore import Scene, check_in_yjs

    words = [f"word{i}" for i in range(300)]
    doc: Doc = Doc(client_id=51)
    text = doc.get("text", type=Text)
    text.insert(0, " ".join(words))
    version = doc.get_update()
    with doc.transaction():
        at = len(" ".join(words[:5])) + 1
        del text[at : at + len(words[5])]
        text.insert(at, "CHANGED")
        text.insert(len(text), " and one more")
    current = doc.get_update()
    bob: Doc = Doc(client_id=52)
    bob.apply_update(current)
    seen = bob.get_state()
    bob_text = bob.get("text", type=Text)
    after = str(bob_text).index("word100") + len("word100")
    bob_text.insert(after, " BOB")
    concurrent = bob.get_update(seen)
    update = restore_update(current, version)
    scene = Scene("paragraph", {"text": "text"}, version, current, concurrent, "BOB", {})
    result = check_in_yjs([(scene, update)])["paragraph"]
    assert result["error"] is None and result["merged"] == result["mergedOtherOrder"]
    merged = "".join(op["insert"] for op in result["merged"]["text"]["text"])
    assert merged == " ".join(words).replace("word100", "word100 BOB")
    assert len(update) < 1000  # two words' worth, not the paragraph


# -- bounded work ------------------------------------------------------------------------------


def _deepened(version: bytes, depth: int) -> bytes:
    """`version` with map["k"] replaced by `depth` Y.Maps nested in one another."""
    doc: Doc = Doc(client_id=8)
    doc.apply_update(version)
    at: Map[Any] = doc.get("map", type=Map)
    with doc.transaction():
        for _ in range(depth):
            inner: Map[Any] = Map()
            at["k"] = inner
            at = inner
        at["leaf"] = "vandal"
    return doc.get_update()


def _random_lines(seed: int, count: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ab") + "\n" for _ in range(count))


def _blocks_text(seed: int, blocks: int, lines: int) -> bytes:
    doc: Doc = Doc(client_id=11)
    text = doc.get("script", type=Text)
    text.insert(0, "".join(f"SCENE {i}\n" + _random_lines(seed * 1000 + i, lines) for i in range(blocks)))
    return doc.get_update()


def test_a_text_crafted_against_the_line_diff_is_restored_in_bounded_time() -> None:
    """Blocks of 5,000 lines that are all "a" or "b" (none unique: nothing anchors them),
    each headed by a unique line: 400 KB of text. With a Myers budget per range it took
    6-7 s (1 MB: 16 s, past the http function's 15 s); with one budget per restore 0.8 s
    (1 MB: 2.7 s, 4 MB: 8.6 s, mostly loading and writing the text, as for any restore of
    that size). The 21 MB screenplay of tests/core/test_restore.py restores in 3-5 s."""
    version = _blocks_text(1, 40, 5000)
    other = _blocks_text(2, 40, 5000)
    doc: Doc = Doc(client_id=12)
    doc.apply_update(version)
    script = doc.get("script", type=Text)
    with doc.transaction():
        del script[0 : len(script)]
        fresh: Doc = Doc()
        fresh.apply_update(other)
        script.insert(0, str(fresh.get("script", type=Text)))
    current = doc.get_update()
    assert len(current) < 1_000_000
    update, elapsed = timed_restore(current, version)
    check: Doc = Doc()
    check.apply_update(current)
    check.apply_update(update)
    reference: Doc = Doc()
    reference.apply_update(version)
    assert str(check.get("script", type=Text)) == str(reference.get("script", type=Text))
    assert elapsed < 3, f"{elapsed:.1f} s for {len(current)} bytes"


def timed_restore(current: bytes, version: bytes) -> tuple[bytes, float]:
    """restore_update(current, version), and the seconds it took."""
    started = time.perf_counter()
    update = restore_update(current, version)
    return update, time.perf_counter() - started


def _text_state(content: str, client_id: int) -> bytes:
    doc: Doc = Doc(client_id=client_id)
    doc.get("script", type=Text).insert(0, content)
    return doc.get_update()


def _restored_text(current: bytes, update: bytes) -> str:
    doc: Doc = Doc()
    doc.apply_update(current)
    doc.apply_update(update)
    return str(doc.get("script", type=Text))


def test_lines_that_anchor_one_at_a_time_are_restored_in_bounded_time() -> None:
    """Now: lines L1..Lk. The version: L2 L1 L3 L2 L4 L3 ... Lk Lk-1 Lk, so that in each
    range left after an anchor exactly one line is unique on both sides, and the next one
    only once that range is split again. 6,000 lines, 100 KB in all: 5-6 s (8,000: 10 s)
    before anchoring was paid from the restore's budget; now the rest is replaced whole
    once the budget is spent."""
    k = 6000
    lines = [f"L{i}\n" for i in range(1, k + 1)]
    then = [lines[1], lines[0]]
    for i in range(2, k):
        then += [lines[i], lines[i - 1]]
    then.append(lines[k - 1])
    current = _text_state("".join(lines), 21)
    version = _text_state("".join(then), 22)
    update, elapsed = timed_restore(current, version)
    assert _restored_text(current, update) == "".join(then)
    assert elapsed < 2, f"{elapsed:.1f} s for {len(current) + len(version)} bytes"


@pytest.mark.xfail(
    strict=True,
    reason="restore.py _elements reads a nested array an index at a time (documented: "
    "O(elements x blocks)), and _key reads every nested array both sides hold, changed or not",
)
def test_a_scene_with_a_long_nested_array_is_restored_in_bounded_time() -> None:
    """A board's 15,000 cards in a Y.Array inside a Y.Map, added over time at random places
    (one block each): 190 KB. One card added since the version; restored in 7 s."""
    rng = random.Random(4)
    doc: Doc = Doc(client_id=31)
    board: Map[Any] = doc.get("board", type=Map)
    with doc.transaction():
        cards: Array[Any] = Array()
        board["cards"] = cards
        for i in range(15000):
            cards.insert(rng.randint(0, len(cards)), float(i))
    version = doc.get_update()
    cards.insert(0, "new card")
    current = doc.get_update()
    update, elapsed = timed_restore(current, version)
    assert update
    assert elapsed < 3, f"{elapsed:.1f} s for {len(current)} bytes"


_REFILL = """
import struct, sys, time
from pycrdt import Array, Doc
from collab.lib0 import var_string, var_uint
from collab.restore import restore_update

# As Yjs writes `points.push(numbers)`: one item of Any content, every number a float64
# (tag 123, big-endian), in root "points"; then that item deleted.
n = int(sys.argv[1])
numbers = b"".join(b"\\x7b" + struct.pack(">d", float(i)) for i in range(n))
item = bytes([8]) + b"\\x01" + var_string("points") + var_uint(n) + numbers
version = var_uint(1) + var_uint(1) + var_uint(41) + var_uint(0) + item + b"\\x00"
current = version[:-1] + var_uint(1) + var_uint(41) + var_uint(1) + var_uint(0) + var_uint(n)
started = time.perf_counter()
update = restore_update(current, version)
elapsed = time.perf_counter() - started
check = Doc()
check.apply_update(current)
check.apply_update(update)
assert check.get("points", type=Array).to_py() == [float(i) for i in range(n)]
# VmHWM, not ru_maxrss: that one keeps the peak of the forked copy of pytest before exec.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, peak_kb // 1024)
"""


def test_an_emptied_array_of_numbers_is_restored_in_bounded_time_and_memory() -> None:
    """The most ordinary restore: 20,000 numbers (a drawing's points, pushed at once) were
    deleted, and the version is brought back. Run in a process of its own to measure its
    memory. Inserted in order in one transaction they cost yrs 22 s and 9.2 GB; last first
    at the run's start, 0.1 s and 37 MB (the whole process)."""
    import subprocess
    import sys
    from pathlib import Path

    functions = Path(__file__).resolve().parents[2] / "functions"
    process = subprocess.run(
        [sys.executable, "-c", _REFILL, "20000"],
        cwd=functions,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    elapsed, peak_mb = process.stdout.split()
    assert float(elapsed) < 2 and int(peak_mb) < 500, f"{float(elapsed):.1f} s, {peak_mb} MB peak"


# -- the flow, through the HTTP route ------------------------------------------------------------

Rig = tuple[runtime.Runtime, Recorder, PausePoints]


@pytest.fixture
def rig(shape: Shape, aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    yield from _rig(shape, aws_tables, monkeypatch)


@pytest.fixture
def plain_rig(aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """One shape (no cache) for the tests whose subject is DynamoDB alone (the lease)."""
    yield from _rig(Shape("none"), aws_tables, monkeypatch)


def _rig(
    shape: Shape, aws_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch, **env: str
) -> Iterator[Rig]:
    monkeypatch.setenv("AUTH_MODE", "hs256")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    for name in ("JWT_SECRET_PARAMETER", "JWT_SECRET_ARN", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    http_routes.verifier.cache_clear()
    rt, recorder, pause = build_rig(shape, aws_tables, MANAGEMENT_ENDPOINT="http://local", **env)
    monkeypatch.setattr(runtime, "_runtime", rt)
    yield rt, recorder, pause
    http_routes.verifier.cache_clear()


def post_update(scene: str, user: str, body: bytes) -> int:
    return call(event("POST", f"/scenes/{scene}/updates", token=token(user), body=body, content_type=OCTETS))[
        0
    ]


def post_version(scene: str, user: str, label: str) -> str:
    status, _, body = call(
        event(
            "POST",
            f"/scenes/{scene}/versions",
            token=token(user),
            body=json.dumps({"label": label}),
            content_type="application/json",
        )
    )
    assert status == 201, body
    return str(json.loads(body)["versionId"])


def restore(scene: str, user: str, version: str) -> tuple[int, dict[str, Any]]:
    status, _, body = call(event("POST", f"/scenes/{scene}/versions/{version}/restore", token=token(user)))
    return status, json.loads(body)


def text_of_scene(scene: str, user: str, version: str | None = None) -> str:
    path = f"/scenes/{scene}" + (f"/versions/{version}" if version else "")
    status, _, body = call(event("GET", path, token=token(user), query={"text": "t"}))
    assert status == 200, body
    return body.decode()


class Writer:
    """One editor's replica of Y.Text "t", kept in step with the server's state."""

    def __init__(self, rt: runtime.Runtime, scene: str) -> None:
        self.doc: Doc = Doc()
        self.doc.apply_update(rt.documents.load(scene).state)
        self.text = self.doc.get("t", type=Text)

    def replace(self, content: str) -> bytes:
        before = self.doc.get_state()
        with self.doc.transaction():
            del self.text[0 : len(self.text)]
            self.text.insert(0, content)
        return self.doc.get_update(before)

    def insert_after(self, anchor: str, content: str) -> bytes:
        before = self.doc.get_state()
        at = len(str(self.text)[: str(self.text).index(anchor) + len(anchor)].encode())
        self.text.insert(at, content)
        return self.doc.get_update(before)


def drafted(rt: runtime.Runtime, scene: str, *drafts: str) -> list[str]:
    """Each draft in turn replaces the scene's text, a version taken after each: their ids."""
    ids = []
    for n, draft in enumerate(drafts):
        assert post_update(scene, "ann", Writer(rt, scene).replace(draft)) == 204
        ids.append(post_version(scene, "ann", f"draft {n}"))
    return ids


V1 = "INT. KITCHEN - NIGHT\nMARA: You said you would call.\nJONAS: I did.\n"
V2 = "INT. KITCHEN - NIGHT\nMARA: You never call.\nJONAS: I did. Twice. 📞\nCUT TO:\n"


def test_a_restore_then_its_undo_as_members_and_late_joiners_see_them(rig: Rig) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ann="editor", bob="viewer", cat="viewer")
    first, _ = drafted(rt, scene, V1, V2)
    session.handle_message(rt, caller(scene, "bob=", "bob", role="viewer"), sync_frame())
    seen = len(recorder.sent["bob="])

    status, answer = restore(scene, "ann", first)
    assert status == 200, answer
    saved = answer["versionId"]
    assert answer["version"]["label"] == "before restore of draft 0" and answer["version"]["auto"] is True
    assert text_of_scene(scene, "bob") == V1
    assert text_of_scene(scene, "bob", saved) == V2  # the version saved just before
    told = recorder.sent["bob="][seen:]
    # What bob's page shows: the restored text, and the `version` message after its update.
    assert text_seen_by(recorder.sent["bob="]) == V1
    kinds = [(m["type"], m.get("event")) for m in told]
    assert kinds == [("version", "created"), ("update", None), ("version", "restored")]
    assert told[0]["version"]["versionId"] == saved
    assert told[2]["version"]["versionId"] == first and told[2]["savedBefore"] == saved

    # Undo: the version saved before the restore brings V2 back, for bob and a late joiner.
    status, answer = restore(scene, "ann", saved)
    assert status == 200, answer
    assert answer["version"]["label"] == "before restore of before restore of draft 0"
    assert text_of_scene(scene, "cat") == V2
    assert text_seen_by(recorder.sent["bob="]) == V2
    if rt.cache is not None and rt.cache.enabled:  # and again once the cache forgot the scene
        rt.cache.call(lambda redis: [redis.delete(k) for k in redis.scan_iter(match=f"collab:{{{scene}}}:*")])
    session.handle_message(rt, caller(scene, "cat=", "cat", role="viewer"), sync_frame())
    assert text_seen_by(recorder.sent["cat="]) == V2


def test_a_version_of_the_empty_scene_restores_to_nothing_and_back(rig: Rig) -> None:
    rt, _, _ = rig
    scene = room(rt, ann="editor")
    empty = post_version(scene, "ann", "nothing yet")
    drafted(rt, scene, V1)
    status, answer = restore(scene, "ann", empty)
    assert status == 200, answer
    assert text_of_scene(scene, "ann") == ""
    assert restore(scene, "ann", answer["versionId"])[0] == 200
    assert text_of_scene(scene, "ann") == V1


def test_the_restores_client_id_is_the_restorers_and_cannot_be_forged(rig: Rig) -> None:
    rt, _, _ = rig
    scene = room(rt, ann="editor", bob="editor")
    first, _ = drafted(rt, scene, V1, V2)
    before = set(read_state_vector(rt.documents.load(scene).summary.state_vector))
    assert restore(scene, "ann", first)[0] == 200
    after = set(read_state_vector(rt.documents.load(scene).summary.state_vector))
    (client,) = after - before
    assert rt.client_ids is not None and rt.client_ids.owners(scene, [client]) == {client: "ann"}
    # bob writes under the restore's id and clocks: dropped, the scene stays the version.
    forged: Doc = Doc(client_id=client)
    forged.get("t", type=Text).insert(0, "FORGED ")
    assert post_update(scene, "bob", forged.get_update()) == 204
    assert text_of_scene(scene, "ann") == V1


def test_an_edit_made_while_the_restore_runs_stays_where_it_was_typed(rig: Rig) -> None:
    """bob types while the server computes the restore (after it read the scene, before it
    stored its update): his words survive it, in a line the version and the scene share and
    in one the restore replaces, and his replica ends as the server's."""
    rt, recorder, pause = rig
    scene = room(rt, ann="editor", bob="editor")
    first, _ = drafted(rt, scene, V1, V2)
    bob = caller(scene, "bob=", "bob")
    session.handle_message(rt, bob, sync_frame())
    replica = Writer(rt, scene)
    pause.arm("append:start")  # the restore's own update is its first append
    answers: list[int] = []
    worker = threading.Thread(target=lambda: answers.append(restore(scene, "ann", first)[0]))
    worker.start()
    pause.wait_reached("append:start")
    session.handle_message(rt, bob, update_frame(replica.insert_after("INT. KITCHEN", " (BOB)")))
    session.handle_message(rt, bob, update_frame(replica.insert_after("Twice.", " [BOB]")))
    pause.release("append:start")
    worker.join(30)
    assert answers == [200]
    final = text_of_scene(scene, "ann")
    assert "INT. KITCHEN (BOB) - NIGHT\n" in final
    assert "[BOB]" in final
    assert final.replace(" (BOB)", "").replace(" [BOB]", "") == V1
    for message in recorder.sent["bob="]:
        if message["type"] in ("sync", "update"):
            decoded = protocol.decode_sync_message(protocol.decode_base64(message["data"]))
            if decoded.kind != protocol.SYNC_STEP1:
                replica.doc.apply_update(decoded.payload)
    assert str(replica.text) == final


@pytest.fixture
def bus_rig(
    aws_tables: dict[str, str], moto: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Rig, Any]]:
    bus = f"bus-{uuid.uuid4().hex[:8]}"
    event_bus.create_bus(moto, bus)
    for built_rig in _rig(Shape("none"), aws_tables, monkeypatch, EVENT_BUS_NAME=bus):
        yield built_rig, event_bus.subscribe(moto, bus)


def test_the_restore_events_name_the_version_and_the_one_saved_before(bus_rig: tuple[Rig, Any]) -> None:
    (rt, _, _), events = bus_rig
    scene = room(rt, ann="editor")
    first, _ = drafted(rt, scene, V1, V2)
    events.receive(count=4, timeout=3)  # the drafts' own events
    status, answer = restore(scene, "ann", first)
    assert status == 200
    received = events.receive(count=3, timeout=10)
    saved = answer["versionId"]
    created = [e["detail"] for e in received if e["detail-type"] == "Version Created"]
    assert [c["version"]["versionId"] for c in created] == [saved]
    (restored,) = [e["detail"] for e in received if e["detail-type"] == "Version Restored"]
    assert (restored["sceneId"], restored["savedBefore"], restored["restoredBy"]) == (scene, saved, "ann")
    assert (restored["version"]["versionId"], restored["version"]["label"]) == (first, "draft 0")


# -- refusals --------------------------------------------------------------------------------------


def _unloadable() -> bytes:
    """A state the strict reader (and so the update path) accepts and pycrdt refuses: an item
    whose parent is an item of string content, not a type: Yjs skips "b", yrs refuses it all."""
    named = bytes([4]) + b"\x01" + var_string("t") + var_string("a")  # "a" in root "t"
    child = bytes([4]) + b"\x00" + var_uint(901) + var_uint(0) + var_string("b")  # parent: that "a"
    groups = [(901, named), (902, child)]
    return (
        var_uint(len(groups))
        + b"".join(var_uint(1) + var_uint(c) + var_uint(0) + s for c, s in groups)
        + b"\x00"
    )


def test_an_editor_cannot_make_a_scene_unrestorable(rig: Rig) -> None:
    """20 bytes Yjs reads (and skips) but yrs refuses whole: the scene's text still reads and
    it still restores (scene_content._as_yjs_reads), and browsers see what the server says."""
    rt, _, _ = rig
    scene = room(rt, ann="editor", eve="editor")
    (first,) = drafted(rt, scene, V1)
    assert post_update(scene, "ann", Writer(rt, scene).replace("VANDALISED")) == 204
    assert post_update(scene, "eve", _unloadable()) == 204
    # Eve's "a" went into the text (as Yjs shows it), her "b" under it nowhere.
    assert sorted(text_of_scene(scene, "ann")) == sorted("aVANDALISED")
    status, answer = restore(scene, "ann", first)
    assert status == 200, answer
    assert text_of_scene(scene, "ann") == V1
    (in_yjs,) = apply_in_yjs([(b"", rt.documents.load(scene).state)])
    assert in_yjs["fresh"] is None and in_yjs["read"] is None


def _refused_restore(
    rt: runtime.Runtime, scene: str, why: str, built: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A scene and a version of it whose restore is refused: the version's id."""
    if why == "too-deep":
        # A hostile editor nested 1,200 Y.Maps (a few kilobytes, which the update path
        # takes) under a key, and a version was saved then; the key was set to a plain
        # map since. Putting the version back means writing the 1,200 levels again:
        # deeper than Python's stack. (The other way round, a deep chain in the scene
        # under a key the version holds shallow, restores: in place, the chain is one
        # key deleted.)
        doc: Doc = Doc()
        doc.get("map", type=Map)["k"] = Map({"leaf": "shallow"})
        shallow = doc.get_update()
        assert post_update(scene, "ann", _deepened(shallow, 1200)) == 204
        first = post_version(scene, "ann", "deep")
        doc = Doc()
        doc.apply_update(rt.documents.load(scene).state)
        doc.get("map", type=Map)["k"] = Map({"leaf": "shallow again"})
        assert post_update(scene, "ann", doc.get_update()) == 204
        return first
    if why == "unloadable":
        # No state the update path takes is known to be one pycrdt cannot load once
        # rewritten as Yjs reads it; should one be, its refusal must still be answered.
        (first,) = drafted(rt, scene, V1)

        def refuse(doc: Doc, update: bytes) -> None:
            raise UnloadableState("pycrdt cannot load the scene: a test says so")

        monkeypatch.setattr(restore_module, "apply_to", refuse)
        return first
    unwritable = built["xml-in-map"]  # an XmlElement in a map: restore.CannotRestore
    assert post_update(scene, "ann", unwritable.version) == 204
    first = post_version(scene, "ann", "with the element")
    assert post_update(scene, "ann", unwritable.current) == 204
    return first


@pytest.mark.parametrize("why", ["unloadable", "cannot-restore", "too-deep"])
def test_a_refused_restore_is_a_json_error_that_changes_nothing_in_the_scene(
    rig: Rig, why: str, built: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, _, _ = rig
    scene = room(rt, ann="editor")
    first = _refused_restore(rt, scene, why, built, monkeypatch)
    state = rt.documents.load(scene).state
    answer = call(event("POST", f"/scenes/{scene}/versions/{first}/restore", token=token("ann")))
    expected = (500, "internal") if why == "unloadable" else (400, "bad_request")
    assert error_of(answer) == expected
    assert rt.documents.load(scene).state == state
    # The lease was given back: the next attempt is answered at once, not after 20 s.
    started = time.perf_counter()
    call(event("POST", f"/scenes/{scene}/versions/{first}/restore", token=token("ann")))
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("why", ["unloadable", "cannot-restore", "too-deep"])
def test_a_refused_restore_writes_no_version_and_tells_nobody(
    rig: Rig, why: str, built: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, recorder, _ = rig
    scene = room(rt, ann="editor", bob="viewer")
    first = _refused_restore(rt, scene, why, built, monkeypatch)
    versions = [v.version_id for v in rt.versions.list(scene)]
    session.handle_message(rt, caller(scene, "bob=", "bob", role="viewer"), sync_frame())
    seen = len(recorder.sent["bob="])
    for _ in range(3):  # a user clicking "restore" again and again
        assert call(event("POST", f"/scenes/{scene}/versions/{first}/restore", token=token("ann")))[0] >= 400
    assert [v.version_id for v in rt.versions.list(scene)] == versions
    assert [m for m in recorder.sent["bob="][seen:] if m["type"] == "version"] == []


# -- the restore lease -----------------------------------------------------------------------------


class Clock:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def _abandoned_lease(rt: runtime.Runtime, scene: str, seconds_ago: float) -> Any:
    """The lease as a handler that took it `seconds_ago` and was killed holding it leaves it
    (its `finally` never ran). Returned so that it is never closed (closing releases it)."""
    other = Versions(rt.versions._db, rt.settings.documents_table, rt.blobs, clock=Clock(-seconds_ago))
    held = other.restoring(scene)
    held.__enter__()
    return held


def test_a_restore_after_a_handler_died_holding_the_lease_proceeds_once_it_expires(plain_rig: Rig) -> None:
    rt, _, _ = plain_rig
    scene = room(rt, ann="editor")
    first, _ = drafted(rt, scene, V1, V2)
    dead = _abandoned_lease(rt, scene, RESTORE_LEASE_SECONDS + 1.5)
    started = time.perf_counter()
    status, answer = restore(scene, "ann", first)
    assert status == 200, answer
    assert time.perf_counter() - started < 5
    assert text_of_scene(scene, "ann") == V1
    assert dead is not None


def test_a_restore_while_a_dead_handler_holds_the_lease_is_a_409_after_the_wait(plain_rig: Rig) -> None:
    rt, _, _ = plain_rig
    scene = room(rt, ann="editor")
    first, _ = drafted(rt, scene, V1, V2)
    dead = _abandoned_lease(rt, scene, 0)
    started = time.perf_counter()
    answer = call(event("POST", f"/scenes/{scene}/versions/{first}/restore", token=token("ann")))
    waited = time.perf_counter() - started
    assert error_of(answer) == (409, "conflict")
    assert RESTORE_WAIT_SECONDS - 1 < waited < RESTORE_WAIT_SECONDS + 5
    assert text_of_scene(scene, "ann") == V2  # nothing written
    assert dead is not None


def LoseDelete(client: Any) -> SendThenLose:
    """The next DeleteItem of the restore lease is applied by moto, then its response lost,
    so the client retries it (its condition then fails: the item is gone)."""
    return SendThenLose(
        client,
        "DeleteItem",
        lambda body: json.loads(body or b"{}").get("Key", {}).get("sk", {}).get("S") == RESTORE_LEASE,
    )


def _lease_item(rt: runtime.Runtime, scene: str) -> Any:
    return rt.versions._db.get_item(
        TableName=rt.settings.documents_table,
        Key={"sceneId": {"S": scene}, "sk": {"S": RESTORE_LEASE}},
        ConsistentRead=True,
    ).get("Item")


@pytest.mark.parametrize("lost", ["put", "delete"])
def test_a_lost_response_on_the_lease_costs_the_next_restore_nothing(plain_rig: Rig, lost: str) -> None:
    rt, _, _ = plain_rig
    scene = room(rt, ann="editor")
    first, second = drafted(rt, scene, V1, V2)
    fault: Any = (
        LoseResponse(rt.versions._db, RESTORE_LEASE) if lost == "put" else LoseDelete(rt.versions._db)
    )
    assert restore(scene, "ann", first)[0] == 200
    assert fault.lost == 1
    assert _lease_item(rt, scene) is None
    started = time.perf_counter()
    assert restore(scene, "ann", second)[0] == 200
    assert time.perf_counter() - started < 5
    assert text_of_scene(scene, "ann") == V2


def test_a_restore_that_crashed_midway_gives_the_lease_back_and_the_next_one_works(plain_rig: Rig) -> None:
    rt, _, pause = plain_rig
    scene = room(rt, ann="editor")
    first, _ = drafted(rt, scene, V1, V2)

    def crash() -> None:
        pause.on("append:start", lambda: None)
        raise Crash()

    pause.on("append:start", crash)  # the restore's update never reaches the log
    answer = call(event("POST", f"/scenes/{scene}/versions/{first}/restore", token=token("ann")))
    assert error_of(answer) == (500, "internal")
    assert text_of_scene(scene, "ann") == V2
    started = time.perf_counter()
    assert restore(scene, "ann", first)[0] == 200
    assert time.perf_counter() - started < 5
    assert text_of_scene(scene, "ann") == V1


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_restore_waiting_on_the_lease_is_answered_before_its_function_times_out(stage: str) -> None:
    from infra.app import project_context
    from infra.config import from_context

    config = from_context(project_context({"stage": stage}).get)
    timeout = config.function_options("http").timeoutSeconds or config.timeoutSeconds
    # The wait, then the restore itself (seconds for a big scene) must fit in the timeout.
    assert timeout >= RESTORE_WAIT_SECONDS + 5, (RESTORE_WAIT_SECONDS, timeout)


# -- client ids ------------------------------------------------------------------------------------


def test_a_restore_whose_fresh_client_id_is_bound_to_another_user_still_restores(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, _, _ = rig
    scene = room(rt, ann="editor", bob="editor")
    first, _ = drafted(rt, scene, V1, V2)
    taken = 0x5EED
    bob = caller(scene, "bob=", "bob")
    session.handle_message(rt, bob, awareness_frame((taken, 1, {"user": "bob"})))
    assert rt.client_ids is not None and rt.client_ids.owners(scene, [taken]) == {taken: "bob"}
    assert taken not in read_state_vector(rt.documents.load(scene).summary.state_vector)
    # The one draw in 2**32 that lands on bob's id: the only way to provoke it.
    monkeypatch.setattr(secrets, "randbelow", lambda _: taken - 1)
    before = set(read_state_vector(rt.documents.load(scene).summary.state_vector))
    status, _ = restore(scene, "ann", first)
    assert status == 200
    assert text_of_scene(scene, "ann") == V1
    (client,) = set(read_state_vector(rt.documents.load(scene).summary.state_vector)) - before
    assert client != taken and rt.client_ids.owners(scene, [client]) == {client: "ann"}
