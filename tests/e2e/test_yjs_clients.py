"""Real yjs + y-protocols clients (Node) against the local stack: convergence, a real
concurrent editing trace, late joiners, offline edits, big pastes, bursts and presence."""

from __future__ import annotations

import hashlib

from pycrdt import Doc, Text

from collab import runtime
from tests.e2e.conftest import TRACES_DIR, Scene, run_scenario


def server_text(scene: Scene) -> str:
    """What the server would serve a new client, read from its own stores."""
    state = runtime.build(scene.settings()).documents.load(scene.scene_id).state
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=Text))


def test_five_clients_editing_concurrently_converge(scene: Scene) -> None:
    tokens = [scene.grant(f"writer{i}", "editor") for i in range(5)]
    result = run_scenario(
        "converge", {"wsUrl": scene.stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens}
    )
    texts = result["texts"]
    assert result["errors"] == []
    assert result["edits"] > 100
    assert len(set(texts)) == 1, "replicas diverged"
    assert len(texts[0]) > 100
    assert server_text(scene) == texts[0]


def test_clownschool_trace_replays_to_its_end_content(scene: Scene) -> None:
    tokens = [scene.grant(f"agent{i}", "editor") for i in range(3)]
    config = {
        "wsUrl": scene.stack.ws_url,
        "sceneId": scene.scene_id,
        "tokens": tokens,
        "trace": str(TRACES_DIR / "clownschool.json.gz"),
    }
    result = run_scenario("trace", config)
    assert result["errors"] == []
    assert result["transactions"] == 23136
    for text in result["texts"]:
        assert text == result["expected"]
    assert server_text(scene) == result["expected"]


def test_late_joiner_offline_edits_big_paste_and_burst(scene: Scene) -> None:
    tokens = [scene.grant(user, "editor") for user in ("alice", "bob", "carol")]
    result = run_scenario(
        "lifecycle", {"wsUrl": scene.stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens}
    )
    assert result["errors"] == []
    assert result["lateJoinerFirstSync"] == result["expectedAtJoin"] != ""
    assert len(set(result["afterOffline"])) == 1
    assert result["afterPaste"][0] > 1_000_000 and len(set(result["afterPaste"])) == 1
    expected_burst = "".join(chr(65 + i % 26) for i in range(200))
    assert result["burst"] == [expected_burst] * 3
    assert len(set(result["final"])) == 1  # sha256 of each replica's text
    assert hashlib.sha256(server_text(scene).encode()).hexdigest() == result["final"][0]


def test_presence_cleanup_and_cursor_ownership(scene: Scene) -> None:
    tokens = [scene.grant(user, "editor") for user in ("alice", "bob", "carol", "dave")]
    result = run_scenario(
        "presence", {"wsUrl": scene.stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens}
    )
    assert result["errors"] == []
    assert result["carolSeesAliceAfterForgery"] is True  # bob could not remove alice's cursor
    assert result["carolGoneForAlice"] and result["carolGoneForBob"]
    assert "Carol" in result["leftEvents"]
    assert result["daveSees"] == ["Alice", "Bob"]
