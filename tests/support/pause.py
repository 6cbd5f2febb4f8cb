"""Pause points the test controls: code under test calls `hook(point)` at named places;
a test arms a point, waits until a thread reaches it, does its interleaving, releases it."""

from __future__ import annotations

import threading
from collections.abc import Callable


class PausePoints:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, tuple[threading.Event, threading.Event]] = {}
        self._actions: dict[str, Callable[[], None]] = {}
        # Every point ever armed, so a test can still release one a thread has consumed.
        self._events: dict[str, tuple[threading.Event, threading.Event]] = {}

    def arm(self, point: str) -> None:
        """The next thread reaching `point` stops there until `release(point)`."""
        with self._lock:
            self._armed[point] = (threading.Event(), threading.Event())
            self._events[point] = self._armed[point]

    def on(self, point: str, action: Callable[[], None]) -> None:
        """Run `action` (e.g. raise, to simulate a crash) when a thread reaches `point`."""
        self._actions[point] = action

    def wait_reached(self, point: str, timeout: float = 20.0) -> None:
        reached, _ = self._events[point]
        assert reached.wait(timeout), f"no thread reached pause point {point!r}"

    def release(self, point: str) -> None:
        self._events[point][1].set()

    def __call__(self, point: str) -> None:
        action = self._actions.get(point)
        if action is not None:
            action()
        with self._lock:
            events = self._armed.pop(point, None)
        if events is not None:
            reached, go = events
            reached.set()
            assert go.wait(60), f"pause point {point!r} was never released"


class Crash(Exception):
    """Stands for a Lambda dying at a pause point (its process just stops there)."""


def crash() -> None:
    raise Crash()
