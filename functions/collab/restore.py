"""Restore a scene to a version: one Yjs update that, applied on top of the scene's state
now, makes the content of every root type equal to the version's.

Nothing is rewritten: the update is made the way a client edits, on a pycrdt Doc holding
the state now (under a client id the scene has never seen), in one transaction, so it
only adds structs and deletions, every replica integrates it like any edit, and a client
that edited concurrently merges on top of it. It changes only what differs, so an edit
made concurrently in a part the version and the scene agree on stays where it was typed:

- Y.Text (and XmlText): the common start and end are kept; between them the lines are
  matched (a patience diff: lines found once on each side anchor it, Myers' diff between
  anchors); in each run of changed lines the common characters at both ends are kept
  again, the characters between are diffed the same way (runs of equal characters
  shorter than the edits around them folded in), and what differs is deleted and the
  version's characters and embeds inserted. Then
  the formatting of the whole result is compared with the version's and formatted where
  it differs (marks deleted text left behind are removed, so toDelta() is not cut);
- Y.Map (and element attributes): keys the version lacks are deleted, differing values
  set; a nested type of the same kind on both sides is restored in place, not replaced;
- Y.Array and xml children (Y.XmlFragment, XmlElement): the same diff on whole elements;
  an element changed into one of the same kind (an XmlElement of the same tag, a Map
  into a Map...) is restored in place, others are deleted and inserted;
- a root the version lacks, or holds as another kind, is emptied (in its kind now); a
  root of kind "empty" (collab.scene_content) needs nothing.

Values are compared as Yjs tells them apart (a float is not a boolean; pycrdt reads every
JS number as a float, a BigInt as an int).

Work: read_roots of both states (one pass each), pycrdt loading both, then linear in the
text (line splitting and hashing in C), and one pass over the result's formatting. Every
diff of the restore (anchoring passes, Myers' steps) is paid from one _Budget, linear in
the lines and elements diffed: past it, or past MAX_DIFF_EDITS, a range is replaced whole
(still right, only coarser), however the scene and the version were crafted. Root
arrays are read as they load; a nested array is read an index at a time, which pycrdt
makes O(elements x blocks). Measured on the 2-CPU dev machine: a 21 MB screenplay (few
large items, 300 scattered edits since the version) in 2.7 s at 600 MB peak RSS; a 20 MB
scene of 1.6 million small items (50 texts of random keystrokes) in 7-8 s at 735 MB, the
two pycrdt Docs being most of it; a 30,000-element array with 5,000 xml paragraphs in
0.7 s (tests/core/test_restore.py).

Limits (pycrdt's): a version holding an XmlElement or XmlText directly in a map or an
array, an XmlFragment among xml children, or a subdocument or xml node embedded in a text
cannot be written: CannotRestore, and nothing is written (the update is returned whole or
not at all). A subdocument in a map or an array is restored by its guid (not its options); JS
`undefined` becomes null, a small BigInt a number, and a lone UTF-16 surrogate U+FFFD,
as pycrdt reads them.
"""

from __future__ import annotations

import secrets
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.errors import BadRequest
from collab.scene_content import Kind, Roots, apply_to, read_roots

# A range of lines (or elements) that no unique line anchors is diffed by Myers up to this
# many insertions and deletions, or while the restore's budget lasts (its cost, O((N+M)D)),
# and beyond them replaced whole.
MAX_DIFF_EDITS = 1000
MAX_DIFF_STEPS = 2_000_000
# A restore's diffs share one budget (_Budget): MAX_DIFF_STEPS, and this much per line or
# array element they are given.
WORK_PER_ELEMENT = 4

_ROOT_TYPES: dict[str, type[Any]] = {"text": Text, "map": Map, "array": Array, "xml": XmlFragment}
_SHARED = (Text, Map, Array, XmlFragment, XmlElement, XmlText)
_EMPTY_UPDATE = b"\x00\x00"


class CannotRestore(BadRequest):
    """The version holds something pycrdt cannot write (see the module docstring)."""


def restore_update(current: bytes, version: bytes, *, client_id: int | None = None) -> bytes:
    """One Yjs v1 update that, applied on top of `current` (a scene's merged state), makes
    every root type's content equal to its content in `version`, written under `client_id`
    (default: a random 32-bit id, as Yjs picks, that `current` does not hold). b"" when
    nothing differs. UnreadableUpdate if either state does not read, UnloadableState if
    pycrdt cannot load one; CannotRestore if the version holds what cannot be written;
    ValueError for a client id `current` holds."""
    now = read_roots(current)
    then = read_roots(version)
    if client_id is None:
        client_id = _fresh_client(now.clients)
    elif client_id in now.clients or not 0 < client_id < 2**53:
        raise ValueError(f"client id {client_id} is in the scene already or not a Yjs client id")
    budget = _BUDGET.set(_Budget())
    try:
        update = _restored(now, then, client_id)
    except RecursionError:  # shared types nested deeper than Python's stack
        raise CannotRestore("the scene or the version nests shared types too deeply to restore") from None
    except BaseException as error:
        # yrs reports what it cannot do by panicking; pyo3 raises that as PanicException, a
        # BaseException the route's handlers would not catch. Nothing was returned, so
        # nothing is written.
        if type(error).__name__ != "PanicException":
            raise
        raise CannotRestore(f"the CRDT library could not write this restore: {error}") from None
    finally:
        _BUDGET.reset(budget)
    return b"" if update in (b"", _EMPTY_UPDATE) else update


