"""A restore (collab/restore.py) with real Yjs on both sides: Node Yjs 13 builds each scene
(tests/e2e/lib/restore_check.mjs), takes a version on the way and edits on; the server
computes the restore from the two states; Node applies it on top of the scene as it is now
and reads every root: it must equal the version's, Y.Text deltas (formatting, embeds)
included. Another client's edit made before it saw the restore merges after it, in either
order, and its text is there."""

from __future__ import annotations

import base64
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, get_state

from collab.documents import validate_update
from collab.errors import CollabError, InvalidUpdate
from collab.restore import CannotRestore, restore_update
from collab.scene_content import root_kinds
from collab.yjs_format import read_state_vector, read_update
from tests.support.yjs_node import apply_in_yjs, node

SCENES = ["text", "map", "array", "xml", "roots", "trace", "kind-change"]


@dataclass(frozen=True)
class Scene:
    name: str
    kinds: dict[str, str]
    version: bytes
    current: bytes
    concurrent: bytes
    typed: str
    old_kinds: dict[str, str]


def scenes() -> dict[str, Scene]:
    rows = node("restore_check.mjs", "scenes")
    return {
        r["name"]: Scene(
            r["name"],
            r["kinds"],
            base64.b64decode(r["version"]),
            base64.b64decode(r["current"]),
            base64.b64decode(r["concurrent"]),
            r["typed"],
            r.get("oldKinds", {}),
        )
        for r in rows
    }


def check_in_yjs(cases: list[tuple[Scene, bytes]], digest: bool = False) -> dict[str, dict[str, Any]]:
    """Each (scene, restore) applied and read by real Yjs, all in one Node process."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    lines = [
        json.dumps(
            {
                "name": scene.name,
                "kinds": scene.kinds,
                "oldKinds": scene.old_kinds,
                "version": b64(scene.version),
                "current": b64(scene.current),
                "restore": b64(restore),
                "concurrent": b64(scene.concurrent),
                "digest": digest,
            }
        )
        for scene, restore in cases
    ]
    return {r["name"]: r for r in node("restore_check.mjs", "check", stdin="\n".join(lines) + "\n")}


def joined(dump: Any) -> Any:
    """`dump` with each text delta's neighbouring string runs of equal attributes joined:
    where Yjs cuts a run depends on the formatting marks a text's history left."""
    if isinstance(dump, list):
        return [joined(v) for v in dump]
    if not isinstance(dump, dict):
        return dump
    out = {k: joined(v) for k, v in dump.items()}
    for key in ("text", "xmltext"):  # a Y.Text's or an XmlText's delta (objects dump as "object")
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


def assert_same_content(restored: Any, expected: Any) -> None:
    """The restored roots equal the version's, deltas cut the same way, unless the
    version's own deltas are cut where nothing changes (marks its history left, which a
    restore does not copy): then equal once such cuts are joined."""
    if joined(expected) == expected:
        assert restored == expected
    else:
        assert joined(restored) == joined(expected)


@pytest.fixture(scope="module")
def built() -> dict[str, Scene]:
    return scenes()


