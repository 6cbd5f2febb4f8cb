"""The strict Yjs update reader (collab/yjs_format.py) against real Yjs (Node, 13.6.33):

- everything Yjs produces is accepted (every type and content kind, merged states,
  mergeUpdates, diffs, the editing traces replayed update by update, and pycrdt's merges),
  except YXmlHook, which pycrdt misreads (shown below);
- whatever the server accepts, Yjs can apply: thousands of mutated real updates go through
  validate_update, and one Node process applies each to a fresh doc and to a doc holding
  the state it was made on, and the state the server then serves (pycrdt's merge of the
  two), and must not throw;
- F1's 15-byte update and M6's 5-byte state vector are refused, the latter at once.
"""

from __future__ import annotations

import base64
import json
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text, get_update, merge_updates

from collab.documents import EMPTY_UPDATE, validate_update
from collab.errors import BadRequest, InvalidUpdate
from collab.lib0 import var_string, var_uint
from collab.yjs_format import (
    MAX_NESTING,
    UnreadableUpdate,
    check_state,
    read_state_vector,
    read_update,
    without_clients,
)
from tests.support.yjs_node import apply_in_yjs, node

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "tests" / "data" / "traces"

# F1: one struct of client 42 at clock 0, content ref 7 (a type) under the root "scene",
# type ref 9 (yrs knows it, Yjs has typeRefs[0..6] only), and an empty delete set.
F1_UPDATE = bytes([0x01, 0x01, 0x2A, 0x00, 0x07, 0x01, 0x05]) + b"scene" + bytes([0x09, 0x00])


@dataclass(frozen=True)
class Sample:
    name: str
    base: bytes  # the state the update was made on (empty: none)
    update: bytes


def corpus(**config: Any) -> list[Sample]:
    rows = node("yjs_corpus.mjs", json.dumps(config))
    return [Sample(r["name"], base64.b64decode(r["base"]), base64.b64decode(r["update"])) for r in rows]


@pytest.fixture(scope="module")
def typed() -> list[Sample]:
    """Updates Yjs makes for every type and content kind (yjs_corpus.mjs)."""
    return corpus(types=True)


# -- what Yjs produces is accepted -----------------------------------------------------------


def test_every_yjs_type_and_content_kind_is_accepted(typed: list[Sample]) -> None:
    kinds: Counter[str] = Counter()
    hooks = [s for s in typed if s.name.startswith("xmlhook/")]
    others = [s for s in typed if s not in hooks]
    stored: list[Sample] = []  # what the server accepts, base and update
    for sample in others:
        for part in (sample.update, sample.base):
            if part:
                marks: list[tuple[str, int]] = []
                read_update(part, marks)
                found = set(content_kinds(part, marks))
                kinds.update(found)
                if "content:2" not in found:
                    validate_update(part)
                else:  # pycrdt cannot decode JSON content (Yjs 13 no longer writes it)
                    with pytest.raises(InvalidUpdate, match="cannot be decoded"):
                        validate_update(part)
        if "legacy-json/" not in sample.name or "update1" in sample.name:
            stored.append(sample)
    # The corpus reaches every content ref Yjs has and every type ref but the hook.
    assert set(kinds) >= {f"content:{ref}" for ref in range(11)} | {f"type:{r}" for r in (0, 1, 2, 3, 4, 6)}
    holding_the_hook = [s for s in hooks if s.name.endswith(("/update1", "/state", "/mergeUpdates"))]
    assert len(holding_the_hook) == 3
    for sample in holding_the_hook:
        with pytest.raises(UnreadableUpdate, match="YXmlHook"):
            validate_update(sample.update)
    # What the server serves after merging each accepted update into its state.
    served = [merge_updates(s.base, s.update) for s in stored if s.base]
    for state in served:
        check_state(state)
    results = apply_in_yjs([(s.base, s.update) for s in typed] + [(b"", m) for m in served])
    failures = [r for r in results if r["fresh"] or r["based"] or r["read"]]
    assert failures == []