def _restored(now: Roots, then: Roots, client_id: int) -> bytes:
    target, target_arrays = _load(now.loadable, now.kinds, client_id)
    source, source_arrays = _load(then.loadable, then.kinds, None)
    updates: list[bytes] = []
    subscription = target.observe(lambda event: updates.append(event.update))
    try:
        with target.transaction():  # one transaction: one update
            for name in sorted(now.kinds.keys() | then.kinds.keys()):
                kinds = now.kinds.get(name, "empty"), then.kinds.get(name, "empty")
                arrays = target_arrays.get(name), source_arrays.get(name)
                _restore_root(target, source, name, *kinds, arrays, now.format_keys | then.format_keys)
    finally:
        target.unobserve(subscription)
    return b"".join(updates)


def _fresh_client(taken: frozenset[int]) -> int:
    while True:
        client = secrets.randbelow(2**32 - 1) + 1
        if client not in taken:
            return client


def _load(update: bytes, kinds: dict[str, Kind], client_id: int | None) -> tuple[Doc, dict[str, list[Any]]]:
    """A Doc holding `update`, and the elements of its array roots, read as they load:
    pycrdt reads an array an index at a time, each read a walk from its start (quadratic
    over a big array), while the loading transaction's event lists them all at once."""
    doc: Doc = Doc(client_id=client_id) if client_id is not None else Doc()
    elements: dict[str, list[Any]] = {}
    watched = []
    for name, kind in kinds.items():
        if kind == "array":
            root = doc.get(name, type=Array)
            watched.append((root, root.observe(_collector(elements, name))))
    apply_to(doc, update)
    for root, subscription in watched:
        root.unobserve(subscription)
    return doc, elements


def _collector(elements: dict[str, list[Any]], name: str) -> Callable[[Any], None]:
    # One parameter: pycrdt passes a callback as many arguments as it declares.
    def take(event: Any) -> None:
        if all("insert" in op for op in event.delta):  # a new doc's: nothing but insertions
            elements[name] = [value for op in event.delta for value in op["insert"]]

    return take


def _restore_root(
    target: Doc,
    source: Doc,
    name: str,
    now: Kind,
    then: Kind,
    arrays: tuple[list[Any] | None, list[Any] | None],
    marks: frozenset[str],
) -> None:
    if now != "empty" and now != then:
        _clear(target.get(name, type=_ROOT_TYPES[now]))
    if then == "array":
        # None where no event came (nothing loaded into that root): _sync_array reads it.
        now_elements = arrays[0] if now == "array" else []
        _sync_array(
            target.get(name, type=Array), source.get(name, type=Array), marks, now_elements, arrays[1]
        )
    elif then != "empty":
        _sync(target.get(name, type=_ROOT_TYPES[then]), source.get(name, type=_ROOT_TYPES[then]), marks)


def _clear(root: Any) -> None:
    if isinstance(root, Map):
        for key in sorted(root.keys()):
            del root[key]
    elif isinstance(root, XmlFragment):
        del root.children[:]
    elif len(root):
        del root[:]


def _sync(target: Any, source: Any, marks: frozenset[str]) -> None:
    """Make shared type `target` (in the scene's doc) hold what `source` (of the same kind,
    in the version's doc) holds. `marks`: every attribute name the scene's and the
    version's formatting marks use (_sync_text)."""
    if isinstance(target, (Text, XmlText)):
        _sync_text(target, source, marks)
    elif isinstance(target, Map):
        _sync_map(target, source, marks)
    elif isinstance(target, Array):
        _sync_array(target, source, marks)
    if isinstance(target, (XmlElement, XmlText)):
        _sync_attributes(target, source)
    if isinstance(target, (XmlFragment, XmlElement)):
        _sync_children(target, source, marks)


# -- values ----------------------------------------------------------------------------------


