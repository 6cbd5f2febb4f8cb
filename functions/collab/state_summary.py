"""What a sync needs to know about a merged state, without the state itself.

A client that already has a scene sends `sync` every 45 s. Answering it from the whole
state means reading and decoding all of it (5 MB for a big screenplay) to find out that
the client lacks nothing. A `Summary` of a state M is enough instead:

- `state_vector` = get_state(M), what the server's SyncStep1 says;
- `rest` = get_update(M, state_vector): every struct M holds past that state vector (the
  pending ones, whose causal parents have not arrived) and M's whole delete set.

For any client state vector C that covers `state_vector` (C[k] >= state_vector[k] for
every client k), get_update(M, C) = get_update(rest, C): the structs M holds that C lacks
are all past `state_vector`, so in `rest`, and the delete set is the same. So the answer
never depends on the state vector alone:

Why the delete set is sent, not compared. A state vector says nothing about deletions: a
deletion adds no struct, so a client that missed a delete-only broadcast has the server's
state vector exactly and still lacks the deletion. The sync message (docs/design.md §2) carries a
state vector only, so the server cannot learn what the client deleted; a digest of the
server's delete set would have nothing to be compared with. So the answer carries the
stored delete set, which is exactly what get_update(M, C) carries (Yjs diffs always hold
the whole delete set): the same bytes a full load would send, without the load.

New updates are folded in without the state: `fold(summary, updates)` merges `rest` and
the updates with a placeholder that stands for the structs below `state_vector` (one GC
struct per client), so get_state of that merge is the new state vector, exactly as
get_state of the whole merged state would be (tests/core/test_state_summary.py checks both
against the full computation on random out-of-order histories).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pycrdt import get_state, get_update, merge_updates

from collab.lib0 import var_uint
from collab.yjs_format import read_state_vector

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"


@dataclass(frozen=True)
class Summary:
    state_vector: bytes
    rest: bytes  # get_update(state, state_vector): pending structs and the whole delete set

    def covered_by(self, client_state_vector: bytes) -> bool:
        """True when the client has every struct below this state vector (then `answer`
        serves it); the client's vector is already checked (sync._check_state_vector)."""
        client = read_state_vector(client_state_vector)
        return all(client.get(k, 0) >= clock for k, clock in read_state_vector(self.state_vector).items())

    def answer(self, client_state_vector: bytes) -> bytes:
        """What a client whose vector covers this one lacks (see the module docstring)."""
        return get_update(self.rest, client_state_vector)


EMPTY = Summary(EMPTY_STATE_VECTOR, EMPTY_UPDATE)


def summarize(state: bytes) -> Summary:
    """The summary of a whole merged state: one pass over it."""
    state_vector = get_state(state)
    return Summary(state_vector, get_update(state, state_vector))


@dataclass(frozen=True)
class Folded:
    """`base` with updates folded in: `summary` describes the merged state; `above` holds
    every struct past base's state vector and the merged delete set, so it answers any
    client that covers `base` (a client that lacks only recent updates)."""

    base: Summary
    summary: Summary
    above: bytes

    def answer(self, client_state_vector: bytes) -> bytes:
        # `above` holds placeholder structs below base's vector: a client that lacks some
        # of those must be answered from the whole state, never from here.
        if not self.base.covered_by(client_state_vector):
            raise ValueError("the client lacks structs of the base state: answer from the whole state")
        return get_update(self.above, client_state_vector)


def fold(base: Summary, updates: Sequence[bytes]) -> Folded:
    """The summary of merge(state, *updates), from the state's summary alone. Updates the
    state already holds may be among them (merging is idempotent)."""
    if not updates:
        return Folded(base, base, base.rest)
    above = merge_updates(_placeholder(base.state_vector), base.rest, *updates)
    state_vector = get_state(above)
    # The placeholder lies below the new state vector, so neither diff ever carries it.
    return Folded(base, Summary(state_vector, get_update(above, state_vector)), above)


def _placeholder(state_vector: bytes) -> bytes:
    """An update of one GC struct (info 0, a length) per client of `state_vector`, from
    clock 0 to its clock: "these structs exist", so the merge knows where each client's
    contiguous run ends. Never stored nor sent."""
    clocks = {k: clock for k, clock in read_state_vector(state_vector).items() if clock}
    parts = [var_uint(len(clocks))]
    for client, clock in clocks.items():
        parts += [var_uint(1), var_uint(client), var_uint(0), b"\x00", var_uint(clock)]
    parts.append(var_uint(0))  # no delete set
    return b"".join(parts)
