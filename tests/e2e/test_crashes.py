"""Execution environments dying under real clients, as Lambda's do (issue 14): killed while
idle or busy (one, and every one), a handler that calls os._exit, a handler that goes over
the memory its function is deployed with. In each case the client whose invocation died
gets API Gateway's `Internal server error`, the next invocation is served by a fresh
environment, updates typed afterwards reach every peer, and the author's next resync
restores what the killed invocation lost.

The faults are real (SIGKILL of the worker process, os._exit, touched memory) and are
placed with the handlers' own pause points (devstack/faults.py), never with sleeps."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from collab import protocol
from devstack import deployed
from devstack.faults import Faults
from devstack.stack import ROUTES_FILE, LocalStack
from emulator.config import RouteTable
from emulator.memory import MIB, can_measure, peak_resident_bytes
from tests.e2e.conftest import E2E_DIR, STACK_ENV, Scene
from tests.e2e.wsclient import (
    Message,
    Opener,
    WsClient,
    decode_sync,
    of_type,
    server_text,
    sync_kind,
    sync_step2_data,
)

# Before the durable write (the update is lost) and between it and the broadcast (stored,
# never sent): the two places a dying `update` invocation can leave a scene.
BEFORE_WRITE = "append:start"
AFTER_WRITE = "append:durable-written"
WAIT = 60.0  # generous: a loaded 2-core machine starts environments slowly
needs_proc = pytest.mark.skipif(not can_measure(), reason="memory is measured in /proc (Linux)")


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Faults:
    return Faults(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def stack(faults: Faults) -> Iterator[LocalStack]:
    """This module's own stack (it overrides the session one): with the fault hooks."""
    with LocalStack(port=0, extra_env=STACK_ENV, seed_demo=False, faults_dir=faults.directory) as running:
        yield running


@pytest.fixture(autouse=True)
def disarmed(faults: Faults) -> Iterator[None]:
    """No test leaves an armed or paused point behind for the next one."""
    yield
    for point in (BEFORE_WRITE, AFTER_WRITE):
        faults.disarm(point)
        faults.release(point)


@pytest.fixture
def open_client(scene: Scene) -> Iterator[Opener]:
    opener = Opener(scene)
    yield opener
    opener.close_all()


@pytest.fixture
def invocations(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="emulator")
    return caplog


def internal_error(message: Message) -> bool:
    return message.get("message") == "Internal server error"


def pids(stack: LocalStack, function: str | None = None) -> list[int]:
    assert stack.emulator is not None
    return [env.pid for env in stack.emulator.lambdas.environments(function) if env.pid is not None]


def idle_pids(stack: LocalStack, function: str | None = None) -> list[int]:
    """The environments' pids once none is busy (a reply can reach a client before its
    invocation has returned; a $disconnect of an earlier test may still run)."""
    assert stack.emulator is not None
    deadline = time.monotonic() + WAIT
    while any(env.busy for env in stack.emulator.lambdas.environments(function)):
        assert time.monotonic() < deadline, "environments stayed busy"
        time.sleep(0.01)
    return pids(stack, function)