def _key(value: Any) -> Hashable:
    """What tells two values apart in Yjs (hashable): types, then content."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):  # a BigInt (pycrdt reads JS numbers as floats)
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())  # NaN equals itself, -0.0 is not 0.0
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, (bytes, bytearray)):
        return ("bytes", bytes(value))
    if isinstance(value, list):
        return ("list", tuple(map(_key, value)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _key(v)) for k, v in value.items())))
    if isinstance(value, (Text, XmlText)):
        delta = tuple((_key(content), _key(attrs or {})) for content, attrs in value.diff())
        if isinstance(value, Text):
            return ("Text", delta)
        return ("XmlText", delta, _key(_attributes(value)))
    if isinstance(value, XmlElement):
        children = tuple(map(_key, value.children))
        return ("XmlElement", value.tag, _key(_attributes(value)), children)
    if isinstance(value, XmlFragment):
        return ("XmlFragment", tuple(map(_key, value.children)))
    if isinstance(value, Map):
        return ("Map", tuple((k, _key(v)) for k, v in _entries(value).items()))
    if isinstance(value, Array):
        return ("Array", tuple(map(_key, _elements(value))))
    if isinstance(value, Doc):
        return ("Doc", value.guid)
    raise CannotRestore(f"the version holds a value restore cannot compare ({type(value).__name__})")


def _attributes(node: XmlElement | XmlText) -> dict[str, Any]:
    # The view iterates (name, value) pairs but declares no __iter__ that says so.
    pairs: Iterable[tuple[str, Any]] = node.attributes.__iter__()
    return dict(pairs)


def _same_kind(a: Any, b: Any) -> bool:
    """Whether `a` can be restored in place to `b` (the same kind of shared type)."""
    if type(a) is not type(b) or not isinstance(a, _SHARED):
        return False
    return not isinstance(a, XmlElement) or a.tag == b.tag


def _plain(value: Any) -> Any:
    """A value read from the version, as pycrdt takes it to write (bytes, not bytearray)."""
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _empty_like(value: Any) -> Any:
    """A new, empty shared type of `value`'s kind (filled by _sync once integrated), a new
    subdocument of its guid, or the plain value."""
    if isinstance(value, XmlElement):
        return XmlElement(value.tag)
    if isinstance(value, _SHARED):
        return type(value)()
    if isinstance(value, Doc):
        return Doc(guid=value.guid)
    return _plain(value)


def _fill(inserted: Any, value: Any, marks: frozenset[str]) -> None:
    if isinstance(inserted, _SHARED):
        _sync(inserted, value, marks)


def _refuse_xml_node(value: Any, where: str) -> None:
    if isinstance(value, (XmlElement, XmlText)):
        raise CannotRestore(
            f"the version holds an {type(value).__name__} in {where}, which pycrdt cannot write"
        )


# -- maps and attributes ---------------------------------------------------------------------


def _entries(map_: Map) -> dict[str, Any]:
    # Not map_.items(): on a state no client wrote (which the strict reader admits), yrs
    # can list a key it then says it does not hold.
    with map_.doc.transaction():
        return {key: map_[key] for key in sorted(map_.keys()) if key in map_}


def _sync_map(target: Map, source: Map, marks: frozenset[str]) -> None:
    now = _entries(target)
    then = _entries(source)
    for key in sorted(now.keys() - then.keys()):
        del target[key]
    for key in sorted(then):
        value = then[key]
        if key in now:
            # A type of the same kind is restored in place, which writes nothing where the
            # two are equal: comparing their _key first would read the whole subtree at
            # every level of the path down to a change (O(depth x size)).
            if _same_kind(now[key], value):
                _sync(now[key], value, marks)
                continue
            if _key(now[key]) == _key(value):
                continue
        _refuse_xml_node(value, "a map")
        new = _empty_like(value)
        target[key] = new
        _fill(new, value, marks)


def _sync_attributes(target: XmlElement | XmlText, source: XmlElement | XmlText) -> None:
    now = _attributes(target)
    then = _attributes(source)
    for key in sorted(now.keys() - then.keys()):
        del target.attributes[key]
    for key in sorted(then):
        if key not in now or _key(now[key]) != _key(then[key]):
            target.attributes[key] = _plain(then[key])


# -- arrays and xml children -----------------------------------------------------------------


def _elements(array: Array) -> list[Any]:
    with array.doc.transaction():
        return [array[i] for i in range(len(array))]


def _sync_array(
    target: Array,
    source: Array,
    marks: frozenset[str],
    now: list[Any] | None = None,
    then: list[Any] | None = None,
) -> None:
    """`now` and `then`: the elements, when already read (_load)."""

    def insert(index: int, value: Any) -> None:
        _refuse_xml_node(value, "an array")
        new = _empty_like(value)
        target.insert(index, new)
        _fill(new, value, marks)

    def remove(index: int, count: int) -> None:
        del target[index : index + count]

    if now is None:
        now = _elements(target)
    if then is None:
        then = _elements(source)
    _sync_sequence(now, then, insert, remove, marks)


def _sync_children(
    target: XmlFragment | XmlElement, source: XmlFragment | XmlElement, marks: frozenset[str]
) -> None:
    def insert(index: int, value: Any) -> None:
        if not isinstance(value, (XmlElement, XmlText)):
            raise CannotRestore(f"the version holds an {type(value).__name__} among xml children")
        _fill(target.children.insert(index, _empty_like(value)), value, marks)

    def remove(index: int, count: int) -> None:
        del target.children[index : index + count]

    _sync_sequence(list(target.children), list(source.children), insert, remove, marks)


def _sync_sequence(
    now: list[Any],
    then: list[Any],
    insert: Callable[[int, Any], None],
    remove: Callable[[int, int], None],
    marks: frozenset[str],
) -> None:
    for i1, i2, j1, j2 in reversed(_hunks([_key(v) for v in now], [_key(v) for v in then])):
        paired = 0  # leading elements restored in place
        while i1 + paired < i2 and j1 + paired < j2 and _same_kind(now[i1 + paired], then[j1 + paired]):
            _sync(now[i1 + paired], then[j1 + paired], marks)
            paired += 1
        if i2 > i1 + paired:
            remove(i1 + paired, i2 - i1 - paired)
        # Last first, each at the run's start: inserted in order (each after the one before)
        # yrs's transaction grows quadratically (8,000 numbers: 2.2 s, 1.5 GB); this way
        # 20,000 take 40 ms. Every element still lands where the version has it.
        for value in reversed(then[j1 + paired : j2]):
            insert(i1 + paired, value)


# -- the diff ------------------------------------------------------------------------------


Hunk = tuple[int, int, int, int]  # a[i1:i2] is replaced by b[j1:j2]


class _Budget:
    """What is left of a restore's diffing work: MAX_DIFF_STEPS, plus WORK_PER_ELEMENT for
    each line and array element given to a diff. An anchoring pass costs the size of its
    range, a Myers step one, a stray mark's clean-up one per attribute name; a range the
    budget cannot pay for is one hunk (replaced whole: still right, only coarser). So however a scene and a version are crafted (ranges no line anchors,
    one anchor per level, a thousand roots), a restore's diffs cost O(size), not more."""

    def __init__(self) -> None:
        self.left = MAX_DIFF_STEPS

    def spend(self, work: int) -> bool:
        if work > self.left:
            return False
        self.left -= work
        return True


