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
mostly what lives for the process's life: start-up state, and moto's items.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# A full collection that takes more CPU than this freezes what survived it (moto_server).
SLOW_FULL_COLLECTION_S = 0.010


def freeze_startup_state() -> None:
    """Once the server is up: what start-up built is never visited again. A collection
    first, so nothing already garbage is frozen."""
    gc.collect()
    gc.freeze()


def freeze_after_slow_full_collections(slow_s: float = SLOW_FULL_COLLECTION_S) -> Callable[[], None]:
    """After a full collection that took over `slow_s` of its thread's CPU, freeze what
    survived it: the next ones visit only what was allocated since.

    CPU, not wall time: a collection preempted on a busy machine, or handing the GIL to
    another thread, is not slow, and must not freeze. So a freeze comes only after some
    tens of thousands of new long-lived objects (about 10 ms of visiting), which in moto
    means items. Each freeze also keeps forever the reference cycles of the requests in
    flight at that moment (werkzeug's request and its environ refer to each other): a few
    requests' worth per freeze, and freezes as rare as the tables' growth. Returns the undo
    (for tests)."""
    began = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            began[0] = time.thread_time()
        elif time.thread_time() - began[0] > slow_s:
            gc.freeze()

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)
