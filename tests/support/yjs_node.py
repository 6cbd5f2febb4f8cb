"""Real Yjs (Node, tests/e2e/node_modules) for tests that must know what Yjs makes of some
bytes: tests/e2e/lib/yjs_corpus.mjs writes updates Yjs produces, yjs_apply.mjs applies
updates, many per process (one Node start for thousands of cases)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

E2E = Path(__file__).resolve().parents[1] / "e2e"


def node(script: str, *args: str, stdin: str = "", timeout: float = 300) -> list[dict[str, Any]]:
    """Run tests/e2e/lib/<script>; its stdout's JSON lines."""
    process = subprocess.run(
        ["node", str(E2E / "lib" / script), *args],
        cwd=E2E,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if process.returncode != 0:
        raise AssertionError(f"{script} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return [json.loads(line) for line in process.stdout.splitlines() if line]


def apply_in_yjs(cases: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """Each (base, update) applied by real Yjs, all in one Node process: per case `fresh`,
    `based` and `read`, each None or the error Yjs threw (yjs_apply.mjs)."""
    lines = "\n".join(
        json.dumps({"id": i, "base": base64.b64encode(b).decode(), "update": base64.b64encode(u).decode()})
        for i, (b, u) in enumerate(cases)
    )
    results = node("yjs_apply.mjs", stdin=lines + "\n")
    assert [r["id"] for r in results] == list(range(len(cases)))
    return results