_BUDGET: ContextVar[_Budget] = ContextVar("restore_budget")


def _hunks(a: Sequence[Hashable], b: Sequence[Hashable], *, grant: bool = True) -> list[Hunk]:
    """The runs where `a` and `b` differ, in order. Patience diff: the common ends are
    trimmed, elements found once in each side anchor the match (their longest increasing
    run), and the ranges between anchors are diffed the same way; a range without such an
    element goes to Myers' diff, or is one hunk if that would cost more than
    MAX_DIFF_EDITS edits or what is left of the restore's _Budget, to which the elements
    add theirs if `grant` (lines and array elements; not the characters of changed lines,
    which only refine what the line diff found)."""
    budget = _BUDGET.get(None) or _Budget()
    if grant:
        budget.left += WORK_PER_ELEMENT * (len(a) + len(b))
    hunks: list[Hunk] = []
    ranges = [(0, len(a), 0, len(b))]
    while ranges:
        a0, a1, b0, b1 = ranges.pop()
        while a0 < a1 and b0 < b1 and a[a0] == b[b0]:
            a0 += 1
            b0 += 1
        while a1 > a0 and b1 > b0 and a[a1 - 1] == b[b1 - 1]:
            a1 -= 1
            b1 -= 1
        if a0 == a1 and b0 == b1:
            continue
        if a0 == a1 or b0 == b1 or not budget.spend(a1 - a0 + b1 - b0):
            hunks.append((a0, a1, b0, b1))  # only insertions or deletions, or past the budget
            continue
        anchors = _anchors(a, a0, a1, b, b0, b1)
        if anchors:
            between = []
            for i, j in anchors:
                between.append((a0, i, b0, j))
                a0, b0 = i + 1, j + 1
            between.append((a0, a1, b0, b1))
            ranges.extend(reversed(between))  # popped in order
            continue
        ids: dict[Hashable, int] = {}
        found, steps = _myers(
            [ids.setdefault(x, len(ids)) for x in a[a0:a1]],
            [ids.setdefault(x, len(ids)) for x in b[b0:b1]],
            budget.left,
        )
        budget.spend(steps)
        if found is None:
            hunks.append((a0, a1, b0, b1))
        else:
            hunks.extend((i1 + a0, i2 + a0, j1 + b0, j2 + b0) for i1, i2, j1, j2 in found)
    return hunks