@pytest.fixture(scope="module")
def restored(built: dict[str, Scene]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    updates = {name: restore_update(s.current, s.version) for name, s in built.items() if name in SCENES}
    checked = check_in_yjs([(built[name], update) for name, update in updates.items()])
    return {name: (updates[name], checked[name]) for name in updates}


def test_every_scene_was_built(built: dict[str, Scene]) -> None:
    assert set(SCENES) <= set(built)


@pytest.mark.parametrize("name", SCENES)
def test_yjs_reads_the_version_after_the_restore(
    name: str, restored: dict[str, tuple[bytes, dict[str, Any]]]
) -> None:
    update, result = restored[name]
    assert update
    assert result["error"] is None
    assert result["before"] != result["expected"]  # the scene did change since the version
    assert_same_content(result["restored"], result["expected"])


def test_a_root_whose_kind_changed_is_empty_in_its_old_kind(
    restored: dict[str, tuple[bytes, dict[str, Any]]],
) -> None:
    _, result = restored["kind-change"]
    assert result["emptied"] == {"shape": {"map": []}, "list": {"text": []}, "board": {"fragment": []}}


def test_roots_made_after_the_version_are_emptied_and_a_cleared_one_filled(
    restored: dict[str, tuple[bytes, dict[str, Any]]],
) -> None:
    _, result = restored["roots"]
    roots = result["restored"]
    assert roots["lateText"] == {"text": []}
    assert roots["lateMap"] == {"map": []}
    assert roots["lateArray"] == {"array": []}
    assert roots["lateXml"] == {"fragment": []}
    assert roots["cleared"] == {
        "text": [{"insert": "cleared later", "attributes": {"object": [["bold", True]]}}]
    }


@pytest.mark.parametrize("name", [n for n in SCENES if n != "kind-change"])
def test_an_edit_made_before_the_restore_was_seen_merges_after_it(
    name: str, built: dict[str, Scene], restored: dict[str, tuple[bytes, dict[str, Any]]]
) -> None:
    _, result = restored[name]
    assert result["error"] is None
    assert result["merged"] == result["mergedOtherOrder"]  # the server's and the client's order
    assert built[name].typed in json.dumps(result["merged"], ensure_ascii=False)


def test_an_edit_in_kept_text_stays_where_it_was_typed(
    restored: dict[str, tuple[bytes, dict[str, Any]]],
) -> None:
    # "You said you would call." is the same in the version and now: the restore keeps
    # those characters, so the concurrent insertion inside the line stays inside it.
    _, result = restored["text"]
    text = "".join(op["insert"] for op in result["merged"]["text"]["text"] if isinstance(op["insert"], str))
    assert "You said CONCURRENT-1 you would call." in text


@pytest.mark.parametrize("name", SCENES)
def test_the_restore_is_a_valid_update_under_a_new_client(
    name: str, built: dict[str, Scene], restored: dict[str, tuple[bytes, dict[str, Any]]]
) -> None:
    update, _ = restored[name]
    assert validate_update(update) is True
    layout = read_update(update)
    clients = {group.client for group in layout.groups}
    assert len(clients) <= 1
    assert not clients & set(read_state_vector(get_state(built[name].current)))
    assert all(0 < client < 2**32 for client in clients)


def test_nothing_to_restore_is_an_empty_answer(built: dict[str, Scene]) -> None:
    for scene in built.values():
        if scene.name in SCENES:
            assert restore_update(scene.version, scene.version) == b""
            assert restore_update(scene.current, scene.current) == b""
    scene = built["text"]
    doc: Doc = Doc()
    doc.apply_update(scene.current)
    doc.apply_update(restore_update(scene.current, scene.version))
    assert restore_update(doc.get_update(), scene.version) == b""


def test_the_client_id_can_be_chosen_but_not_one_the_scene_holds(built: dict[str, Scene]) -> None:
    scene = built["map"]
    update = restore_update(scene.current, scene.version, client_id=12345)
    assert {group.client for group in read_update(update).groups} == {12345}
    taken = next(iter(read_state_vector(get_state(scene.current))))
    with pytest.raises(ValueError, match="client id"):
        restore_update(scene.current, scene.version, client_id=taken)


def test_a_version_pycrdt_cannot_write_is_refused_whole(built: dict[str, Scene]) -> None:
    scene = built["xml-in-map"]
    with pytest.raises(CannotRestore, match="XmlElement"):
        restore_update(scene.current, scene.version)
    assert restore_update(scene.version, scene.version) == b""  # unchanged: nothing to write


def test_a_restore_to_an_unrelated_or_empty_state(built: dict[str, Scene]) -> None:
    # The empty scene restored to a version, and a version restored to nothing.
    scene = built["xml"]
    empty = Doc().get_update()
    fill = restore_update(empty, scene.version)
    clear = restore_update(scene.current, empty)
    results = check_in_yjs(
        [
            (Scene("fill", scene.kinds, scene.version, empty, b"", "", {}), fill),
            (Scene("clear", scene.kinds, empty, scene.current, b"", "", {}), clear),
        ]
    )
    assert results["fill"]["restored"] == results["fill"]["expected"]
    assert results["clear"]["restored"] == {"xml": {"fragment": []}}


def test_a_20_mb_scene_is_restored_in_bounded_time() -> None:
    """A long-lived screenplay (the 21 MB scene of bench/openloop.py: 4 KB pieces at random
    places, plus formatting and a map), a version of it, then a morning's editing."""
    rng = random.Random(7)
    doc: Doc = Doc(client_id=1)
    text = doc.get("script", type=Text)
    meta = doc.get("meta", type=Map)
    alphabet = "abcdefghij klmnop\n"
    with doc.transaction():
        for i in range(5120):
            piece = "".join(rng.choices(alphabet, k=4096))
            text.insert(rng.randint(0, len(text)), piece, {"bold": True} if i % 7 == 0 else {})
            if i % 100 == 0:
                meta[f"note{i}"] = piece[:40]
    version = doc.get_update()
    edits: Doc = Doc(client_id=2)
    edits.apply_update(version)
    script = edits.get("script", type=Text)
    with edits.transaction():
        for _ in range(300):  # ASCII only: byte offsets are character offsets
            at = rng.randint(0, len(script) - 100)
            if rng.random() < 0.5:
                del script[at : at + rng.randint(1, 80)]
            else:
                script.insert(at, "NEW LINE\n", {"italic": True})
        script.format(1000, 5000, {"bold": True})
        edits.get("meta", type=Map)["note0"] = "changed"
    current = edits.get_update()
    assert len(current) > 20_000_000

    started = time.perf_counter()
    update = restore_update(current, version)
    elapsed = time.perf_counter() - started
    print(f"\nrestore of a {len(current) / 1e6:.1f} MB scene: {elapsed:.2f} s, {len(update)} bytes")
    assert elapsed < 60  # measured 3-5 s on the 2-CPU dev machine
    assert len(update) < 200_000  # the changes, not the scene

    scene = Scene("big", dict(root_kinds(version)), version, current, b"", "", {})
    result = check_in_yjs([(scene, update)], digest=True)["big"]
    assert result["error"] is None
    assert result["restored"] == result["expected"]


# -- random scenes ---------------------------------------------------------------------------
# Random edits by pycrdt (the same structs Yjs writes) to every kind of root and nested type;
# a version on the way, more edits, another client's concurrent edits: checked by Yjs.

ATTRS: list[dict[str, Any]] = [
    {},
    {"bold": True},
    {"italic": True},
    {"bold": True, "color": "#f00"},
    {"link": {"href": "https://x.test"}},
    {"bold": None},
    {"heading": 2.0},
]
CHARS = "ab \n\nxé😀中"


def _boundaries(text: Any) -> list[int]:
    """pycrdt's (UTF-8 byte) index of every boundary between characters or embeds."""
    bounds = [0]
    for content, _ in text.diff():
        for char in content if isinstance(content, str) else [None]:
            bounds.append(bounds[-1] + (len(char.encode()) if char is not None else 1))
    return bounds


def _edit_text(rng: random.Random, text: Any) -> None:
    bounds = _boundaries(text)
    choice = rng.random()
    if choice < 0.45 or len(bounds) < 3:
        word = "".join(rng.choice(CHARS) for _ in range(rng.randint(1, 12)))
        text.insert(rng.choice(bounds), word, rng.choice(ATTRS))
    elif choice < 0.65:
        i = rng.randrange(len(bounds) - 1)
        j = rng.randint(i + 1, min(len(bounds) - 1, i + 10))
        del text[bounds[i] : bounds[j]]
    elif choice < 0.9:
        i = rng.randrange(len(bounds) - 1)
        j = rng.randint(i + 1, min(len(bounds) - 1, i + 15))
        attrs = {k: v for k, v in rng.choice(ATTRS[1:]).items()}
        if rng.random() < 0.3:
            attrs = {k: None for k in attrs}
        text.format(bounds[i], bounds[j], attrs)
    elif isinstance(text, Text) and rng.random() < 0.3:
        embedded: Map[Any] = Map()
        text.insert_embed(rng.choice(bounds), embedded, rng.choice(ATTRS))
        embedded["n"] = float(rng.randint(0, 3))
    else:
        text.insert_embed(rng.choice(bounds), {"image": rng.choice("xyz")}, rng.choice(ATTRS))


def _value(rng: random.Random, depth: int) -> Any:
    choice = rng.randrange(12 if depth < 2 else 8)
    plain: list[Any] = [1.0, -2.5, "s", "", True, None, b"\x00\xff", {"a": [1.0, {"b": None}]}]
    if choice < 8:
        return plain[choice]
    return [Map, Array, Text, XmlFragment][choice - 8]()


def _edit_map(rng: random.Random, target: Any, depth: int) -> None:
    keys = sorted(target.keys())  # yrs iterates a map in no fixed order
    if keys and rng.random() < 0.5:
        value = target[rng.choice(keys)]
        if isinstance(value, (Map, Array, Text, XmlFragment)) and rng.random() < 0.7:
            _edit(rng, value, depth + 1)
            return
    if keys and rng.random() < 0.25:
        del target[rng.choice(keys)]
        return
    key = rng.choice("pqrstu")
    value = _value(rng, depth)
    target[key] = value
    if not isinstance(value, (bool, float, str, bytes, dict, type(None))):
        _edit(rng, value, depth + 1)


def _edit_array(rng: random.Random, target: Any, depth: int) -> None:
    if len(target) and rng.random() < 0.4:
        value = target[rng.randrange(len(target))]
        if isinstance(value, (Map, Array, Text, XmlFragment)):
            _edit(rng, value, depth + 1)
            return
    if len(target) and rng.random() < 0.3:
        i = rng.randrange(len(target))
        del target[i : min(len(target), i + rng.randint(1, 3))]
        return
    value = _value(rng, depth)
    target.insert(rng.randint(0, len(target)), value)
    if isinstance(value, (Map, Array, Text, XmlFragment)):
        _edit(rng, value, depth + 1)


def _edit_xml(rng: random.Random, target: Any, depth: int) -> None:
    children = list(target.children)
    if children and rng.random() < 0.5:
        child = rng.choice(children)
        if isinstance(child, XmlText):
            _edit_text(rng, child) if rng.random() < 0.8 else child.attributes.__setitem__(
                "lang", rng.choice("ab")
            )
        elif rng.random() < 0.4:
            child.attributes[rng.choice(["class", "id", "n"])] = rng.choice(["x", "y", 3.0])
        elif rng.random() < 0.2 and len(list(child.attributes)):
            del child.attributes[min(dict(child.attributes.__iter__()))]
        elif depth < 3:
            _edit_xml(rng, child, depth + 1)
        return
    if children and rng.random() < 0.3:
        i = rng.randrange(len(children))
        del target.children[i : i + 1]
        return
    at = rng.randint(0, len(children))
    if rng.random() < 0.5:
        node = target.children.insert(at, XmlText())
        _edit_text(rng, node)
    else:
        target.children.insert(at, XmlElement(rng.choice(["p", "h1", "dialogue"])))


def _edit(rng: random.Random, target: Any, depth: int = 0) -> None:
    if isinstance(target, Text):
        _edit_text(rng, target)
    elif isinstance(target, Map):
        _edit_map(rng, target, depth)
    elif isinstance(target, Array):
        _edit_array(rng, target, depth)
    else:
        _edit_xml(rng, target, depth)


ROOTS = {"t": ("text", Text), "m": ("map", Map), "a": ("array", Array), "x": ("xml", XmlFragment)}


def _random_edits(rng: random.Random, doc: Doc, count: int) -> None:
    for _ in range(count):
        with doc.transaction():
            name = rng.choice(list(ROOTS))
            _edit(rng, doc.get(name, type=ROOTS[name][1]))


def _random_scene(seed: int) -> Scene:
    rng = random.Random(seed)
    doc: Doc = Doc(client_id=1000 + seed)
    _random_edits(rng, doc, rng.randint(5, 40))
    version = doc.get_update()
    _random_edits(rng, doc, rng.randint(1, 40))
    current = doc.get_update()
    other: Doc = Doc(client_id=50000 + seed)
    other.apply_update(current)
    before = other.get_state()
    _random_edits(rng, other, 3)
    other.get("t", type=Text).insert(0, "TYPED", {})
    concurrent = other.get_update(before)
    kinds = {name: kind for name, (kind, _) in ROOTS.items()}
    return Scene(f"random-{seed}", kinds, version, current, concurrent, "TYPED", {})


def test_random_scenes_restore_in_yjs() -> None:
    built = [_random_scene(seed) for seed in range(300)]
    updates = [restore_update(scene.current, scene.version) for scene in built]
    results = check_in_yjs(list(zip(built, updates, strict=True)))
    for scene, update in zip(built, updates, strict=True):
        result = results[scene.name]
        assert result["error"] is None, scene.name
        assert_same_content(result["restored"], result["expected"])
        assert result["merged"] == result["mergedOtherOrder"], scene.name
        assert "TYPED" in json.dumps(result["merged"]), scene.name
        if update:
            assert validate_update(update)


def test_a_restore_onto_mutated_states_is_valid_or_refused_clearly(built: dict[str, Scene]) -> None:
    """States a hostile editor could have had stored (mutations that pass validate_update):
    the restore is computed and valid, or refused with a collab error, in bounded time."""
    rng = random.Random(5)
    samples = [s for name, s in built.items() if name in SCENES and name != "trace"]
    restored = []
    started = time.perf_counter()
    for _ in range(1500):
        scene = rng.choice(samples)
        data = bytearray(scene.current)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        mutated = bytes(data)
        try:
            if not validate_update(mutated):
                continue
        except InvalidUpdate:
            continue
        try:
            update = restore_update(mutated, scene.version)
        except (CollabError, ValueError) as error:
            assert isinstance(error, CollabError), error  # never a bare ValueError
            continue
        if update:
            assert validate_update(update)
            restored.append((mutated, update))
    assert time.perf_counter() - started < 120
    assert len(restored) > 50
    results = apply_in_yjs(restored[:300])
    assert [r["based"] for r in results] == [None] * len(results[:300])


def test_big_array_and_xml_roots_are_restored_in_bounded_time() -> None:
    """A root array of 30,000 elements inserted at random places (as many blocks: pycrdt
    reads an array an index at a time, so the restore reads it as it loads) and a
    ProseMirror-like fragment of 5,000 paragraphs, each a little edited."""
    rng = random.Random(3)
    doc: Doc = Doc(client_id=1)
    array = doc.get("cards", type=Array)
    fragment = doc.get("prosemirror", type=XmlFragment)
    with doc.transaction():
        for i in range(30000):
            array.insert(rng.randint(0, len(array)), float(i) if i % 50 else {"card": i})
        for i in range(5000):
            text = fragment.children.append(XmlElement("paragraph")).children.append(XmlText())
            text.insert(0, "".join(rng.choices("abcdef ", k=80)), {"bold": True} if i % 5 == 0 else {})
    version = doc.get_update()
    with doc.transaction():
        for _ in range(100):
            array.insert(rng.randint(0, len(array)), "new")
        del array[500:700]
        paragraphs = list(fragment.children)
        for _ in range(50):
            rng.choice(paragraphs).children[0].insert(rng.randint(0, 70), "EDIT", {"italic": True})
        del fragment.children[100:110]
    current = doc.get_update()
    started = time.perf_counter()
    update = restore_update(current, version)
    elapsed = time.perf_counter() - started
    print(f"\nrestore of a 30,000-element array and 5,000 paragraphs: {elapsed:.2f} s, {len(update)} bytes")
    assert elapsed < 30  # measured under 1 s
    scene = Scene("big-kinds", dict(root_kinds(version)), version, current, b"", "", {})
    result = check_in_yjs([(scene, update)], digest=True)["big-kinds"]
    assert result["error"] is None
    assert result["restored"] == result["expected"]


def _content(state: bytes) -> Any:
    """Every root of a random scene, as the restore compares values (pycrdt's reading), each
    text's neighbouring string runs of equal attributes joined (as `joined` does for Yjs)."""
    from collab.restore import _key

    doc: Doc = Doc()
    doc.apply_update(state)
    return {name: _joined_key(_key(doc.get(name, type=kind))) for name, (_, kind) in ROOTS.items()}


def _joined_key(key: Any) -> Any:
    if not isinstance(key, tuple):
        return key
    if key and key[0] in ("Text", "XmlText"):
        delta: list[Any] = []
        for content, attrs in key[1]:
            if delta and content[0] == "str" == delta[-1][0][0] and attrs == delta[-1][1]:
                delta[-1] = (("str", delta[-1][0][1] + content[1]), attrs)
            else:
                delta.append((_joined_key(content), attrs))
        return (key[0], tuple(delta), *key[2:])
    return tuple(_joined_key(part) for part in key)


@pytest.mark.parametrize("fault", ["every line hash collides", "Myers gives up at once"])
def test_the_restore_stays_right_when_the_diff_degrades(fault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from collab import restore

    if fault == "every line hash collides":
        monkeypatch.setattr(restore, "hash", lambda value: 0, raising=False)
    else:
        monkeypatch.setattr(restore, "MAX_DIFF_EDITS", 0)
        monkeypatch.setattr(restore, "MAX_DIFF_STEPS", 0)
    for seed in range(60):
        scene = _random_scene(seed)
        doc: Doc = Doc()
        doc.apply_update(scene.current)
        doc.apply_update(restore_update(scene.current, scene.version))
        assert _content(doc.get_update()) == _content(scene.version), seed
