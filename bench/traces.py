"""The editing traces the benchmarks replay (tests/data/traces), typed into pycrdt docs.
Imports nothing of the repository, so a benchmark measuring another commit's handlers
(bench/resync.py --before) can use it without changing what it imports."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

AUTOMERGE_PAPER = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "traces" / "automerge-paper.json.gz"
)


def load(path: Path = AUTOMERGE_PAPER) -> dict[str, Any]:
    with gzip.open(path) as file:
        return dict(json.loads(file.read()))


def type_patches(text: Text, patches: list[list[Any]]) -> None:
    for position, deleted, inserted in patches:
        if deleted:
            del text[position : position + deleted]
        if inserted:
            text.insert(position, inserted)


def replay(
    trace: dict[str, Any], client_id: int | None = None, name: str = "t", one_transaction: bool = False
) -> bytes:
    """The trace typed into Y.Text `name`: one transaction per trace transaction, or the
    whole trace in one (fewer, larger items), checked against its end content."""
    doc: Doc = Doc() if client_id is None else Doc(client_id=client_id)
    text = doc.get(name, type=Text)
    if one_transaction:
        with doc.transaction():
            for txn in trace["txns"]:
                type_patches(text, txn["patches"])
    else:
        for txn in trace["txns"]:
            with doc.transaction():
                type_patches(text, txn["patches"])
    assert str(text) == trace["endContent"]
    return doc.get_update()


def automerge_paper_state() -> bytes:
    """The final automerge-paper document, the whole trace in one transaction (376,753 bytes)."""
    return replay(load(), one_transaction=True)