def _anchors(
    a: Sequence[Hashable], a0: int, a1: int, b: Sequence[Hashable], b0: int, b1: int
) -> list[tuple[int, int]]:
    """Pairs (i, j) of elements found exactly once in a[a0:a1] and in b[b0:b1], equal,
    forming the longest run increasing in both i and j."""
    once_a: dict[Hashable, int] = {}
    for i in range(a0, a1):
        once_a[a[i]] = -1 if a[i] in once_a else i
    once_b: dict[Hashable, int] = {}
    for j in range(b0, b1):
        once_b[b[j]] = -1 if b[j] in once_b else j
    # In the order of i (a dict keeps its first insertion's place).
    pairs = [(i, once_b[x]) for x, i in once_a.items() if i >= 0 and once_b.get(x, -1) >= 0]
    pairs.sort()
    # Longest increasing run of j (patience sorting, with a link to the previous pile).
    tops: list[int] = []  # the j on top of each pile
    top_index: list[int] = []
    previous = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        pile = bisect_left(tops, j)
        if pile == len(tops):
            tops.append(j)
            top_index.append(index)
        else:
            tops[pile] = j
            top_index[pile] = index
        previous[index] = top_index[pile - 1] if pile else -1
    run: list[tuple[int, int]] = []
    index = top_index[-1] if top_index else -1
    while index >= 0:
        run.append(pairs[index])
        index = previous[index]
    run.reverse()
    return run


def _myers(a: list[int], b: list[int], max_steps: int) -> tuple[list[Hunk] | None, int]:
    """Myers' greedy diff (1986), and the steps it took; None past MAX_DIFF_EDITS edits or
    `max_steps` steps."""
    n, m = len(a), len(b)
    frontier = {1: 0}  # diagonal k = x - y -> the furthest x reached on it
    trace: list[dict[int, int]] = []
    steps = 0
    for d in range(MAX_DIFF_EDITS + 1):
        trace.append(dict(frontier))
        steps += d  # the frontier's copy
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and frontier[k - 1] < frontier[k + 1]):
                x = frontier[k + 1]  # down: an insertion from b
            else:
                x = frontier[k - 1] + 1  # right: a deletion from a
            y = x - k
            start = x
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            steps += x - start + 1
            frontier[k] = x
            if x >= n and y >= m:
                return _hunks_from_trace(trace, n, m), steps
        if steps > max_steps:
            return None, steps
    return None, steps


def _hunks_from_trace(trace: list[dict[int, int]], n: int, m: int) -> list[Hunk]:
    """Walk back from (n, m) through the frontiers: each step ends in a diagonal run of
    equal elements; the gaps between those runs are the hunks."""
    equal: list[tuple[int, int, int]] = []  # (x, y, length), last first
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        frontier = trace[d]
        k = x - y
        previous_k = k + 1 if k == -d or (k != d and frontier[k - 1] < frontier[k + 1]) else k - 1
        previous_x = frontier[previous_k]
        previous_y = previous_x - previous_k
        run = min(x - previous_x, y - previous_y)
        if run > 0:
            equal.append((x - run, y - run, run))
        x, y = previous_x, previous_y
    hunks: list[Hunk] = []
    at_a = at_b = 0
    for run_x, run_y, length in reversed(equal):
        if run_x > at_a or run_y > at_b:
            hunks.append((at_a, run_x, at_b, run_y))
        at_a, at_b = run_x + length, run_y + length
    if at_a < n or at_b < m:
        hunks.append((at_a, n, at_b, m))
    return hunks


# -- text ------------------------------------------------------------------------------------

# An embed stands in the flattened text as one character: one byte, as pycrdt counts it.
_EMBED = "\x00"


@dataclass
class _Segment:
    start: int  # in code points of _Flat.plain
    end: int
    content: Any  # the str, or the embedded value
    attrs: dict[str, Any]
    attrs_key: Hashable
    embed_key: Hashable | None  # None for text


