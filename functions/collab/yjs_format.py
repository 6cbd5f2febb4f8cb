"""A strict reader of Yjs v1 updates: accepts only what Yjs 13 (JavaScript) can decode and
integrate, because every browser client loads the scene with Yjs.

pycrdt (yrs) decodes constructs Yjs cannot read (a type ref of 9, for instance): such an
update would be stored, merged into every later SyncStep2 and make every browser fail to
load the scene (review F1). So this walks an update the way Yjs's `readClientsStructRefs`,
`readItemContent` and `readAndApplyDeleteSet` do (yjs/src/utils/encoding.js, structs/,
utils/DeleteSet.js; lib0/decoding.js), and refuses:

- content refs other than GC 0, Deleted 1, JSON 2, Binary 3, String 4, Embed 5, Format 6,
  Type 7, Any 8, Doc 9 and Skip 10 (Move 11 is yrs-only: Yjs throws on it);
- type refs other than 0-6 (YArray, YMap, YText, YXmlElement, YXmlFragment, YXmlHook,
  YXmlText); an XmlElement carries its node name;
- YXmlHook (type ref 5) as well, although Yjs reads it: yrs reads it without the hook
  name Yjs writes after it, and writes it back without one, so a merged state holding a
  hook is unreadable for Yjs (the name bytes are parsed as what follows);
- parent info other than 1 (a root name follows) or 0 (an ID follows), and GC/Skip info
  bytes with flag bits set (Yjs's two struct readers disagree on those);
- an origin, right origin or parent ID of the struct's own client at or past the struct's
  clock: Yjs looks such an ID up without waiting for it and throws;
- JSON content JSON.parse would refuse (NaN, Infinity), lib0 `Any` with unknown tags, and
  nesting deeper than MAX_NESTING (JS re-encodes recursively); JSON content (ref 2) itself
  is read, as Yjs reads it, though pycrdt then refuses it (Yjs 13 no longer writes it);
- subdocument options that are not an object, or that hold a gcFilter or a guid (they
  go into Yjs's `new Doc(...)`);
- strings that are not valid UTF-8 (lib0 decodes with a fatal TextDecoder);
- structs and delete ranges of length 0, clocks past 2**32 - 1 (yrs keeps clocks in 32
  bits: a longer struct wraps around there and the server's merge loses or misplaces what
  follows it; no real client gets near 4 billion edits), a client id twice (Yjs
  keeps only the last group of a client: replicas would differ from the server's merge),
  a client group without structs, and trailing bytes.

Declared counts are checked against the bytes left before anything loops over them, and
nothing is allocated by a declared count, so a few bytes can never make the reader work
or allocate much. Lengths are counted as Yjs counts them: a string's in UTF-16 code units.

The reader also returns each client group's byte range, so whole groups can be dropped by
slicing (`without_clients`; client_ids.py uses it against forged client ids, M8).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, NamedTuple

from collab.errors import BadRequest, InvalidUpdate
from collab.lib0 import MAX_SAFE_INTEGER, Reader, var_uint

# yrs (the server's merges) keeps clocks as u32; Yjs clients never get near it.
MAX_CLOCK = 2**32 - 1

# Deeper `Any`/JSON values are refused: Yjs encodes them recursively (JS stack), and no
# editor state needs more.
MAX_NESTING = 100

# The fewest bytes a client group (count, client, clock, one GC) and a struct (info, len)
# take: a declared count beyond what the remaining bytes can hold is refused at once.
_MIN_GROUP_BYTES = 5
_MIN_STRUCT_BYTES = 2

_TYPE_REFS = ("YArray", "YMap", "YText", "YXmlElement", "YXmlFragment", "YXmlHook", "YXmlText")
_XML_ELEMENT, _XML_HOOK = 3, 5
_DOC_FLAGS = frozenset({"gc", "autoLoad", "shouldLoad"})

# Positions a caller may collect (`marks`): what a fuzzer mutates to reach every branch.
Marks = list[tuple[str, int]]


class UnreadableUpdate(InvalidUpdate):
    """An update Yjs cannot read. `client` is the client group it was found in (None in
    the header or the delete set), `offset` the byte it was found at."""

    def __init__(self, message: str, offset: int, client: int | None = None) -> None:
        super().__init__(f"the update would not load in Yjs: {message} (byte {offset})")
        self.offset = offset
        self.client = client


class ClientGroup(NamedTuple):  # a tuple: made for every group of every update, cheaply
    """One client's run of structs: clocks [clock, clock + length), bytes [start, end)."""

    client: int
    clock: int
    length: int
    start: int
    end: int