def kill(victims: list[int]) -> None:
    assert victims, "nothing to kill"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def failed_invocation(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    """The emulator's log line of the invocation API Gateway's error message names."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "emulator"]
    (line,) = [x for x in lines if x.get("event") == "invocation" and x["gatewayRequestId"] == request_id]
    return line


def pair(open_client: Opener) -> tuple[WsClient, WsClient]:
    """An author and a peer, synced, sharing a first edit."""
    alice, bob = open_client("alice"), open_client("bob")
    alice.synced(timeout=WAIT)
    bob.synced(timeout=WAIT)
    alice.edit("INT. ROOM - DAY\n")
    bob.wait_text(alice.current_text(), timeout=WAIT)
    return alice, bob


def author_resync(client: WsClient) -> None:
    """What a y-protocols provider does on its periodic resync: send SyncStep1, and answer
    the server's SyncStep1 with what the server lacks (an edit whose invocation died)."""
    mark = client.sync()
    client.wait_for(of_type("connected"), after=mark, timeout=WAIT)
    server_state = decode_sync(client.wait_for(sync_kind(protocol.SYNC_STEP1), after=mark, timeout=WAIT))
    client.current_text()  # apply the server's SyncStep2 first
    client.send("update", data=sync_step2_data(client.doc.get_update(server_state.payload)))


def edit_that_dies(
    alice: WsClient, faults: Faults, point: str, action: str
) -> tuple[Message, dict[str, Any]]:
    """Alice types; the `messages` environment running her update meets `action` at
    `point` (a pause: the test kills it). Her error message, and who reached the point."""
    faults.arm(point, action)
    mark = alice.mark()
    alice.edit("LOST LINE\n")
    reached = faults.wait_reached(point, timeout=WAIT)
    assert reached["function"] == "messages"
    if action == "pause":
        kill([reached["pid"]])
    return alice.wait_for(internal_error, after=mark, timeout=WAIT), reached


def typed_afterwards_reaches_every_peer(alice: WsClient, bob: WsClient) -> None:
    """A fresh environment serves the next update: it is broadcast to bob (who cannot show
    it yet if it builds on the lost one: Yjs keeps it pending)."""
    mark = bob.mark()
    update = alice.edit("AFTER THE CRASH\n")
    broadcast = bob.wait_for(of_type("update"), after=mark, timeout=WAIT)
    assert decode_sync(broadcast).payload == update


def scene_converges(open_client: Opener, alice: WsClient, bob: WsClient) -> None:
    expected = alice.current_text()
    assert "LOST LINE" in expected and "AFTER THE CRASH" in expected
    bob.wait_text(expected, timeout=WAIT)
    late = open_client("carol")
    late.synced(timeout=WAIT)
    assert late.current_text() == expected
    assert server_text(open_client.scene) == expected


# --------------------------------------------------------------------- idle environments


def test_killing_an_idle_messages_environment_loses_nothing(stack: LocalStack, open_client: Opener) -> None:
    alice, bob = pair(open_client)
    kill(idle_pids(stack, "messages")[:1])
    mark = alice.mark()
    alice.edit("typed after one idle environment died\n")
    bob.wait_text(alice.current_text(), timeout=WAIT)
    assert alice.find(internal_error, after=mark) == []


def test_killing_every_idle_environment_loses_nothing(stack: LocalStack, open_client: Opener) -> None:
    alice, bob = pair(open_client)
    kill(idle_pids(stack))  # authorizer, connect, messages, disconnect
    mark = alice.mark()
    alice.edit("typed after every environment died\n")
    bob.wait_text(alice.current_text(), timeout=WAIT)
    assert alice.find(internal_error, after=mark) == []
    late = open_client("carol")  # the authorizer and $connect start afresh too
    late.synced(timeout=WAIT)
    assert late.current_text() == alice.current_text()


# --------------------------------------------------------------------- busy environments


def test_killing_the_busy_environment_before_the_durable_write(
    stack: LocalStack, open_client: Opener, faults: Faults, invocations: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair(open_client)
    error, _ = edit_that_dies(alice, faults, BEFORE_WRITE, "pause")
    line = failed_invocation(invocations, error["requestId"])
    assert line["status"] == "crash" and line["error"].startswith("Runtime.ExitError: ")
    assert "LOST LINE" not in server_text(open_client.scene)  # it never reached DynamoDB
    typed_afterwards_reaches_every_peer(alice, bob)
    author_resync(alice)  # her provider sends what the server lacks
    scene_converges(open_client, alice, bob)


def test_killing_every_environment_while_one_is_busy(
    stack: LocalStack, open_client: Opener, faults: Faults
) -> None:
    alice, bob = pair(open_client)
    faults.arm(BEFORE_WRITE, "pause")
    mark = alice.mark()
    alice.edit("LOST LINE\n")
    faults.wait_reached(BEFORE_WRITE, timeout=WAIT)
    kill(pids(stack))  # the busy one and every idle one, of every function
    alice.wait_for(internal_error, after=mark, timeout=WAIT)
    typed_afterwards_reaches_every_peer(alice, bob)
    author_resync(alice)
    scene_converges(open_client, alice, bob)


def test_killing_messages_between_the_durable_write_and_the_broadcast(
    stack: LocalStack, open_client: Opener, faults: Faults
) -> None:
    alice, bob = pair(open_client)
    edit_that_dies(alice, faults, AFTER_WRITE, "pause")
    # Acknowledged (stored) but never broadcast: only a resync can bring it to bob.
    assert "LOST LINE" in server_text(open_client.scene)
    typed_afterwards_reaches_every_peer(alice, bob)
    author_resync(alice)  # the server has it already: her answer adds nothing
    fresh = open_client("dave")
    fresh.synced(timeout=WAIT)
    assert fresh.current_text() == alice.current_text()
    # Bob's own periodic resync repairs the lost broadcast (docs/design.md §2, `sync`).
    bob.synced(timeout=WAIT)
    scene_converges(open_client, alice, bob)


# --------------------------------------------------------------------- handlers that die


def test_a_handler_calling_os_exit(
    stack: LocalStack, open_client: Opener, faults: Faults, invocations: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair(open_client)
    error, _ = edit_that_dies(alice, faults, BEFORE_WRITE, "exit")
    line = failed_invocation(invocations, error["requestId"])
    assert line["status"] == "crash" and line["error"].endswith("Runtime exited with error: exit status 1")
    typed_afterwards_reaches_every_peer(alice, bob)
    author_resync(alice)
    scene_converges(open_client, alice, bob)


@needs_proc
def test_a_handler_going_over_its_deployed_memory(
    stack: LocalStack, open_client: Opener, faults: Faults, invocations: pytest.LogCaptureFixture
) -> None:
    deployed_mb = deployed.function_memory(RouteTable.load(ROUTES_FILE).functions)["messages"]
    alice, bob = pair(open_client)
    error, _ = edit_that_dies(alice, faults, BEFORE_WRITE, "allocate")
    line = failed_invocation(invocations, error["requestId"])
    assert line["status"] == "out_of_memory" and line["error"].startswith("Runtime.OutOfMemory: ")
    assert line["memory_size_mb"] == deployed_mb  # cdk.json's setting, as deployed
    assert line["max_memory_used_mb"] > deployed_mb
    typed_afterwards_reaches_every_peer(alice, bob)
    author_resync(alice)
    scene_converges(open_client, alice, bob)


@needs_proc
def test_normal_handlers_fit_their_deployed_memory(stack: LocalStack, open_client: Opener) -> None:
    """Calibration: what the other tests ran never came near the settings."""
    pair(open_client)
    assert stack.emulator is not None
    memory = deployed.function_memory(RouteTable.load(ROUTES_FILE).functions)
    for env in stack.emulator.lambdas.environments():
        assert env.pid is not None
        peak = peak_resident_bytes(env.pid)
        assert peak is not None and peak < memory[env.function] * MIB / 2, (env, peak)


# --------------------------------------------------------------------- real yjs clients


def test_yjs_clients_typing_through_a_crash_of_every_environment_converge(
    stack: LocalStack, scene: Scene, faults: Faults
) -> None:
    """Three Node yjs clients type (tests/e2e/scenarios/converge.mjs) while one update is
    held before its durable write and every environment is killed; the scenario's closing
    resync rounds (each client answering the server's SyncStep1) make them converge, with
    the server."""
    tokens = [scene.grant(f"writer{i}", "editor") for i in range(3)]
    config = {"wsUrl": stack.ws_url, "sceneId": scene.scene_id, "tokens": tokens, "durationMs": 5000}
    faults.arm(BEFORE_WRITE, "pause")
    node = subprocess.Popen(
        ["node", str(E2E_DIR / "scenarios" / "converge.mjs"), json.dumps(config)],
        cwd=E2E_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        faults.wait_reached(BEFORE_WRITE, timeout=WAIT)
        kill(pids(stack))
        out, err = node.communicate(timeout=600)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, err[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    texts = result["texts"]
    assert len(set(texts)) == 1 and len(texts[0]) > 50
    assert result["errors"] == []
    assert server_text(scene) == texts[0]