class _Flat:
    """A text's delta as one string (embeds as _EMBED) and its segments."""

    def __init__(self, delta: list[tuple[Any, dict[str, Any] | None]]) -> None:
        parts: list[str] = []
        self.segments: list[_Segment] = []
        at = 0
        for content, attrs in delta:
            attrs = attrs or {}
            if isinstance(content, str):
                if not content:
                    continue
                parts.append(content)
                segment = _Segment(at, at + len(content), content, attrs, _key(attrs), None)
            else:
                parts.append(_EMBED)
                segment = _Segment(at, at + 1, content, attrs, _key(attrs), _key(content))
            self.segments.append(segment)
            at = segment.end
        self.plain = "".join(parts)
        self.starts = [s.start for s in self.segments]
        self.embeds = [s.start for s in self.segments if s.embed_key is not None]

    def segment_at(self, position: int) -> int:
        return bisect_right(self.starts, position) - 1

    def embed_key(self, position: int) -> Hashable | None:
        segment = self.segments[self.segment_at(position)]
        return segment.embed_key if segment.start == position else None

    def embeds_in(self, start: int, end: int) -> list[int]:
        return self.embeds[bisect_left(self.embeds, start) : bisect_left(self.embeds, end)]

    def pieces(self, start: int, end: int) -> list[tuple[Any, dict[str, Any], Hashable | None]]:
        """(content, attrs, embed key) of plain[start:end], split at segment bounds."""
        out = []
        index = self.segment_at(start) if start < len(self.plain) else len(self.segments)
        while index < len(self.segments) and self.segments[index].start < end:
            segment = self.segments[index]
            if segment.embed_key is not None:
                out.append((segment.content, segment.attrs, segment.embed_key))
            else:
                lo = max(start, segment.start) - segment.start
                hi = min(end, segment.end) - segment.start
                out.append((segment.content[lo:hi], segment.attrs, None))
            index += 1
        return out

    def attrs_runs(self, start: int, end: int) -> list[tuple[int, int, _Segment]]:
        """(start, end, segment) of each segment's part in plain[start:end]."""
        end = min(end, len(self.plain))
        if start >= end:
            return []
        index = self.segment_at(start)
        out = []
        while index < len(self.segments) and self.segments[index].start < end:
            segment = self.segments[index]
            out.append((max(start, segment.start), min(end, segment.end), segment))
            index += 1
        return out


@dataclass(frozen=True)
class _Format:
    start: int  # in the scene's text (code points)
    end: int
    attrs: dict[str, Any]


@dataclass(frozen=True)
class _Replace:
    start: int  # the scene's text [start, end) becomes the version's [from_, to)
    end: int
    from_: int
    to: int


def _sync_text(target: Text | XmlText, source: Text | XmlText, marks: frozenset[str]) -> None:
    """Two passes. The characters: the runs that differ are replaced, right to left (so
    that positions keep their meaning). Then the formatting, read again and compared with
    the version's over the whole text, which now has the version's characters: yrs's
    insertion can change the attributes of the characters after it (when it lands next to
    a formatting mark), so formatting planned before it would be wrong."""
    now = _Flat(target.diff())
    then = _Flat(source.diff())
    replaces: list[_Replace] = []
    _plan(now, then, replaces)
    # Right to left; at one position, a replacement before an insertion there, and of two
    # insertions the later in the version first, so that each lands before the one after.
    replaces.sort(key=lambda op: (op.start, op.end, op.from_), reverse=True)
    offsets = _byte_offsets(now.plain, {p for op in replaces for p in (op.start, op.end)})
    for op in replaces:
        _replace(target, then, op, offsets[op.start], offsets[op.end], marks)
    after = _Flat(target.diff()) if replaces else now
    if after.plain != then.plain:  # the plan or pycrdt went wrong: stop, nothing is written
        raise AssertionError("restoring a text did not give the version's characters")
    formats: list[_Format] = []
    _reformat(after, then, 0, 0, len(then.plain), formats)
    _apply_formats(target, then, formats)
    if replaces or formats:
        _apply_formats(target, then, _stray_marks(_Flat(target.diff()), then, marks))


def _apply_formats(target: Text | XmlText, then: _Flat, formats: list[_Format]) -> None:
    offsets = _byte_offsets(then.plain, {p for op in formats for p in (op.start, op.end)})
    for op in formats:
        target.format(offsets[op.start], offsets[op.end], op.attrs)


def _stray_marks(final: _Flat, then: _Flat, marks: frozenset[str]) -> list[_Format]:
    """Formats that remove the marks left between two characters that differ in nothing.
    yrs leaves the formatting marks of deleted text in place (Yjs removes them), and a
    mark that opens and closes around nothing still cuts toDelta() in two where the
    version's is whole. Formatting the characters either side with the attributes they
    have removes every mark of those names between them and adds none; the names are
    all the scene's and the version's marks use, as a stray mark's is not visible.

    Each cut costs the restore's _Budget one unit per name: past it the remaining cuts
    stay (the text and its formatting are the version's; only toDelta() is cut where the
    version's is not), so many cuts times many names cannot make it quadratic."""
    if not marks:
        return []
    cuts = set(final.starts) - set(then.starts)
    budget = _BUDGET.get(None) or _Budget()
    formats = []
    for cut in sorted(cuts):
        if not budget.spend(len(marks)):
            break
        attrs = then.segments[then.segment_at(cut)].attrs
        formats.append(_Format(cut - 1, cut + 1, {name: _plain(attrs.get(name)) for name in sorted(marks)}))
    return formats