class UpdateLayout(NamedTuple):
    groups: tuple[ClientGroup, ...]
    delete_set_start: int  # the delete set runs from here to the end
    delete_ranges: int


class Refused(Exception):
    """What a reader raises at the first byte it refuses (read_update turns it into an
    UnreadableUpdate, as collab.scene_content does)."""

    def __init__(self, message: str, offset: int, client: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.client = client


# -- lib0 primitives -------------------------------------------------------------------------
# Each takes (data, pos) and returns the new position (and the value); reading past the end
# raises IndexError, which read_update reports as truncation.


def read_uint(data: bytes, pos: int) -> tuple[int, int]:
    # Unrolled: this is most of the reader's time (yrs writes 8-byte client ids).
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    byte = data[pos + 1]
    if byte < 0x80:
        return value | byte << 7, pos + 2
    value |= (byte & 0x7F) << 7
    byte = data[pos + 2]
    if byte < 0x80:
        return value | byte << 14, pos + 3
    value |= (byte & 0x7F) << 14
    byte = data[pos + 3]
    if byte < 0x80:
        return value | byte << 21, pos + 4
    value |= (byte & 0x7F) << 21
    byte = data[pos + 4]
    if byte < 0x80:
        return value | byte << 28, pos + 5
    value |= (byte & 0x7F) << 28
    byte = data[pos + 5]
    if byte < 0x80:
        return value | byte << 35, pos + 6
    value |= (byte & 0x7F) << 35
    byte = data[pos + 6]
    if byte < 0x80:
        return value | byte << 42, pos + 7
    value |= (byte & 0x7F) << 42
    byte = data[pos + 7]
    # lib0 stops past 2**53: eight 7-bit groups reach it, a ninth cannot be a JS number.
    if byte < 0x80:
        value |= byte << 49
        if value <= MAX_SAFE_INTEGER:
            return value, pos + 8
    raise Refused("integer beyond 2**53 - 1", pos)


def _int(data: bytes, pos: int) -> int:
    """lib0 varInt (sign in bit 6 of the first byte); the position after it."""
    start = pos
    byte = data[pos]
    pos += 1
    if byte < 0x80:
        return pos
    value = byte & 0x3F
    for shift in range(6, 55, 7):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > MAX_SAFE_INTEGER:
                break
            return pos
    raise Refused("integer beyond 2**53 - 1", start)


def _bytes_end(data: bytes, pos: int) -> int:
    length, pos = read_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise Refused(f"{length} bytes declared, {len(data) - pos} left", pos)
    return end


def read_string(data: bytes, pos: int) -> tuple[int, int]:
    """A var string; (its length in UTF-16 code units, as JS counts it, new position)."""
    length, pos = read_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise Refused(f"a {length}-byte string with {len(data) - pos} bytes left", pos)
    chunk = data[pos:end]
    if chunk.isascii():
        return length, end
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("a string that is not valid UTF-8", pos) from None
    # Valid UTF-8: every 4-byte sequence (lead F0-F4) is one astral character, which is
    # two UTF-16 code units in JS.
    astral = chunk.count(b"\xf0") + chunk.count(b"\xf1") + chunk.count(b"\xf2")
    astral += chunk.count(b"\xf3") + chunk.count(b"\xf4")
    return len(text) + astral, end


def read_text(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = read_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise Refused(f"a {length}-byte string with {len(data) - pos} bytes left", pos)
    try:
        return data[pos:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise Refused("a string that is not valid UTF-8", pos) from None


def _any(data: bytes, pos: int, depth: int, marks: Marks | None) -> int:
    """lib0 `readAny`: tags 116-127."""
    if marks is not None:
        marks.append(("any", pos))
    tag = data[pos]
    pos += 1
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return pos
    if tag == 125:
        return _int(data, pos)
    if tag == 119:
        return read_string(data, pos)[1]
    if tag in (124, 123, 122):  # float32, float64, bigint64
        end = pos + (4 if tag == 124 else 8)
        if end > len(data):
            raise Refused("a truncated number", pos)
        return end
    if tag == 116:
        return _bytes_end(data, pos)
    if tag in (118, 117):
        if depth >= MAX_NESTING:
            raise Refused(f"values nested deeper than {MAX_NESTING}", pos - 1)
        if marks is not None:
            marks.append(("count", pos))
        count, pos = read_uint(data, pos)
        if count * (2 if tag == 118 else 1) > len(data) - pos:
            raise Refused(f"{count} entries declared, {len(data) - pos} bytes left", pos)
        for _ in range(count):
            if tag == 118:
                pos = read_string(data, pos)[1]
            pos = _any(data, pos, depth + 1, marks)
        return pos
    raise Refused(f"unknown Any tag {tag}", pos - 1)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON.parse refuses {name}")


def _json(data: bytes, pos: int) -> int:
    """A var string that JS's JSON.parse accepts (Yjs parses Embed, Format and JSON content)."""
    text, end = read_text(data, pos)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise Refused("content that is not JSON", pos) from None
    if isinstance(value, (list, dict)) and _json_too_deep(value, 0):
        raise Refused(f"values nested deeper than {MAX_NESTING}", pos)
    return end


def _json_too_deep(value: Any, depth: int) -> bool:
    if depth >= MAX_NESTING:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(isinstance(c, (list, dict)) and _json_too_deep(c, depth + 1) for c in children)


# -- item content (structs/Content*.js): each returns (length in clocks, new position) ------


def _content_deleted(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    if marks is not None:
        marks.append(("count", pos))
    return read_uint(data, pos)


def _content_json(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    if marks is not None:
        marks.append(("count", pos))
    count, pos = read_uint(data, pos)
    if count > len(data) - pos:
        raise Refused(f"{count} JSON values declared, {len(data) - pos} bytes left", pos)
    for _ in range(count):
        # Yjs writes undefined as the bare word; JSON.parse never sees it.
        if data[pos : pos + 10] == b"\x09undefined":
            pos += 10
        else:
            pos = _json(data, pos)
    return count, pos


def _content_binary(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    return 1, _bytes_end(data, pos)


def _content_string(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    return read_string(data, pos)


def _content_embed(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    return 1, _json(data, pos)


def _content_format(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    return 1, _json(data, read_string(data, pos)[1])


def _content_type(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    if marks is not None:
        marks.append(("typeref", pos))
    ref, after = read_uint(data, pos)
    if ref >= len(_TYPE_REFS):
        raise Refused(f"type ref {ref} (Yjs knows 0-6)", pos)
    if ref == _XML_HOOK:
        raise Refused("a YXmlHook (yrs drops its hook name when it merges)", pos)
    if ref == _XML_ELEMENT:  # its node name
        after = read_string(data, after)[1]
    return 1, after


def _content_any(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    if marks is not None:
        marks.append(("count", pos))
    count, pos = read_uint(data, pos)
    if count > len(data) - pos:
        raise Refused(f"{count} values declared, {len(data) - pos} bytes left", pos)
    for _ in range(count):
        pos = _any(data, pos, 0, marks)
    return count, pos


def _content_doc(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    pos = read_string(data, pos)[1]  # guid
    # The options go into `new Doc({guid, ...opts, shouldLoad})`, an object: Yjs writes gc,
    # autoLoad and meta, yrs adds shouldLoad and encoding; the constructor ignores other
    # keys. A gcFilter (never a function here: it throws when the subdocument collects
    # garbage) or a guid (it would replace the subdocument's own) is refused, and so is a
    # null Yjs would read `.shouldLoad` of.
    if data[pos] != 118:
        raise Refused("subdocument options that are not an object", pos)
    count, pos = read_uint(data, pos + 1)
    if count * 2 > len(data) - pos:
        raise Refused(f"{count} options declared, {len(data) - pos} bytes left", pos)
    for _ in range(count):
        key, value_pos = read_text(data, pos)
        if key in _DOC_FLAGS:
            if data[value_pos] not in (120, 121):
                raise Refused(f"subdocument option {key} that is not a boolean", value_pos)
            pos = value_pos + 1
        elif key in ("gcFilter", "guid"):
            raise Refused(f"subdocument option {key!r}", pos)
        else:
            pos = _any(data, value_pos, 1, marks)
    return 1, pos


def _not_content(data: bytes, pos: int, marks: Marks | None) -> tuple[int, int]:
    raise AssertionError("GC and Skip are structs, not item content")


CONTENT_READERS = (
    _not_content,  # 0: GC
    _content_deleted,
    _content_json,
    _content_binary,
    _content_string,
    _content_embed,
    _content_format,
    _content_type,
    _content_any,
    _content_doc,
)


# -- the update ------------------------------------------------------------------------------


def read_update(update: bytes, marks: Marks | None = None) -> UpdateLayout:
    """The layout of a v1 update Yjs can read; UnreadableUpdate (an InvalidUpdate) if not.

    `marks`, when given, collects the positions of info bytes, declared counts, type refs
    and Any tags (the fuzz tests mutate those)."""
    data = bytes(update)
    try:
        return _read(data, marks)
    except Refused as refused:
        raise UnreadableUpdate(refused.message, refused.offset, refused.client) from None
    except IndexError:
        raise UnreadableUpdate("it is truncated", len(data)) from None


def _read(data: bytes, marks: Marks | None) -> UpdateLayout:
    size = len(data)
    if marks is not None:
        marks.append(("count", 0))
    group_count, pos = read_uint(data, 0)
    if group_count * _MIN_GROUP_BYTES > size - pos:
        raise Refused(f"{group_count} client groups declared, {size - pos} bytes left", 0)
    groups: list[ClientGroup] = []
    seen: set[int] = set()
    for _ in range(group_count):
        start = pos
        if marks is not None:
            marks.append(("count", pos))
        struct_count, client_pos = read_uint(data, pos)
        client, pos = read_uint(data, client_pos)
        try:
            groups.append(
                _read_group(data, pos, start, struct_count, client, data[client_pos:pos], seen, marks)
            )
        except Refused as refused:
            refused.client = client  # which group to drop, for the operator
            raise
        except IndexError:
            raise Refused("it is truncated", size, client) from None
        pos = groups[-1].end
    delete_set_start = pos
    ranges = 0
    if marks is not None:
        marks.append(("count", pos))
    ds_clients, pos = read_uint(data, pos)
    if ds_clients * 2 > size - pos:
        raise Refused(f"{ds_clients} deleting clients declared, {size - pos} bytes left", pos)
    uint = read_uint
    for _ in range(ds_clients):
        _client, pos = uint(data, pos)
        if marks is not None:
            marks.append(("count", pos))
        count, pos = uint(data, pos)
        if count * 2 > size - pos:
            raise Refused(f"{count} delete ranges declared, {size - pos} bytes left", pos)
        for _ in range(count):
            range_pos = pos
            start_clock, pos = uint(data, pos)
            length, pos = uint(data, pos)
            if length == 0 or start_clock + length > MAX_CLOCK:
                raise Refused("a delete range of length 0 or beyond clock 2**32 - 1", range_pos)
        ranges += count
    if pos != size:
        raise Refused(f"{size - pos} trailing bytes", pos)
    return UpdateLayout(tuple(groups), delete_set_start, ranges)


def _read_group(
    data: bytes,
    pos: int,
    start: int,
    struct_count: int,
    client: int,
    own: bytes,
    seen: set[int],
    marks: Marks | None,
) -> ClientGroup:
    """One client's structs, from its first clock (`pos`) on. The hot loop: references to
    the struct's own client (most origins) are recognised by their bytes (`own`, as the
    group's header wrote the id), not decoded."""
    size = len(data)
    content = CONTENT_READERS
    uint = read_uint
    if client in seen:
        raise Refused(f"client {client} has two groups", start)
    seen.add(client)
    if struct_count == 0:
        raise Refused("a client group without structs", start)
    if struct_count * _MIN_STRUCT_BYTES > size - pos:
        raise Refused(f"{struct_count} structs declared, {size - pos} bytes left", start)
    own_len = len(own)
    clock, pos = uint(data, pos)
    first = clock
    for _ in range(struct_count):
        if marks is not None:
            marks.append(("info", pos))
        info_pos = pos
        info = data[pos]
        pos += 1
        ref = info & 0x1F
        if ref == 0 or ref == 10:  # GC, Skip
            if info != ref:
                raise Refused(f"flag bits on a {'GC' if ref == 0 else 'Skip'} struct", info_pos)
            if marks is not None:
                marks.append(("count", pos))
            length, pos = uint(data, pos)
        elif ref < 10:
            # Origin, right origin, parent: an ID of the struct's own client must come
            # before it, as Yjs looks it up without waiting for it (Item.getMissing).
            for flag in (0x80, 0x40):  # origin, right origin
                if info & flag:
                    if data[pos : pos + own_len] == own:
                        id_clock, pos = uint(data, pos + own_len)
                        if id_clock >= clock:
                            raise Refused(f"a reference to its own client's clock {id_clock}", info_pos)
                    else:
                        pos = _id_before(data, pos, client, clock)
            if not info & 0xC0:  # neither: the parent is written
                parent_info = data[pos]
                if parent_info == 1:  # a root type's name
                    pos = read_string(data, pos + 1)[1]
                elif parent_info == 0:  # the ID of the parent type's item
                    pos = _id_before(data, pos + 1, client, clock)
                else:
                    raise Refused(f"parent info {parent_info}", pos)
                if info & 0x20:  # parentSub: the key in the parent's map
                    pos = read_string(data, pos)[1]
            length, pos = content[ref](data, pos, marks)
        else:
            move = " (Move: yrs only)" if ref == 11 else ""
            raise Refused(f"content ref {ref}{move}", info_pos)
        if length == 0:
            raise Refused("a struct of length 0", info_pos)
        clock += length
    if clock > MAX_CLOCK:
        raise Refused("clocks beyond 2**32 - 1", pos)
    return ClientGroup(client, first, clock - first, start, pos)


def _id_before(data: bytes, pos: int, client: int, clock: int) -> int:
    """An ID (client, clock); one of the struct's own client must be before `clock`."""
    id_client, pos = read_uint(data, pos)
    id_clock, after = read_uint(data, pos)
    if id_client == client and id_clock >= clock:
        raise Refused(f"a reference to its own client's clock {id_clock} from clock {clock}", pos)
    if id_clock > MAX_CLOCK:
        raise Refused("a reference beyond clock 2**32 - 1", pos)
    return after


def check_state(state: bytes) -> None:
    """Refuse a merged state Yjs cannot read (UnreadableUpdate): call it before a snapshot
    is committed, so an unreadable scene is detected and reported, not stored for good."""
    read_update(state)


def without_clients(update: bytes, clients: Collection[int]) -> bytes:
    """The update minus every struct of `clients` (whole client groups); the delete set is
    kept. The same bytes when no group of theirs is in it."""
    return drop_groups(update, read_update(update), clients)


def drop_groups(update: bytes, layout: UpdateLayout, clients: Collection[int]) -> bytes:
    """`without_clients` for an update already read (its `layout`)."""
    kept = [group for group in layout.groups if group.client not in clients]
    if len(kept) == len(layout.groups):
        return update
    parts = [var_uint(len(kept))]
    parts.extend(update[group.start : group.end] for group in kept)
    parts.append(update[layout.delete_set_start :])
    return b"".join(parts)


def read_state_vector(state_vector: bytes) -> dict[int, int]:
    """A y-protocols state vector (client -> next clock), bounds-checked before pycrdt sees
    it: yrs reserves memory by the declared count (review M6), so the count must fit the
    bytes present (two per entry at least); client ids are JS safe integers and clocks fit
    yrs's 32 bits. BadRequest if it does not read."""
    reader = Reader(state_vector, "state vector")
    count = reader.var_uint()
    if count * 2 > len(state_vector) - reader.pos:
        raise BadRequest(f"the state vector declares {count} entries in {len(state_vector)} bytes")
    clocks: dict[int, int] = {}
    for _ in range(count):
        client = reader.var_uint()  # at most 2**53 - 1, as lib0 reads it
        clock = reader.var_uint()
        if clock > MAX_CLOCK:  # yrs would wrap it around to a small clock
            raise BadRequest(f"the state vector names clock {clock}, past 2**32 - 1")
        clocks[client] = clock
    reader.finish()
    return clocks
