"""CPU and peak memory of a process tree, read from Linux's /proc (for bench/openloop.py).

CPU: utime+stime of each live process plus cutime+cstime (its children that have exited and
been waited for, e.g. an execution environment that was replaced), so a process that ends
mid-run still counts. Processes whose command line contains an excluded word are left out
with their descendants.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()  # [0] is field 3 (state)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def descendants(pid: int, exclude: Iterable[str] = ()) -> list[int]:
    """`pid`'s children, their children, ...; excluded processes and their subtrees left out."""
    excluded = tuple(exclude)
    tree = _children()
    found: list[int] = []
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        if excluded and any(word in cmdline(child) for word in excluded):
            continue
        found.append(child)
        stack += tree.get(child, [])
    return found


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime, in clock ticks.
    return sum(int(x) for x in fields[11:15]) / TICKS


def own_cpu_seconds(pid: int) -> float:
    """utime+stime of the process alone, without its reaped children."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else sum(int(x) for x in fields[11:13]) / TICKS


def tree_cpu_seconds(pid: int, exclude: Iterable[str] = ()) -> float:
    return sum(cpu_seconds(p) for p in [pid, *descendants(pid, exclude)])


def peak_memory_bytes(pid: int) -> int:
    """VmHWM: the peak resident set size since start (or since reset_peak_memory)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def reset_peak_memory(pid: int) -> None:
    """Reset VmHWM to the current RSS (proc(5): writing 5 to clear_refs)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