def _replace(
    target: Text | XmlText, then: _Flat, op: _Replace, start: int, end: int, marks: frozenset[str]
) -> None:
    """now[op.start:op.end] (bytes [start, end)) becomes then[op.from_:op.to]."""
    if end > start:
        del target[start:end]
    at = start
    for content, attrs, embed_key in then.pieces(op.from_, op.to):
        if embed_key is None:
            target.insert(at, content, _plain(attrs))
            at += len(content.encode("utf-8", "surrogatepass"))
            continue
        if isinstance(content, Doc):
            raise CannotRestore("the version embeds a subdocument in a text")
        if isinstance(content, (XmlElement, XmlFragment, XmlText)):
            # pycrdt's Text inserts array, map and text embeds only.
            raise CannotRestore(f"the version embeds an {type(content).__name__} in a text")
        new = _empty_like(content)
        target.insert_embed(at, new, _plain(attrs))
        _fill(new, content, marks)
        at += 1


def _byte_offsets(plain: str, positions: set[int]) -> dict[int, int]:
    """Code-point positions of `plain` as pycrdt's text indices (UTF-8 bytes)."""
    if plain.isascii():
        return {p: p for p in positions}
    offsets: dict[int, int] = {}
    previous = total = 0
    for position in sorted(positions):
        total += len(plain[previous:position].encode("utf-8", "surrogatepass"))
        offsets[position] = total
        previous = position
    return offsets


def _plan(now: _Flat, then: _Flat, ops: list[_Replace]) -> None:
    """The replacements that turn now.plain into then.plain: the common ends are kept, the
    lines between are matched, and each changed run of lines keeps its common ends again
    (formatting is compared afterwards, by _sync_text)."""
    n, m = len(now.plain), len(then.plain)
    prefix = _prefix_length(now.plain, 0, then.plain, 0, min(n, m))
    suffix = _suffix_length(now.plain, n, then.plain, m, min(n, m) - prefix)
    _keep(now, then, 0, 0, prefix, ops)
    _keep(now, then, n - suffix, m - suffix, suffix, ops)
    a0, a1, b0, b1 = prefix, n - suffix, prefix, m - suffix
    if a0 == a1 or b0 == b1:
        if a0 < a1 or b0 < b1:
            ops.append(_Replace(a0, a1, b0, b1))
        return
    lines_a, keys_a = _lines(now.plain, a0, a1)
    lines_b, keys_b = _lines(then.plain, b0, b1)
    at_a = at_b = 0
    for i1, i2, j1, j2 in [*_hunks(keys_a, keys_b), (len(keys_a), len(keys_a), len(keys_b), len(keys_b))]:
        # Lines matched by their hashes: equal unless two hashes collide, then changed.
        kept_a, kept_b, length = lines_a[at_a], lines_b[at_b], lines_a[i1] - lines_a[at_a]
        if now.plain[kept_a : kept_a + length] == then.plain[kept_b : kept_b + length]:
            _keep(now, then, kept_a, kept_b, length, ops)
        else:
            _plan_run(now, then, kept_a, lines_a[i1], kept_b, lines_b[j1], ops)
        if i2 > i1 or j2 > j1:
            _plan_run(now, then, lines_a[i1], lines_a[i2], lines_b[j1], lines_b[j2], ops)
        at_a, at_b = i2, j2


def _plan_run(now: _Flat, then: _Flat, a0: int, a1: int, b0: int, b1: int, ops: list[_Replace]) -> None:
    """now.plain[a0:a1] becomes then.plain[b0:b1], changed lines: their common ends kept,
    the characters between diffed (within the restore's budget), so that what the two
    share in the middle, and any edit typed there concurrently, stays where it is."""
    limit = min(a1 - a0, b1 - b0)
    prefix = _prefix_length(now.plain, a0, then.plain, b0, limit)
    suffix = _suffix_length(now.plain, a1, then.plain, b1, limit - prefix)
    _keep(now, then, a0, b0, prefix, ops)
    _keep(now, then, a1 - suffix, b1 - suffix, suffix, ops)
    a0, a1, b0, b1 = a0 + prefix, a1 - suffix, b0 + prefix, b1 - suffix
    if a0 == a1 or b0 == b1:
        if a0 < a1 or b0 < b1:
            ops.append(_Replace(a0, a1, b0, b1))
        return
    at_a = at_b = 0
    for i1, i2, j1, j2 in _coarsened(_hunks(now.plain[a0:a1], then.plain[b0:b1], grant=False)):
        _keep(now, then, a0 + at_a, b0 + at_b, i1 - at_a, ops)
        ops.append(_Replace(a0 + i1, a0 + i2, b0 + j1, b0 + j2))
        at_a, at_b = i2, j2
    _keep(now, then, a0 + at_a, b0 + at_b, a1 - a0 - at_a, ops)


