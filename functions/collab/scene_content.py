"""What a scene holds, read from its merged state: its root types, the kind of each, and
the content of a Y.Text root (`GET /scenes/{id}?text=NAME`).

A Yjs update does not say which kind a root type is: a browser decides that when it calls
`doc.getText(name)` or `doc.getMap(name)`. So the kind is inferred from the structs whose
parent is the root, as Yjs would integrate them (Item.getMissing, yjs/src/structs/Item.js):

- only the first item of a run names its parent; one with an origin (or only a right
  origin) takes its parent and parentSub from the item left of it (else right of it), and
  one next to a GC struct is itself garbage. So parents are resolved along those chains
  (each struct once; a cycle or an ID the update lacks leaves the struct unresolved: Yjs
  would keep it pending and show nothing of it). _resolve says where this departs from
  Yjs, for states neither Yjs nor yrs writes;
- an item with a parentSub is a map entry; String and Embed content is text, Format
  content a mark; XmlElement, XmlText (and XmlHook) types are xml nodes; anything else
  (Any, Binary, JSON, a subdocument, another type, an XmlFragment too) is an array element;
- Deleted content (what is left of a deleted item) says nothing but whether it was a map
  entry, so a root is judged by its live items first and by its deleted ones only when it
  has no live item.

Items Yjs turns into GC structs (an item next to a GC struct, on either side, or under one
or under an item that is not a type), and those it keeps pending for clocks the state
lacks (a client's structs that start past clock 0 or follow a Skip struct), with all that
hangs from them, count for nothing and are rewritten as GC structs in the bytes pycrdt
loads (`_as_yjs_reads`): yrs refuses some of them and shows others no browser shows.

A root's kind (`KINDS`), from those items, in this order:
- "text" if one is text, String or Embed content (a Y.Text also holds types it embeds and
  ignores other content);
- "array" if one is an element that is not an xml node (an xml fragment's children are
  xml nodes only: pycrdt lists nothing of a mixed one);
- "xml" if they are xml nodes;
- "map" if they are map entries only;
- "text" if they are formatting marks only: a text emptied (a restore deletes its
  characters; the marks between them stay, and say nothing once another kind is written);
- "empty" if nothing tells: every item of the root is deleted and its content gone (a
  text or array whose content was all deleted and collected). Every Yjs type reads such a
  root as empty, so `text_of` answers "" for it, and a restore has nothing to empty.

A name no struct mentions (a type a client only looked up, `doc.getText("t")`, and never
wrote to) is not a root of the update at all.

Once every root has a live text item nothing can change the answer, so a scene of text
roots is decided by the first items after each root's first one; a scene with a root of
another kind has every struct resolved (2 s for the 1.6 million structs of a 20 MB scene
of keystrokes, after 2 s of reading them).

The structs are read with the strict reader's primitives (collab.yjs_format): one pass,
linear in the update, nothing allocated by a declared count; bytes that do not read raise
UnreadableUpdate (an InvalidUpdate). The input is a stored state, so already validated
(yjs_format.check_state); this does not repeat the checks that do not bear on the parents
(duplicate client groups, forward references of a client to itself).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

from pycrdt import Doc, Text

from collab.errors import CollabError
from collab.lib0 import var_uint

# The strict reader's own lib0 and content readers, so that what counts as a struct, and
# how long each content is in clocks (UTF-16 code units for strings), is decided in one
# place: yjs_format.py, fuzzed against real Yjs (tests/core/test_yjs_format.py).
from collab.yjs_format import (
    CONTENT_READERS,
    Refused,
    UnreadableUpdate,
    read_string,
    read_text,
    read_uint,
)


class UnloadableState(CollabError):
    """A state the strict reader accepts that pycrdt's document model still refuses to
    integrate once `as_yjs_reads` has rewritten what Yjs skips. Browsers still load the
    scene; what needs a pycrdt Doc (text_of, a restore) cannot be done on it. Code
    "internal": the stored state is at fault, not the request."""


def apply_to(doc: Doc, update: bytes) -> None:
    """doc.apply_update of a state `as_yjs_reads` gave, its refusal an UnloadableState."""
    try:
        doc.apply_update(update)
    except (RuntimeError, ValueError) as error:
        raise UnloadableState(f"pycrdt cannot load the scene: {error}") from None


Kind = Literal["text", "map", "array", "xml", "empty"]
KINDS: tuple[Kind, ...] = ("text", "map", "array", "xml", "empty")

# What an item's content says about its parent (`_Structs.hint`).
_GC, _SKIP, _DELETED, _TEXT, _XML, _OTHER, _FORMAT = range(7)
_CONTENT_HINT = {1: _DELETED, 2: _OTHER, 3: _OTHER, 4: _TEXT, 5: _TEXT, 6: _FORMAT, 8: _OTHER, 9: _OTHER}
# XmlElement, XmlHook, XmlText: what an xml fragment holds (a fragment in a fragment is not
# xml: Yjs's XmlFragment.insert takes elements and texts, and pycrdt reads no such child).
_XML_TYPE_REFS = frozenset({3, 5, 6})

# `_Structs.parent` below 0: not a root (root names are numbered from 0).
_NESTED = -1  # the parent is a type's item: not a root
_GARBAGE = -2  # next to a GC struct (Yjs collects it), or a GC or Skip struct itself
_UNRESOLVED = -3  # takes its parent from a neighbour, not looked up yet
_RESOLVING = -4  # on the chain being followed (a cycle if met again)
_PENDING = -5  # a neighbour the update lacks, or a cycle: Yjs would wait for it

_NO_ID = -1


class _Structs:
    """Every struct of an update, in parallel arrays (a 20 MB scene has a million)."""

    def __init__(self) -> None:
        self.roots: dict[str, int] = {}
        self.hint = bytearray()
        self.sub = bytearray()  # 1: a map entry (parentSub), own or inherited
        self.parent = array("q")
        self.origin = array("q")  # (client, clock) pairs flattened; _NO_ID when absent
        self.right = array("q")
        self.clock = array("q")
        self.length = array("q")
        self.owner = array("q")  # the client of each struct
        self.named = array("q")  # the items that name a root as their parent
        # client -> (index of its first struct, the clocks its structs start at)
        self.clients: dict[int, tuple[int, array[int]]] = {}
        self.deleted: dict[int, list[tuple[int, int]]] = {}  # client -> merged [start, end)
        self.format_keys: set[str] = set()  # the attribute names of every formatting mark
        self.types: set[int] = set()  # the items whose content is a shared type
        # The items that name their parent by ID: (index, first byte, end byte, parent ID).
        self.by_id: list[tuple[int, int, int, int, int]] = []
        self.bytes = array("q")  # each struct's first and end byte, flattened
        self.has_gc = False  # whether any struct is a GC struct
        self.skips: list[int] = []  # the Skip structs (gaps of a merged update)

    def find(self, client: int, clock: int) -> int:
        """The index of the struct holding ID (client, clock); -1 if the update lacks it."""
        found = self.clients.get(client)
        if found is None:
            return -1
        first, starts = found
        at = bisect_right(starts, clock) - 1
        if at < 0 or clock >= starts[at] + self.length[first + at]:
            return -1
        return first + at

    def live(self, index: int) -> bool:
        if self.hint[index] == _DELETED:
            return False
        ranges = self.deleted.get(self.owner[index])
        if not ranges:
            return True
        start = self.clock[index]
        end = start + self.length[index]
        at = bisect_right(ranges, (start, 2**63)) - 1
        return not (at >= 0 and ranges[at][0] <= start and ranges[at][1] >= end)


def _read(update: bytes) -> _Structs:
    data = bytes(update)
    try:
        return _read_structs(data)
    except Refused as refused:
        raise UnreadableUpdate(refused.message, refused.offset, refused.client) from None
    except IndexError:
        raise UnreadableUpdate("it is truncated", len(data)) from None


def _read_structs(data: bytes) -> _Structs:
    structs = _Structs()
    hint, sub, parent = structs.hint, structs.sub, structs.parent
    origin, right, clocks, lengths = structs.origin, structs.right, structs.clock, structs.length
    owner = structs.owner
    roots = structs.roots
    uint = read_uint
    size = len(data)
    group_count, pos = uint(data, 0)
    if group_count * 5 > size - pos:
        raise Refused(f"{group_count} client groups declared, {size - pos} bytes left", 0)
    for _ in range(group_count):
        struct_count, pos = uint(data, pos)
        client, pos = uint(data, pos)
        clock, pos = uint(data, pos)
        if struct_count * 2 > size - pos:
            raise Refused(f"{struct_count} structs declared, {size - pos} bytes left", pos)
        starts = array("q")
        structs.clients[client] = (len(hint), starts)
        for _ in range(struct_count):
            begin = pos
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            origin_client = origin_clock = right_client = right_clock = parent_client = parent_clock = _NO_ID
            is_sub = 0
            if ref == 0 or ref == 10:  # GC, Skip: a length, no parent
                length, pos = uint(data, pos)
                kind = _GC if ref == 0 else _SKIP
                where = _GARBAGE
            elif ref < 10:
                where = _UNRESOLVED
                if info & 0x80:
                    origin_client, pos = uint(data, pos)
                    origin_clock, pos = uint(data, pos)
                if info & 0x40:
                    right_client, pos = uint(data, pos)
                    right_clock, pos = uint(data, pos)
                if not info & 0xC0:
                    if data[pos] == 1:
                        name, pos = read_text(data, pos + 1)
                        where = roots.setdefault(name, len(roots))
                        structs.named.append(len(hint))
                    elif data[pos] == 0:
                        parent_client, pos = uint(data, pos + 1)
                        parent_clock, pos = uint(data, pos)
                        where = _NESTED
                    else:
                        raise Refused(f"parent info {data[pos]}", pos)
                    if info & 0x20:
                        pos = read_string(data, pos)[1]
                        is_sub = 1
                if ref == 7:
                    kind = _XML if uint(data, pos)[0] in _XML_TYPE_REFS else _OTHER
                    structs.types.add(len(hint))
                else:
                    kind = _CONTENT_HINT[ref]
                    if ref == 6:
                        structs.format_keys.add(read_text(data, pos)[0])
                length, pos = CONTENT_READERS[ref](data, pos, None)
            else:
                raise Refused(f"content ref {ref}", pos - 1)
            if length == 0:
                raise Refused("a struct of length 0", pos)
            if parent_client != _NO_ID:
                structs.by_id.append((len(hint), begin, pos, parent_client, parent_clock))
            elif kind == _GC:
                structs.has_gc = True
            elif kind == _SKIP:
                structs.skips.append(len(hint))
            structs.bytes.append(begin)
            structs.bytes.append(pos)
            starts.append(clock)
            hint.append(kind)
            sub.append(is_sub)
            parent.append(where)
            origin.append(origin_client)
            origin.append(origin_clock)
            right.append(right_client)
            right.append(right_clock)
            clocks.append(clock)
            lengths.append(length)
            owner.append(client)
            clock += length
    _read_delete_set(data, pos, structs)
    return structs


def _read_delete_set(data: bytes, pos: int, structs: _Structs) -> None:
    uint = read_uint
    size = len(data)
    clients, pos = uint(data, pos)
    if clients * 2 > size - pos:
        raise Refused(f"{clients} deleting clients declared, {size - pos} bytes left", pos)
    for _ in range(clients):
        client, pos = uint(data, pos)
        count, pos = uint(data, pos)
        if count * 2 > size - pos:
            raise Refused(f"{count} delete ranges declared, {size - pos} bytes left", pos)
        ranges = structs.deleted.setdefault(client, [])
        for _ in range(count):
            start, pos = uint(data, pos)
            length, pos = uint(data, pos)
            ranges.append((start, start + length))
    if pos != size:
        raise Refused(f"{size - pos} trailing bytes", pos)
    for client, ranges in structs.deleted.items():
        structs.deleted[client] = _merged(ranges)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ranges.sort()
    out: list[tuple[int, int]] = []
    for start, end in ranges:
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _resolve(structs: _Structs, index: int) -> int:
    """The root (or _NESTED, _GARBAGE, _PENDING) of struct `index`, following the chain of
    neighbours it inherits its parent from (the left one, else the right one, as Yjs);
    every struct on the chain is settled with it, so all calls together visit each struct
    once. The hot loop of a big scene, hence inlined.

    Unlike Yjs, an item with a left neighbour is not also checked on its right: read_roots
    marks the items Yjs collects beforehand (`_garbage`: a GC struct on either side, or as
    parent), so what is left is a gap on the right (Yjs would keep the item pending), which
    no state Yjs or yrs wrote holds; counting such an item can only make a root "text",
    which every reader here handles."""
    parent, sub, hint = structs.parent, structs.sub, structs.hint
    origin, right, owner, clock = structs.origin, structs.right, structs.owner, structs.clock
    find = structs.find
    chain: list[int] = []
    at = index
    while True:
        where = parent[at]
        if where != _UNRESOLVED:
            if where == _RESOLVING:  # a cycle: no Yjs replica integrates any of it
                where = _PENDING
            break
        parent[at] = _RESOLVING
        chain.append(at)
        client = origin[2 * at]
        if client == _NO_ID:
            next_at = find(right[2 * at], right[2 * at + 1])
        elif client == owner[at] and origin[2 * at + 1] == clock[at] - 1:
            next_at = at - 1  # typing: the struct before it in its own group (no search)
        else:
            next_at = find(client, origin[2 * at + 1])
        if next_at < 0:  # an ID the update lacks: Yjs waits for it
            where = _PENDING
            break
        if hint[next_at] == _GC:  # Yjs collects an item next to a GC struct
            where = _GARBAGE
            break
        if hint[next_at] == _SKIP:  # a gap in a merged update: Yjs waits for what fills it
            where = _PENDING
            break
        at = next_at
    inherited = sub[at] if where >= 0 else 0
    for item in chain:
        parent[item] = where
        sub[item] = inherited
    return where


def _kinds(structs: _Structs) -> dict[str, Kind]:
    live: list[set[int]] = [set() for _ in structs.roots]
    dead: list[set[int]] = [set() for _ in structs.roots]
    parent, hint, sub = structs.parent, structs.hint, structs.sub
    # Text outranks every other kind: once each root has a live text item, nothing else
    # can change the answer (a scene of text roots is mostly decided by its first items).
    undecided = len(live)

    def mark(index: int, root: int) -> None:
        nonlocal undecided
        is_live = structs.live(index)
        marks = (live if is_live else dead)[root]
        kind = -1 if sub[index] else hint[index]
        if is_live and kind == _TEXT and _TEXT not in marks:
            undecided -= 1
        marks.add(kind)

    # A root's item Yjs collects (read_roots set it _GARBAGE) says nothing of the root.
    named = [index for index in structs.named if parent[index] >= 0]
    for index in named:
        mark(index, parent[index])
    # Structs after a root's first item in its client's group mostly belong to the same
    # root (a client types on): look there first, until that root is decided.
    for index in named:
        root = parent[index]
        first, starts = structs.clients[structs.owner[index]]
        end = first + len(starts)
        while _TEXT not in live[root] and index + 1 < end:
            index += 1
            if parent[index] == _UNRESOLVED:
                found = _resolve(structs, index)
                if found >= 0:
                    mark(index, found)
    for index in range(len(hint)):
        if not undecided:
            break
        if parent[index] == _UNRESOLVED:
            found = _resolve(structs, index)
            if found >= 0:
                mark(index, found)
    names = list(structs.roots)
    return {name: _decide(live[root]) or _decide(dead[root]) or "empty" for root, name in enumerate(names)}


def _decide(marks: set[int]) -> Kind | None:
    if _TEXT in marks:
        return "text"
    if _OTHER in marks:
        return "array"
    if _XML in marks:
        return "xml"
    if -1 in marks:
        return "map"
    if _FORMAT in marks:  # formatting marks and nothing else: an emptied text
        return "text"
    return None  # nothing, or only Deleted content


def _as_yjs_reads(data: bytes, structs: _Structs) -> tuple[bytes, list[int]]:
    """The update with every item Yjs turns into a GC struct written as one, of the same
    length, where yrs would keep it or refuse the whole update (Item.getMissing: the item
    gets no parent, so integrate() adds a GC):
    - an item whose parent ID names an item that is not a shared type (string content,
      say): yrs refuses the update ("block parent must be deleted or shared ref type");
    - an item whose left (origin) or right (right origin) neighbour is a GC struct, or
      whose parent ID names one, counting the structs rewritten here: yrs keeps an item
      with one such neighbour when the other is an item, where no browser shows it;
    - the items of a client whose structs start past clock 0, or that follow a Skip
      struct: Yjs keeps them pending (waiting for the clocks missing), yrs integrates them.
    The update itself (the same object) when there is none: any state Yjs or yrs wrote
    without GC structs, so no copy and no pass over its items. And the indices of the
    items rewritten."""
    find, types, hint = structs.find, structs.types, structs.hint
    seeds: list[int] = []
    parent_of: dict[int, int] = {}
    for index, _, _, parent_client, parent_clock in structs.by_id:
        parent = find(parent_client, parent_clock)
        parent_of[index] = parent
        if parent >= 0 and parent not in types and hint[parent] not in (_GC, _SKIP):
            seeds.append(index)
    # A client whose structs start past clock 0 lacks the ones before, and one with a Skip
    # (a gap of a merged update) the ones in it: Yjs keeps all that follow pending (and
    # what follows from them), where yrs integrates them; as GC structs they show
    # nowhere, as in a browser.
    gaps = {structs.owner[i]: i for i in reversed(structs.skips)}  # each client's first Skip
    for client, (first, starts) in structs.clients.items():
        end = first + len(starts)
        gap = first if starts and starts[0] > 0 else gaps.get(client, end)
        seeds.extend(i for i in range(gap, end) if hint[i] not in (_GC, _SKIP))
    if not seeds and not structs.has_gc:
        return data, []
    garbage = _garbage(structs, seeds, parent_of)
    if not garbage:
        return data, []
    out = bytearray()
    done = 0
    spans = structs.bytes
    for index in garbage:
        begin, end = spans[2 * index], spans[2 * index + 1]
        out += data[done:begin]
        out += b"\x00" + var_uint(structs.length[index])  # info 0: a GC struct, then its length
        done = end
    out += data[done:]
    return bytes(out), garbage


# `_garbage` states of a struct.
_UNKNOWN, _COLLECTED, _KEPT, _VISITING = range(4)


def _garbage(structs: _Structs, seeds: list[int], parent_of: dict[int, int]) -> list[int]:
    """The items (not GC structs) Yjs makes GC structs of, in order: `seeds`, and every
    item whose origin, right origin or parent ID is in a GC struct or such an item. Each
    struct is settled once (an explicit stack: chains can be as long as the update); an
    item on a cycle, or next to an ID the update lacks, is kept (Yjs would wait for it)."""
    hint, origin, right = structs.hint, structs.origin, structs.right
    owner, clock, find = structs.owner, structs.clock, structs.find
    count = len(hint)
    state = bytearray(count)
    for index in range(count):
        if hint[index] == _GC:
            state[index] = _COLLECTED
        elif hint[index] == _SKIP:
            state[index] = _KEPT
    for index in seeds:
        state[index] = _COLLECTED

    def left_of(at: int, client: int) -> int:
        if client == owner[at] and origin[2 * at + 1] == clock[at] - 1 and at and owner[at - 1] == client:
            return at - 1  # typing: the struct before it in its own group (no search)
        return find(client, origin[2 * at + 1])

    def neighbours(at: int) -> list[int]:
        found = []
        if origin[2 * at] != _NO_ID:
            found.append(left_of(at, origin[2 * at]))
        if right[2 * at] != _NO_ID:
            found.append(find(right[2 * at], right[2 * at + 1]))
        found.append(parent_of.get(at, -1))
        return [index for index in found if index >= 0]

    for first in range(count):
        if state[first]:
            continue
        # The usual item (an origin, no right origin: no parent ID either) whose left
        # neighbour is settled: at once, without the stack (the hot loop).
        if origin[2 * first] != _NO_ID and right[2 * first] == _NO_ID:
            left = left_of(first, origin[2 * first])
            if left < 0:
                state[first] = _KEPT
                continue
            if state[left] == _COLLECTED or state[left] == _KEPT:
                state[first] = state[left]
                continue
        stack = [first]
        state[first] = _VISITING
        while stack:
            at = stack[-1]
            settled = _KEPT
            for index in neighbours(at):
                if state[index] == _COLLECTED:
                    settled = _COLLECTED
                    break
                if state[index] == _UNKNOWN:
                    settled = _UNKNOWN
                    state[index] = _VISITING
                    stack.append(index)
                    break
            if settled != _UNKNOWN:
                state[at] = settled
                stack.pop()
    return [index for index in range(count) if state[index] == _COLLECTED and hint[index] != _GC]


@dataclass(frozen=True)
class Roots:
    kinds: dict[str, Kind]  # root_kinds
    clients: frozenset[int]  # every client id the update has structs or deletions of
    format_keys: frozenset[str]  # every attribute name its formatting marks use, live or not
    loadable: bytes  # the update as Yjs reads it, for pycrdt to load (`_as_yjs_reads`)


def read_roots(update: bytes) -> Roots:
    """`root_kinds`, the client ids and formatting attribute names of the update, and the
    update as pycrdt can load it."""
    data = bytes(update)
    structs = _read(data)
    clients = frozenset(structs.clients.keys() | structs.deleted.keys())
    loadable, collected = _as_yjs_reads(data, structs)
    for index in collected:  # GC structs now: what they held tells nothing of their root
        structs.parent[index] = _GARBAGE
    return Roots(_kinds(structs), clients, frozenset(structs.format_keys), loadable)


def root_kinds(update: bytes) -> dict[str, Kind]:
    """Each root type a Yjs v1 update (a whole scene's merged state) holds, and its kind:
    "text", "map", "array", "xml" (a Y.XmlFragment) or "empty" (every item deleted and
    its content collected: no kind can be told, and any kind reads it as empty). See the
    module docstring for how the kind is inferred. UnreadableUpdate if the bytes are not a
    v1 update."""
    return read_roots(update).kinds


def text_of(update: bytes, name: str) -> str | None:
    """The content of the Y.Text root `name` of a merged state, as Yjs's `toString()` gives
    it (embeds and formatting left out); "" for a root of kind "empty"; None if there is no
    such root or it is not a text. UnreadableUpdate if the bytes are not a v1 update,
    UnloadableState if pycrdt cannot load them."""
    roots = read_roots(update)
    kind = roots.kinds.get(name)
    if kind == "empty":
        return ""
    if kind != "text":
        return None
    # The kind is known first on purpose: pycrdt reading a root as a kind it is not can
    # loop forever (an array view of a text with multi-byte characters does).
    doc: Doc = Doc()
    apply_to(doc, roots.loadable)
    return str(doc.get(name, type=Text))