def test_a_merged_xml_hook_is_unreadable_for_yjs_which_is_why_it_is_refused() -> None:
    """yrs reads an XmlHook without its name: merged into a state, the hook comes back
    without one and Yjs reads the next bytes as the name."""
    doc: Doc = Doc(client_id=7)
    doc.get("t", type=Text).insert(0, "hello world")
    hook = one_struct(7, b"\x01" + var_string("xml") + b"\x05" + var_string("h"))
    merged = merge_updates(doc.get_update(), hook)
    [result] = apply_in_yjs([(b"", merged)])
    assert result["fresh"] is not None
    with pytest.raises(UnreadableUpdate):
        check_state(merged)


def content_kinds(update: bytes, marks: list[tuple[str, int]]) -> Iterator[str]:
    for kind, pos in marks:
        if kind == "info":
            yield f"content:{update[pos] & 0x1F}"
        elif kind == "typeref":
            yield f"type:{update[pos]}"


def test_the_editing_traces_are_accepted_update_by_update() -> None:
    """Both traces replayed as Yjs clients send them (one update per transaction), their
    final states, and states merged by pycrdt as the server merges them: clownschool's
    updates compacted 500 at a time, and the final states as a pycrdt Doc encodes them."""
    samples = corpus(
        traces=[str(TRACES / "clownschool.json.gz"), str(TRACES / "automerge-paper.json.gz")], baseLimit=0
    )
    assert len(samples) > 280_000
    for sample in samples:
        read_update(sample.update)
    for sample in samples[::50]:  # pycrdt's part of validate_update costs more; a sample
        assert validate_update(sample.update)
    clownschool = [s.update for s in samples if s.name.startswith("clownschool/txn")]
    state = EMPTY_UPDATE
    for start in range(0, len(clownschool), 500):
        state = merge_updates(state, *clownschool[start : start + 500])
        check_state(state)
    check_state(get_update(state, b"\x00"))
    for name in ("automerge-paper/state", "clownschool/state"):
        check_state(reencoded_by_pycrdt(next(s.update for s in samples if s.name == name)))


def reencoded_by_pycrdt(state: bytes) -> bytes:
    """A state as yrs writes it (a pycrdt Doc's own encoding, as bench/run.py stores it)."""
    doc: Doc = Doc()
    doc.apply_update(state)
    return doc.get_update()


# -- what is refused -------------------------------------------------------------------------


def test_f1_type_ref_9_is_refused_though_pycrdt_reads_it() -> None:
    from pycrdt import get_state

    assert get_state(F1_UPDATE)  # yrs decodes it: this is why pycrdt alone is not enough
    with pytest.raises(UnreadableUpdate, match="type ref 9") as refused:
        validate_update(F1_UPDATE)
    assert refused.value.client == 42
    assert isinstance(refused.value, InvalidUpdate)
    # And Yjs really cannot read it.
    [result] = apply_in_yjs([(b"", F1_UPDATE)])
    assert "typeRefs" in (result["fresh"] or "")


def one_struct(info: int, body: bytes, client: int = 42, clock: int = 0) -> bytes:
    return var_uint(1) + var_uint(1) + var_uint(client) + var_uint(clock) + bytes([info]) + body + b"\x00"


