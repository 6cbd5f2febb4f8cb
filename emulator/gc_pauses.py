"""Keeping CPython's full garbage collections short in the local stack's long-lived servers.

A full (generation 2) collection visits every object the collector tracks, and while it
runs its process does nothing else. Measured with gc.callbacks in a 20-person room typing
at 50 updates/s (bench/openloop.py):
- the emulator's process (event loop, WebSocket connections, Management API): 54-73 ms per
  full collection, mostly over what was imported and built at start-up;
- moto's: 75 ms at 114,000 objects, 175 ms at 311,000, growing with the tables (moto keeps
  every item as Python objects) and taken with its one-request-at-a-time lock held, so
  each one stalled every handler's DynamoDB call at once: the room's p99.

`gc.freeze()` moves every live object to a permanent generation that collections skip;
reference counting still frees a frozen object when it is dropped. Only a reference cycle
that becomes garbage after it was frozen is never reclaimed, so what is frozen should be
what lives for the process's life: start-up state, and moto's items.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# A full collection slower than this freezes what survived it (moto_server).
SLOW_FULL_COLLECTION_S = 0.010


def freeze_startup_state() -> None:
    """Once the server is up: what start-up built is never visited again. A collection
    first, so nothing already garbage is frozen."""
    gc.collect()
    gc.freeze()


def freeze_after_slow_full_collections(slow_s: float = SLOW_FULL_COLLECTION_S) -> Callable[[], None]:
    """After a full collection that took over `slow_s`, freeze what survived it: the next
    ones visit only what was allocated since. Rare by construction (a collection is slow
    only after that many new long-lived objects), so the few objects of requests in flight
    at that moment that could later become cyclic garbage are a bounded leak. Returns the
    undo (for tests)."""
    began = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            began[0] = time.perf_counter()
        elif time.perf_counter() - began[0] > slow_s:
            gc.freeze()

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)
