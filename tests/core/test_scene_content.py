"""What a scene holds (collab/scene_content.py): the kind of each root type, inferred from
a merged state's structs, and a Y.Text root's content, against scenes real Yjs made
(tests/e2e/lib/restore_check.mjs) and against structs written by hand for the rules Yjs
applies to parents (chains of origins, GC neighbours, IDs an update lacks, cycles)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, merge_updates

from collab.documents import validate_update
from collab.errors import InvalidUpdate
from collab.lib0 import var_string, var_uint
from collab.scene_content import read_roots, root_kinds, text_of
from collab.yjs_format import UnreadableUpdate
from tests.core.test_restore import Scene, check_in_yjs, scenes


@pytest.fixture(scope="module")
def built() -> dict[str, Scene]:
    return scenes()


def test_the_kinds_of_roots_yjs_made(built: dict[str, Scene]) -> None:
    for name in ("text", "map", "array", "xml", "trace"):
        scene = built[name]
        assert root_kinds(scene.version) == scene.kinds
        assert root_kinds(scene.current) == scene.kinds
    roots = built["roots"]
    assert root_kinds(roots.version) == {"text": "text", "cleared": "text"}
    assert root_kinds(roots.current) == {
        "text": "text",
        "cleared": "empty",  # all its text deleted: Yjs keeps nothing that says it was text
        "lateText": "text",
        "lateMap": "map",
        "lateArray": "array",
        "lateXml": "xml",
    }
    change = built["kind-change"]
    assert root_kinds(change.version) == {"shape": "text", "list": "array", "board": "map"}
    assert root_kinds(change.current) == {"shape": "map", "list": "text", "board": "xml"}


def test_text_of_is_what_yjs_to_string_gives(built: dict[str, Scene]) -> None:
    scene = built["text"]
    dumped = check_in_yjs([(scene, b"")])["text"]["before"]["text"]["text"]
    expected = "".join(op["insert"] for op in dumped if isinstance(op["insert"], str))
    assert "📞" in expected and "雨" not in expected  # emoji kept, the deleted character gone
    assert text_of(scene.current, "text") == expected


def test_text_of_a_root_that_is_not_text_or_not_there(built: dict[str, Scene]) -> None:
    roots = built["roots"]
    assert text_of(roots.current, "lateMap") is None
    assert text_of(roots.current, "lateArray") is None
    assert text_of(roots.current, "lateXml") is None
    assert text_of(roots.current, "nothing") is None
    assert text_of(roots.current, "cleared") == ""  # empty: read as an empty text
    assert text_of(roots.current, "lateText") == "late"


# -- pycrdt-made states: deleted first items, mixed roots ------------------------------------


def state(*builders: Any) -> bytes:
    """The merge of one doc per builder (each its own client), as the server stores it."""
    updates = []
    for number, build in enumerate(builders):
        doc: Doc = Doc(client_id=100 + number)
        with doc.transaction():
            build(doc)
        updates.append(doc.get_update())
    return merge_updates(*updates)


def test_a_root_whose_first_item_is_deleted_is_read_through_the_chain() -> None:
    def typed(doc: Doc) -> None:
        text = doc.get("t", type=Text)
        text.insert(0, "x")  # the only item that names the root
        text.insert(0, "y")  # names nothing: its right origin is "x"
        text.insert(2, "z")  # names nothing: its origin is "x"

    def edited(doc: Doc) -> None:
        typed(doc)
        del doc.get("t", type=Text)[1:2]

    single: Doc = Doc()
    single.apply_update(state(edited))
    assert str(single.get("t", type=Text)) == "yz"
    assert root_kinds(state(edited)) == {"t": "text"}
    assert text_of(state(edited), "t") == "yz"


def test_roots_whose_items_are_all_deleted() -> None:
    def emptied(doc: Doc) -> None:
        doc.get("t", type=Text).insert(0, "gone")
        del doc.get("t", type=Text)[0:4]
        doc.get("a", type=Array).extend([1.0, 2.0])
        del doc.get("a", type=Array)[0:2]
        doc.get("m", type=Map)["k"] = "v"
        del doc.get("m", type=Map)["k"]

    merged = state(emptied)
    # A deleted map entry keeps its key; deleted text and elements keep nothing.
    assert root_kinds(merged) == {"t": "empty", "a": "empty", "m": "map"}
    assert text_of(merged, "t") == ""
    assert text_of(merged, "m") is None


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (("text", "array"), "text"),
        (("array", "xml"), "array"),
        (("map", "array"), "array"),
        (("map", "text"), "text"),
        (("xml", "map"), "xml"),
    ],
)
def test_a_root_two_clients_wrote_as_different_kinds(kinds: tuple[str, str], expected: str) -> None:
    def writer(kind: str) -> Any:
        def build(doc: Doc) -> None:
            if kind == "text":
                doc.get("r", type=Text).insert(0, "wörds 😀")
            elif kind == "array":
                doc.get("r", type=Array).extend([1.0, "two"])
            elif kind == "map":
                doc.get("r", type=Map)["k"] = "v"
            else:
                doc.get("r", type=XmlFragment).children.append(XmlElement("p"))

        return build

    merged = state(*(writer(kind) for kind in kinds))
    assert root_kinds(merged) == {"r": expected}
    # Read as text only when it is: pycrdt reading another kind as an array can loop.
    assert (text_of(merged, "r") == "wörds 😀") is (expected == "text")


def test_read_roots_names_clients_and_formatting_marks() -> None:
    def formatted(doc: Doc) -> None:
        doc.get("t", type=Text).insert(0, "bold", {"bold": True})
        doc.get("t", type=Text).format(0, 2, {"link": "x"})

    roots = read_roots(state(formatted, lambda doc: doc.get("m", type=Map).update({"k": 1.0})))
    assert roots.kinds == {"t": "text", "m": "map"}
    assert roots.clients == {100, 101}
    assert roots.format_keys == {"bold", "link"}


# -- hand-written structs ------------------------------------------------------------------

DELETED, STRING, ANY, GC = 1, 4, 8, 0


def item(
    ref: int, content: bytes, *, origin: Any = None, right: Any = None, root: str | None = None
) -> bytes:
    info = ref | (0x80 if origin else 0) | (0x40 if right else 0)
    out = bytes([info])
    for ident in (origin, right):
        if ident:
            out += var_uint(ident[0]) + var_uint(ident[1])
    if root is not None:
        out += b"\x01" + var_string(root)
    return out + content


def group(client: int, clock: int, *structs: bytes) -> bytes:
    return var_uint(len(structs)) + var_uint(client) + var_uint(clock) + b"".join(structs)


def update(*groups: bytes) -> bytes:
    return var_uint(len(groups)) + b"".join(groups) + b"\x00"


NAMED_DELETED = group(1, 0, item(DELETED, var_uint(1), root="r"))  # makes "r" a root, says nothing


def test_items_in_a_cycle_of_origins_count_for_nothing() -> None:
    cycle = update(
        NAMED_DELETED,
        group(2, 0, item(STRING, var_string("a"), origin=(3, 0))),
        group(3, 0, item(STRING, var_string("b"), origin=(2, 0))),
    )
    started = time.perf_counter()
    assert root_kinds(cycle) == {"r": "empty"}
    assert time.perf_counter() - started < 1


def test_items_whose_neighbour_the_update_lacks_count_for_nothing() -> None:
    pending = update(NAMED_DELETED, group(2, 0, item(STRING, var_string("a"), origin=(9, 5))))
    assert root_kinds(pending) == {"r": "empty"}
    # The same item once its neighbour is there: text.
    there = update(
        group(1, 0, item(DELETED, var_uint(1), root="r")),
        group(2, 0, item(STRING, var_string("a"), origin=(1, 0))),
    )
    assert root_kinds(there) == {"r": "text"}


def test_an_item_next_to_a_gc_struct_is_garbage() -> None:
    collected = update(
        NAMED_DELETED,
        group(5, 0, bytes([GC]) + var_uint(1), item(ANY, var_uint(1) + b"\x78", origin=(5, 0))),
    )
    assert root_kinds(collected) == {"r": "empty"}


def test_a_chain_through_another_client_to_a_map_entry() -> None:
    entry = group(1, 0, bytes([DELETED | 0x20]) + b"\x01" + var_string("m") + var_string("key") + var_uint(1))
    overwrite = group(2, 0, item(ANY, var_uint(1) + b"\x78", origin=(1, 0)))  # no key of its own
    assert root_kinds(update(entry, overwrite)) == {"m": "map"}


# -- hostile bytes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00", b"\x01", b"\xff\xff\xff\xff\x0f", b"\x01\xff\xff\xff\x0f\x01\x00", b"\x00\x00\x00"],
)
def test_bytes_that_are_no_update_are_refused_at_once(bad: bytes) -> None:
    with pytest.raises(UnreadableUpdate):
        root_kinds(bad)
    with pytest.raises(InvalidUpdate):
        text_of(bad, "t")


def test_what_yjs_keeps_pending_is_not_read_as_text() -> None:
    """yrs integrates a client's structs that start past clock 0, and those after a Skip
    (a gap of a merged update) whose origin is before it; Yjs keeps them pending, waiting
    for the clocks missing: text_of shows what a browser shows."""
    item = bytes([4]) + b"\x01" + var_string("t") + var_string("ab")
    late = var_uint(1) + var_uint(1) + var_uint(5) + var_uint(1) + item + b"\x00"  # client 5 at clock 1
    skip = bytes([10]) + var_uint(2)
    after = bytes([0x84]) + var_uint(7) + var_uint(1) + var_string("cd")  # after "b", past the gap
    gapped = var_uint(1) + var_uint(3) + var_uint(7) + var_uint(0) + item + skip + after + b"\x00"
    cases = {"late": late, "gapped": gapped}
    in_yjs = check_in_yjs(
        [(Scene(name, {"t": "text"}, state, state, b"", "", {}), b"") for name, state in cases.items()]
    )
    for name, state in cases.items():
        assert validate_update(state)
        shown = "".join(op["insert"] for op in in_yjs[name]["expected"]["t"]["text"])
        assert shown == {"late": "", "gapped": "ab"}[name]
        assert text_of(state, "t") == shown, name


def test_mutated_scenes_read_or_are_refused_in_bounded_time(built: dict[str, Scene]) -> None:
    """Bytes flipped in real scenes: each is refused, or read; when it could be stored, the
    text of each of its text roots is what Yjs shows (pycrdt loads what yrs alone would
    refuse, rewritten as Yjs reads it: scene_content._as_yjs_reads)."""
    rng = random.Random(12)
    samples = [scene.current for name, scene in built.items() if name != "trace"]
    started = time.perf_counter()
    refused = read = 0
    stored: list[tuple[Scene, dict[str, str]]] = []
    for case in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            data[at] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)) :]
        mutated = bytes(data)
        try:
            kinds = root_kinds(mutated)
        except UnreadableUpdate:
            refused += 1
            continue
        read += 1
        try:
            valid = validate_update(mutated)
        except InvalidUpdate:
            continue
        if valid:  # what could be stored: reading its text must end, whatever it holds
            texts = {name: text_of(mutated, name) for name, kind in kinds.items() if kind == "text"}
            if texts:
                scene = Scene(f"m{case}", dict.fromkeys(texts, "text"), mutated, mutated, b"", "", {})
                stored.append((scene, {k: v for k, v in texts.items() if v is not None}))
    assert refused and read and len(stored) > 50
    in_yjs = check_in_yjs([(scene, b"") for scene, _ in stored])
    for scene, texts in stored:
        dumped = in_yjs[scene.name]
        assert dumped["error"] is None, dumped
        for name, text in texts.items():
            ops = dumped["expected"][name]["text"]
            assert text == "".join(op["insert"] for op in ops if isinstance(op["insert"], str)), scene.name
    assert time.perf_counter() - started < 60