def _coarsened(hunks: list[Hunk]) -> list[Hunk]:
    """Character hunks with each run of equal characters shorter than the edits on both
    sides of it folded into them: a word rewritten is replaced as a word, not letter by
    letter around the few it shares with the new one (diff-match-patch's semantic clean-up,
    in one pass)."""
    out: list[Hunk] = []
    for hunk in hunks:
        if out:
            i1, i2, j1, j2 = out[-1]
            gap = hunk[0] - i2
            if gap < max(i2 - i1, j2 - j1) and gap < max(hunk[1] - hunk[0], hunk[3] - hunk[2]):
                out[-1] = (i1, hunk[1], j1, hunk[3])
                continue
        out.append(hunk)
    return out


_LINES_BLOCK = 1 << 20  # a text is split into lines a megabyte at a time


def _lines(plain: str, start: int, end: int) -> tuple[array[int], list[int]]:
    """plain[start:end] cut after each newline: the lines' starts (then `end`), and a hash
    of each line, which the diff compares (a 20 MB text has a million lines: their hashes
    take a tenth of the lines' memory)."""
    bounds = array("q", [start])
    keys: list[int] = []
    at = start
    while at < end:
        cut = end if end - at <= _LINES_BLOCK else plain.rfind("\n", at, at + _LINES_BLOCK) + 1
        if cut <= at:  # a line longer than the block
            cut = plain.find("\n", at + _LINES_BLOCK, end) + 1 or end
        lines = plain[at:cut].split("\n")
        last = lines.pop()  # "" after a final newline, else the end's unfinished line
        for line in lines:
            keys.append(hash(line))
            at += len(line) + 1
            bounds.append(at)
        if last:
            keys.append(hash((last,)))  # unlike the same characters with a newline
            at += len(last)
            bounds.append(at)
    return bounds, keys


def _keep(now: _Flat, then: _Flat, a0: int, b0: int, length: int, ops: list[_Replace]) -> None:
    """now.plain[a0:a0+length] equals then.plain[b0:b0+length], so it is kept (its
    formatting is compared later), but for an embed that differs from the version's (or
    stands where the version has a NUL character, or the reverse): it is replaced."""
    if length <= 0:
        return
    embeds = {p - a0 for p in now.embeds_in(a0, a0 + length)} | {
        p - b0 for p in then.embeds_in(b0, b0 + length)
    }
    for offset in sorted(embeds):
        if now.embed_key(a0 + offset) != then.embed_key(b0 + offset):
            ops.append(_Replace(a0 + offset, a0 + offset + 1, b0 + offset, b0 + offset + 1))


_BLOCK = 4096  # compared a block at a time: string comparison runs in C


def _prefix_length(a: str, a0: int, b: str, b0: int, limit: int) -> int:
    length = 0
    while (
        length + _BLOCK <= limit
        and a[a0 + length : a0 + length + _BLOCK] == b[b0 + length : b0 + length + _BLOCK]
    ):
        length += _BLOCK
    while length < limit and a[a0 + length] == b[b0 + length]:
        length += 1
    return length


def _suffix_length(a: str, a1: int, b: str, b1: int, limit: int) -> int:
    length = 0
    while (
        length + _BLOCK <= limit
        and a[a1 - length - _BLOCK : a1 - length] == b[b1 - length - _BLOCK : b1 - length]
    ):
        length += _BLOCK
    while length < limit and a[a1 - length - 1] == b[b1 - length - 1]:
        length += 1
    return length


def _reformat(now: _Flat, then: _Flat, a0: int, b0: int, length: int, ops: list[_Format]) -> None:
    """Format ops where now[a0:a0+length] and then[b0:b0+length], equal content, differ in
    formatting: the version's attributes set, the others removed (None)."""
    if length <= 0:
        return
    bounds = {a0, a0 + length}
    bounds.update(start for start, _, _ in now.attrs_runs(a0, a0 + length))
    bounds.update(start - b0 + a0 for start, _, _ in then.attrs_runs(b0, b0 + length))
    edges = sorted(bounds)
    for start, end in pairwise(edges):
        old = now.segments[now.segment_at(start)]
        new = then.segments[then.segment_at(start - a0 + b0)]
        if old.attrs_key == new.attrs_key:
            continue
        change = {
            name: _plain(new.attrs.get(name))
            for name in sorted(old.attrs.keys() | new.attrs.keys())
            if name not in old.attrs
            or name not in new.attrs
            or _key(old.attrs[name]) != _key(new.attrs[name])
        }
        if ops and isinstance(ops[-1], _Format) and ops[-1].end == start and ops[-1].attrs == change:
            ops[-1] = _Format(ops[-1].start, end, change)
        else:
            ops.append(_Format(start, end, change))
