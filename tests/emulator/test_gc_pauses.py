"""emulator/gc_pauses.py: what it freezes, and what it leaves to the collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from emulator import gc_pauses


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _garbage_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Whatever a test froze goes back to the collector (this is the test process)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_startup_state_is_frozen_and_earlier_garbage_is_not() -> None:
    cycle = _garbage_cycle()
    gc_pauses.freeze_startup_state()
    assert cycle() is None  # collected first, not frozen
    assert gc.get_freeze_count() > 0


def test_a_slow_full_collection_freezes_what_survived_it() -> None:
    undo = gc_pauses.freeze_after_slow_full_collections(slow_s=0.0)
    try:
        survivors = [Node() for _ in range(1000)]
        gc.collect()
        assert gc.get_freeze_count() >= len(survivors)
        frozen = gc.get_freeze_count()
        gc.collect(1)  # a young collection freezes nothing more
        assert gc.get_freeze_count() == frozen
    finally:
        undo()
    gc.unfreeze()
    gc.collect()
    assert gc.get_freeze_count() == 0  # the undo removed the callback


def test_a_quick_full_collection_freezes_nothing() -> None:
    undo = gc_pauses.freeze_after_slow_full_collections(slow_s=60.0)
    try:
        gc.collect()
        assert gc.get_freeze_count() == 0
    finally:
        undo()


def test_frozen_objects_are_still_freed_by_reference_counting() -> None:
    node = Node()
    ref = weakref.ref(node)
    gc.freeze()
    del node
    assert ref() is None
