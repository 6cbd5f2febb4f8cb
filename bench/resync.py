"""The periodic resync of a client that is already up to date (not a test: it prints).

    .venv/bin/python -m bench.resync [--runs 20]               # the working tree
    .venv/bin/python -m bench.resync --before d6c661c~1          # that commit's functions/

Clients send `sync` every 60 s; most of the time they lack nothing. This times that sync,
in-process, through the real handler (`session.handle_message`) on a throwaway
redis-server and moto's server (the Management API is replaced by an in-memory list, so
only the handler's own work is measured; moto's and Redis's CPU are not counted), for:

- the final automerge-paper document as bench/run.py builds it (376,753 bytes: one author,
  259,778 keystrokes in one transaction), and a ~5 MB scene (the same trace typed by 21
  authors into 21 texts, one transaction per trace transaction);
- "quiet": nothing written since the last log compaction (a snapshot in S3, an empty
  log), and "active": 60 typed updates since then, in the log and the Redis tail, which
  the client already has;
- the cache warm, and the cache down (the handler's Redis URL points at a closed port:
  the DynamoDB-only path).

Each figure is the median of `--runs` syncs of the client's own state vector: the
handler's CPU (`time.process_time`, this process only) and wall time, and the size of the
SyncStep2 it answered with. The built scenes are kept in the system's temp directory
between runs (building them takes minutes: pycrdt is slow at one huge transaction, and
the 5 MB one replays 5.5 million keystrokes).

`--before REV` runs the same against `git archive REV functions` (the handler code of that
commit), so before and after are measured by one script on one machine.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _functions_dir(argv: list[str]) -> Path:
    """The handler code to measure: the working tree's, or REV's with --before REV."""
    if "--before" not in argv:
        return ROOT / "functions"
    rev = argv[argv.index("--before") + 1]
    target = Path(tempfile.mkdtemp(prefix="collab-bench-before-"))
    archive = subprocess.run(["git", "archive", rev, "functions"], cwd=ROOT, check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target / "functions"


FUNCTIONS = _functions_dir(sys.argv)
sys.path[:0] = [str(FUNCTIONS), str(ROOT)]

from pycrdt import Doc, Text, get_state, merge_updates  # noqa: E402

from bench import traces  # noqa: E402
from collab import protocol, runtime, session  # noqa: E402
from collab.caller import Caller  # noqa: E402
from collab.settings import Settings  # noqa: E402
from devstack import services  # noqa: E402

TRACE = traces.AUTOMERGE_PAPER
BIG_SCENE_AUTHORS = 21


class Posts:
    """Stands in for the Management API: keeps what the handler sent, per connection."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}

    def send(self, connection_id: str, text: str) -> bool:
        self.sent.setdefault(connection_id, []).append(json.loads(text))
        return True

    def send_all(self, connection_ids: list[str], text: str) -> list[str]:
        for connection_id in connection_ids:
            self.send(connection_id, text)
        return []

    def close(self, connection_id: str) -> None:
        return None


def kept(name: str, build: Any) -> bytes:
    """`build()`, kept in the temp directory under `name` and the trace's digest."""
    digest = hashlib.sha256(TRACE.read_bytes()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"collab-bench-resync-{digest}-{name}.bin"
    if not path.exists():
        data: bytes = build()
        path.with_suffix(".tmp").write_bytes(data)
        path.with_suffix(".tmp").rename(path)
    return path.read_bytes()


def authors_state(first: int, count: int) -> bytes:
    """The trace typed by authors first..first+count-1, each into its own text."""

    def build() -> bytes:
        trace = traces.load(TRACE)
        return merge_updates(*(traces.replay(trace, 1000 + i, f"t{i}") for i in range(first, first + count)))

    return kept(f"authors-{first}-{count}", build)


def big_scene() -> bytes:
    # Kept in two parts, so that a run interrupted while building keeps the first.
    return merge_updates(authors_state(0, 14), authors_state(14, BIG_SCENE_AUTHORS - 14))


def typing(count: int, client_id: int) -> list[bytes]:
    doc: Doc = Doc(client_id=client_id)
    text = doc.get("notes", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text), "abcdefghij"[i % 10])
    return updates