ROOT_PARENT = b"\x01" + var_string("scene")


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (one_struct(11, ROOT_PARENT + b"\x00"), "content ref 11"),
        (one_struct(0x14, ROOT_PARENT + var_string("x")), "content ref 20"),
        (one_struct(7, ROOT_PARENT + b"\x07"), "type ref 7"),
        (one_struct(7, ROOT_PARENT + b"\x03"), "truncated"),  # XmlElement without its name
        (one_struct(4, b"\x02" + var_string("scene") + var_string("x")), "parent info 2"),
        (one_struct(4, ROOT_PARENT + b"\x02\xc3\x28"), "UTF-8"),
        (one_struct(4, ROOT_PARENT + b"\x03\xed\xa0\x80"), "UTF-8"),  # an encoded surrogate
        (one_struct(4, ROOT_PARENT + var_string("")), "length 0"),
        (one_struct(1, ROOT_PARENT + b"\x00"), "length 0"),
        (one_struct(0x80 | 4, b"\x2a\x00" + var_string("x")), "own client's clock 0"),
        (one_struct(0x40 | 4, b"\x2a\x05" + var_string("x"), clock=5), "own client's clock 5"),
        (one_struct(4, b"\x00\x2a\x00" + var_string("x")), "own client's clock 0"),
        (one_struct(0x20, b"\x05"), "flag bits on a GC"),
        (one_struct(0x4A, b"\x05"), "flag bits on a Skip"),
        (one_struct(5, ROOT_PARENT + var_string("NaN")), "not JSON"),
        (one_struct(6, ROOT_PARENT + var_string("bold") + var_string("{'a': 1}")), "not JSON"),
        (one_struct(8, ROOT_PARENT + b"\x01\x73"), "unknown Any tag 115"),
        (one_struct(8, ROOT_PARENT + b"\x01" + b"\x75\x01" * (MAX_NESTING + 1) + b"\x7f"), "nested deeper"),
        (one_struct(9, ROOT_PARENT + var_string("guid") + b"\x7e"), "not an object"),
        (
            one_struct(9, ROOT_PARENT + var_string("guid") + b"\x76\x01" + var_string("gcFilter") + b"\x78"),
            "gcFilter",
        ),
        (
            one_struct(9, ROOT_PARENT + var_string("guid") + b"\x76\x01" + var_string("gc") + b"\x7d\x01"),
            "not a boolean",
        ),
        (one_struct(0, b"\x05") + b"\x00", "trailing"),
        (one_struct(0, b"\x05")[:-1] + b"\x01\x2a\x01\x00\x00", "delete range of length 0"),
        (var_uint(2) + (var_uint(1) + b"\x2a\x00\x00\x01") * 2 + b"\x00", "two groups"),
        (var_uint(1) + var_uint(0) + b"\x2a\x00" + b"\x01\x05\x01\x00\x01", "without structs"),
        (one_struct(0, b"\xff" * 8 + b"\x01"), "integer beyond 2\\*\\*53"),
        (one_struct(1, ROOT_PARENT + var_uint(2**32)), "beyond 2\\*\\*32"),  # yrs wraps it to 0
        (one_struct(0x80 | 4, var_uint(7) + var_uint(2**32) + var_string("x")), "beyond clock 2\\*\\*32"),
        (
            one_struct(0, b"\x05")[:-1] + b"\x01\x2a\x01" + var_uint(2**32 - 1) + b"\x01",
            "beyond clock 2\\*\\*32",
        ),
        (var_uint(2**30) + b"\x00\x00\x00", "client groups declared"),
    ],
)
def test_what_yjs_cannot_read_is_refused(update: bytes, reason: str) -> None:
    with pytest.raises(UnreadableUpdate, match=reason):
        read_update(update)


def test_what_yjs_reads_but_rarely_writes_is_accepted() -> None:
    """Skip structs, legacy JSON with `undefined`, parent IDs, map keys, astral strings:
    accepted, and Yjs applies each."""
    cases = [
        one_struct(10, b"\x05"),
        one_struct(
            2, ROOT_PARENT + var_uint(3) + var_string("undefined") + var_string('{"a":[1]}') + var_string("2")
        ),
        one_struct(4 | 0x20, ROOT_PARENT + var_string("key") + var_string("😀é")),
        one_struct(4, b"\x00" + var_uint(7) + var_uint(3) + var_string("child of an item")),
        one_struct(8, ROOT_PARENT + b"\x01\x7d\x80\x01"),  # Any varInt 64
    ]
    for update in cases:
        read_update(update)
    for result in apply_in_yjs([(b"", u) for u in cases]):
        assert result["fresh"] is None
    layout = read_update(cases[2])
    assert layout.groups[0].length == 3  # "😀é" in UTF-16 code units, as JS counts: 2 + 1


