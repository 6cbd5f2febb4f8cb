"""A function's memory setting, enforced the way Lambda enforces it (see docs/emulator.md,
"Crashes, out-of-memory and timeouts").

Lambda caps an execution environment's *resident* memory (a cgroup on its microVM): a
process may map far more address space than that, and only pages it touches count. When
the resident size reaches the setting the environment is killed and the invocation fails
with `Runtime.OutOfMemory`. Lambda reports the peak as "Max Memory Used".

The emulator does the same from outside the worker: a guard thread reads each busy or
starting environment's peak resident size (VmHWM of /proc/PID/status, which the kernel
keeps exact, so a spike between two samples is still seen) and SIGKILLs an environment
whose peak is over its setting. Sampling runs in the emulator's process, not in the
worker, because a handler allocating in one C call (`b"x" * n`) holds its own GIL.

Why not RLIMIT_AS alone: it limits virtual memory, and a warm `messages` environment maps
about 165 MB plus 72 MB per thread (8 MB of stack, 64 MB of malloc arena reserved and never
touched) against an RSS of about 95 MB; a 16-thread fan-out pool maps over 1.3 GB. A limit
tight enough to stand for the setting would fail threads, not allocations. The worker sets
one anyway, far above the setting (ADDRESS_SPACE_HEADROOM past what it has mapped after
init): a ceiling that makes one absurd allocation fail at once with MemoryError, as the
overcommit check of Lambda's small microVM does, and that bounds what a starved guard
could let through on a loaded machine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

MIB = 1024 * 1024
# How often busy environments are sampled. The kernel's high-water mark makes a missed
# spike visible at the next sample; the interval only bounds how far a handler gets past
# its setting before it is killed.
SAMPLE_INTERVAL = 0.01
# The worker's address-space ceiling: what it mapped after init, plus its memory setting,
# plus this (thread stacks and malloc arenas reserve address space without using it).
ADDRESS_SPACE_HEADROOM = 4096 * MIB

logger = logging.getLogger("emulator")


def peak_resident_bytes(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM), or None if it is gone or unreadable."""
    return _status_field(pid, "VmHWM")


def mapped_bytes(pid: int) -> int | None:
    """The process's virtual size (VmSize): every mapping, touched or not."""
    return _status_field(pid, "VmSize")


def _status_field(pid: int, name: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return None
    return _parse_field(status, name.encode() + b":")


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _parse_field(status: bytes, key: bytes) -> int | None:
    at = status.find(key)
    if at < 0:
        return None
    return int(status[at + len(key) : status.index(b"kB", at)]) * 1024  # the kernel writes kB


class PeakReader:
    """`peak_resident_bytes` for the guard's hot loop: every busy environment is read 100
    times a second, and every invocation twice more, so each worker's /proc/PID/status
    stays open and is re-read with one pread (about 6 µs against 30 µs for open, read,
    close and a line-by-line parse). An open /proc file belongs to that process, not to
    its number: after the process ends its reads fail (and the file is closed), so while a
    file is open a reused pid cannot be misread.

    A worker is not measured until it has exec'd: between fork and exec the child's
    memory is a copy of the emulator's, and so is its high-water mark (a test process
    running the emulator in-thread had a 610 MB peak, which "killed" a 512 MB authorizer
    at birth). Until then its command line is still the emulator's own."""

    def __init__(self) -> None:
        self._files: dict[int, int] = {}
        self._lock = threading.Lock()
        self._own_cmdline = _cmdline(os.getpid())

    def __call__(self, pid: int) -> int | None:
        with self._lock:
            fd = self._files.get(pid)
            if fd is None:
                if _cmdline(pid) in (self._own_cmdline, None):
                    return None  # not exec'd yet (or gone): nothing of its own to measure
                try:
                    fd = self._files[pid] = os.open(f"/proc/{pid}/status", os.O_RDONLY)
                except OSError:
                    return None
            try:
                status = os.pread(fd, 8192, 0)
            except OSError:
                status = b""
            if not status:  # the process is gone (ESRCH, or nothing left to read)
                self._close(pid)
                return None
        return _parse_field(status, b"VmHWM:")

    def keep_only(self, pids: set[int]) -> None:
        """Close the files of processes no longer watched (ended or replaced environments)."""
        with self._lock:
            for pid in [p for p in self._files if p not in pids]:
                self._close(pid)

    def close(self) -> None:
        self.keep_only(set())

    def __len__(self) -> int:
        return len(self._files)

    def _close(self, pid: int) -> None:
        fd = self._files.pop(pid, None)
        if fd is not None:
            os.close(fd)


def can_measure() -> bool:
    """Linux exposes VmHWM; elsewhere the setting is reported but not enforced."""
    return peak_resident_bytes(os.getpid()) is not None


class Watched(Protocol):
    """What the guard needs of an execution environment."""

    @property
    def pid(self) -> int | None: ...

    @property
    def memory_limit_bytes(self) -> int: ...

    def record_peak(self, peak: int) -> None: ...

    def end_out_of_memory(self) -> None: ...


class MemoryGuard:
    """One thread for every environment of an emulator; it sleeps while none is busy."""

    def __init__(
        self,
        enabled: bool = True,
        interval: float = SAMPLE_INTERVAL,
        measure: Callable[[int], int | None] | None = None,
    ) -> None:
        self._interval = interval
        self._reader: PeakReader | None = None
        if measure is None:
            measure = self._reader = PeakReader()
        self._measure = measure
        self.enforced = enabled and can_measure()
        self._watched: dict[int, Watched] = {}
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        if enabled and not self.enforced:
            logger.warning("memory settings are not enforced: this system has no /proc/PID/status VmHWM")

    def watch(self, env: Watched) -> None:
        """Sample `env` until `unwatch`: while it starts and while it runs an invocation."""
        if not self.enforced:
            return
        with self._changed:
            self._watched[id(env)] = env
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="memory-guard", daemon=True)
                self._thread.start()
            self._changed.notify()
        # The first sample now, so a short invocation has a peak too.
        self._check(env)

    def unwatch(self, env: Watched) -> None:
        """Stop sampling `env`, after one last sample (its peak at the end of the call)."""
        if not self.enforced:
            return
        self._check(env)
        with self._changed:
            self._watched.pop(id(env), None)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._watched.clear()
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(5)
        if self._reader is not None:
            self._reader.close()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._watched and not self._stopped:
                    self._changed.wait()
                if self._stopped:
                    return
                envs = list(self._watched.values())
            if self._reader is not None and len(self._reader) > 2 * len(envs) + 8:
                self._reader.keep_only({pid for env in envs if (pid := env.pid) is not None})
            for env in envs:
                self._check(env)
            with self._changed:
                if self._stopped:
                    return
                self._changed.wait(self._interval)

    def _check(self, env: Watched) -> None:
        if self._stopped:
            return  # after stop(): no file is opened again
        pid = env.pid
        if pid is None:
            return
        peak = self._measure(pid)
        if peak is None:
            return
        env.record_peak(peak)
        if peak > env.memory_limit_bytes:
            env.end_out_of_memory()