def build(env: dict[str, str]) -> tuple[runtime.Runtime, Posts]:
    rt = runtime.build(Settings.from_env(env))
    posts = Posts()
    rt.outbox_factory = lambda endpoint: posts  # type: ignore[assignment,return-value]
    return rt, posts


def sync_frame(state_vector: bytes) -> str:
    return json.dumps({"action": "sync", "data": protocol.encode_base64(protocol.sync_step1(state_vector))})


def measure(
    rt: runtime.Runtime, posts: Posts, scene: str, state_vector: bytes, runs: int
) -> dict[str, float]:
    caller = Caller(
        f"reader{uuid.uuid4().hex[:6]}=", scene, "reader", "Reader", "editor", 4_000_000_000, "http://local"
    )
    frame = sync_frame(state_vector)
    session.handle_message(rt, caller, frame)  # joins; later syncs are periodic resyncs
    cpu: list[float] = []
    wall: list[float] = []
    step2 = 0
    for _ in range(runs):
        posts.sent.clear()
        c0, w0 = time.process_time(), time.perf_counter()
        session.handle_message(rt, caller, frame)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
        replies = posts.sent[caller.connection_id]
        syncs = [
            protocol.decode_sync_message(protocol.decode_base64(m["data"]))
            for m in replies
            if m["type"] == "sync"
        ]
        assert [m.kind for m in syncs] == [protocol.SYNC_STEP2, protocol.SYNC_STEP1], replies
        step2 = len(syncs[0].payload)
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "step2": step2}


def main() -> None:
    import collab

    assert Path(collab.__file__).parent.parent == FUNCTIONS, collab.__file__
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--before", metavar="REV", help="measure REV's functions/ instead")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the handlers log every cache fallback at INFO
    scenes = {
        "automerge-paper": kept("automerge-paper", traces.automerge_paper_state),
        f"{BIG_SCENE_AUTHORS} authors": big_scene(),
    }
    redis = services.start_redis()
    moto = services.start_moto()
    try:
        os.environ.update(services.aws_endpoint_env(moto.url))
        prefix = f"r{uuid.uuid4().hex[:8]}"
        env = {**services.create_tables(moto.url, prefix), "SNAPSHOT_BUCKET": f"{prefix}-snapshots"}
        services.create_bucket(moto.url, env["SNAPSHOT_BUCKET"])
        warm = build({**env, "REDIS_URL": redis.url})
        down = build({**env, "REDIS_URL": f"redis://127.0.0.1:{services.free_port()}/0"})
        print(
            f"{'functions/ of ' + args.before if args.before else 'the working tree'}: "
            f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; median of {args.runs} syncs"
        )
        print(
            f"{'scene':<26}{'since compaction':<18}{'cache':<7}{'CPU ms':>9}{'wall ms':>9}{'SyncStep2 B':>13}"
        )
        for name, state in scenes.items():
            for activity in ("quiet", "active"):
                scene = f"bench-{uuid.uuid4().hex[:8]}"
                rt, _ = warm
                rt.access.grant(scene, "reader", "editor")
                rt.documents.append(scene, state)
                rt.documents.compact_log(scene)  # the steady state: a snapshot, an empty log
                client = state
                if activity == "active":
                    for update in typing(60, 77):
                        rt.documents.append(scene, update)
                        client = merge_updates(client, update)
                state_vector = get_state(client)
                for cache, (rt, posts) in (("warm", warm), ("down", down)):
                    result = measure(rt, posts, scene, state_vector, args.runs)
                    label = f"{name} ({len(state) / 1e6:.2f} MB)"
                    print(
                        f"{label:<26}{activity:<18}{cache:<7}{result['cpu']:9.1f}{result['wall']:9.1f}"
                        f"{result['step2']:13,.0f}"
                    )
    finally:
        moto.stop()
        redis.stop()


if __name__ == "__main__":
    main()