# -- whatever is accepted, Yjs applies ------------------------------------------------------


class Mutator:
    """Mutations of real updates, guided by the reader's marks (info bytes, counts, type
    refs, Any tags) so that every branch of the format is reached, not only the first."""

    def __init__(self, samples: list[Sample], seed: int) -> None:
        self.samples = samples
        self.random = random.Random(seed)

    def case(self) -> tuple[str, bytes, bytes]:
        sample = self.random.choice(self.samples)
        data = bytearray(sample.update)
        marks: list[tuple[str, int]] = []
        read_update(sample.update, marks)
        kind = self.random.choice(
            [
                "bits",
                "byte",
                "truncate",
                "splice",
                "content_ref",
                "type_ref",
                "huge_count",
                "any_tag",
                "insert",
            ]
        )
        pick = self.random.choice
        if kind == "bits":
            for _ in range(self.random.randint(1, 3)):
                data[self.random.randrange(len(data))] ^= 1 << self.random.randrange(8)
        elif kind == "byte":
            data[self.random.randrange(len(data))] = pick(
                [0, 1, 0x7F, 0x80, 0xFF, self.random.randrange(256)]
            )
        elif kind == "truncate":
            del data[self.random.randrange(len(data)) :]
        elif kind == "splice":
            other = self.random.choice(self.samples).update
            data = data[: self.random.randrange(len(data) + 1)] + other[self.random.randrange(len(other)) :]
        elif kind == "insert":
            at = self.random.randrange(len(data) + 1)
            data[at:at] = bytes(self.random.randrange(256) for _ in range(self.random.randint(1, 4)))
        else:
            wanted = {"content_ref": "info", "type_ref": "typeref", "huge_count": "count", "any_tag": "any"}[
                kind
            ]
            spots = [pos for name, pos in marks if name == wanted]
            if not spots:
                return self.case()
            at = pick(spots)
            if kind == "content_ref":
                data[at] = (data[at] & 0xE0) | self.random.randrange(32)
            elif kind == "any_tag":
                data[at] = self.random.randrange(110, 130)
            else:
                end = varint_end(data, at)
                value = (
                    self.random.randrange(7, 40) if kind == "type_ref" else pick([2**30, 2**32, 2**53 - 1])
                )
                data[at:end] = var_uint(value)
        return f"{sample.name}:{kind}", sample.base, bytes(data)


def varint_end(data: bytearray, at: int) -> int:
    while at < len(data) and data[at] & 0x80:
        at += 1
    return at + 1


def test_whatever_the_server_accepts_yjs_can_apply(typed: list[Sample]) -> None:
    traces = corpus(traces=[str(TRACES / "clownschool.json.gz")], baseLimit=150)
    sources = [s for s in typed if not s.name.startswith(("xmlhook/", "legacy-json/"))]
    sources += [s for s in traces if s.base][:150]
    mutator = Mutator(sources, seed=20261201)
    cases = [mutator.case() for _ in range(5000)]
    cases += synthetic_structs(random.Random(7), 500)
    verdicts = [verdict(update) for _name, _base, update in cases]
    # Each case as sent, and for each accepted one, the state the server then serves.
    served = [
        (b"", merge_updates(base, update))
        for (_n, base, update), v in zip(cases, verdicts, strict=True)
        if v == "accepted" and base
    ]
    results = apply_in_yjs([(base, update) for _name, base, update in cases] + served)
    throws = [bool(r["fresh"] or r["based"]) for r in results]
    accepted_but_throws = [
        (name, r)
        for (name, _b, _u), r, v in zip(cases, results, verdicts, strict=False)
        if v == "accepted" and (r["fresh"] or r["based"])
    ]
    served_throws = [r for r in results[len(cases) :] if r["fresh"]]
    counts = Counter(verdicts)
    caught = sum(1 for v, t in zip(verdicts, throws, strict=False) if v == "strict" and t)
    read_errors = sum(1 for v, r in zip(verdicts, results, strict=False) if v == "accepted" and r["read"])
    print(
        f"\n{len(cases)} mutated updates: {counts['accepted']} accepted (Yjs applied all; {len(served)} "
        f"merged states served; {read_errors} read back as another type than written), "
        f"{counts['both']} refused by both readers, {counts['strict']} refused by the strict reader "
        f"only ({caught} of those make Yjs throw), {counts['pycrdt']} refused by pycrdt only"
    )
    assert accepted_but_throws == []
    assert served_throws == []
    # The fuzzing means something: much is accepted, and much that pycrdt alone would have
    # stored makes Yjs throw.
    assert counts["accepted"] > 500
    assert caught > 100


def verdict(update: bytes) -> str:
    try:
        read_update(update)
    except UnreadableUpdate:
        return "strict" if pycrdt_reads(update) else "both"
    try:
        validate_update(update)
    except InvalidUpdate:
        return "pycrdt"
    return "accepted"


def pycrdt_reads(update: bytes) -> bool:
    from pycrdt import get_state

    try:
        get_state(update)
    except ValueError:
        return False
    return True


def synthetic_structs(rng: random.Random, count: int) -> list[tuple[str, bytes, bytes]]:
    """F1's shape with random info bytes, type refs and payload bytes."""
    cases = []
    for i in range(count):
        info = rng.randrange(256)
        body = (
            ROOT_PARENT
            + bytes([rng.randrange(12)])
            + bytes(rng.randrange(256) for _ in range(rng.randrange(6)))
        )
        cases.append((f"synthetic{i}", b"", one_struct(info, body)[:-1] + b"\x00"))
    return cases


# -- slicing client groups -------------------------------------------------------------------


def test_without_clients_drops_whole_groups_and_keeps_the_delete_set(typed: list[Sample]) -> None:
    state = next(s.update for s in typed if s.name == "two-clients/state")
    layout = read_update(state)
    assert sorted(g.client for g in layout.groups) == [1, 2]
    only_a = without_clients(state, {2})
    assert [g.client for g in read_update(only_a).groups] == [1]
    assert only_a.endswith(state[layout.delete_set_start :])
    assert without_clients(state, {99}) is state
    [result] = apply_in_yjs([(b"", only_a)])
    assert result["fresh"] is None


# -- state vectors (M6) ----------------------------------------------------------------------


def test_a_5_byte_state_vector_declaring_2_30_entries_is_refused_without_allocating() -> None:
    state_vector = var_uint(2**30)
    assert len(state_vector) == 5
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(BadRequest, match="declares 1073741824 entries"):
        read_state_vector(state_vector)
    elapsed = time.perf_counter() - started
    _size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64_000
    assert elapsed < 0.5  # generous for a loaded box: yrs took 1 s and 1 GB (review M6)


def test_state_vectors_yjs_writes_are_read() -> None:
    assert read_state_vector(b"\x00") == {}
    assert read_state_vector(var_uint(2) + var_uint(7) + var_uint(10) + var_uint(2**32) + var_uint(3)) == {
        7: 10,
        2**32: 3,
    }
    too_far = [var_uint(1) + var_uint(7) + b"\xff" * 8 + b"\x01", var_uint(1) + var_uint(7) + var_uint(2**32)]
    for bad in [b"", b"\x01\x07", b"\x01\x07\x01\x00", *too_far]:
        with pytest.raises(BadRequest):
            read_state_vector(bad)
