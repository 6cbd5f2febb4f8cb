"""Pure parts of the emulator: the frame scanner, route selection, the route table's
checks, and how an authorizer's answer is read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from emulator.config import EmulatorConfig, RouteTable, RouteTableError
from emulator.environments import Outcome
from emulator.frames import FrameScanner
from emulator.ids import gateway_id
from emulator.memory import PeakReader, can_measure, peak_resident_bytes
from emulator.policy import decide

ARN = "arn:aws:execute-api:us-east-1:123456789012:emulator01/local/$connect"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 65536:
        head = bytes([first, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def scan_in_pieces(scanner: FrameScanner, stream: bytes, piece: int) -> bytes:
    return b"".join(scanner.scan(stream[i : i + piece]) for i in range(0, len(stream), piece))


@pytest.mark.parametrize("piece", [1, 3, 7, 4096, 1 << 20])
def test_scanner_passes_frames_within_limits_unchanged(piece: int) -> None:
    stream = (
        frame(1, b"a" * 10) + frame(1, b"b" * 300, fin=False) + frame(9, b"ping") + frame(0, b"c" * 70000)
    )
    violations: list[tuple[int, str]] = []
    scanner = FrameScanner(lambda code, reason: violations.append((code, reason)), 100_000, 200_000)
    assert scan_in_pieces(scanner, stream, piece) == stream
    assert violations == []


@pytest.mark.parametrize("piece", [1, 5, 1 << 20])
def test_scanner_drops_an_oversized_frame_and_later_data_but_not_control_frames(piece: int) -> None:
    ok, big, close = frame(1, b"ok"), frame(1, b"x" * 200), frame(8, b"\x03\xe8")
    violations: list[int] = []
    scanner = FrameScanner(lambda code, _reason: violations.append(code), frame_limit=100, message_limit=1000)
    assert scan_in_pieces(scanner, ok + big + frame(1, b"later") + close, piece) == ok + close
    assert violations == [1009]


def test_scanner_counts_a_message_across_its_frames() -> None:
    violations: list[int] = []
    scanner = FrameScanner(lambda code, _reason: violations.append(code), frame_limit=100, message_limit=250)
    first = frame(1, b"a" * 100, fin=False) + frame(0, b"b" * 100, fin=False)
    assert scanner.scan(first) == first
    assert scanner.scan(frame(0, b"c" * 51)) == b""
    assert violations == [1009]


def test_a_new_message_restarts_the_count() -> None:
    scanner = FrameScanner(lambda code, _reason: pytest.fail("no violation expected"), 100, 150)
    for _ in range(3):
        message = frame(1, b"a" * 100, fin=False) + frame(0, b"b" * 50)
        assert scanner.scan(message) == message


TABLE = {
    "routeSelectionExpression": "$request.body.meta.kind",
    "functions": {"f": {"handler": "pkg.mod.handler"}},
    "routes": {"$connect": "f", "sync": "f", "$default": "f"},
}


@pytest.mark.parametrize(
    ("body", "route"),
    [
        ('{"meta": {"kind": "sync"}}', "sync"),
        ('{"meta": {"kind": "other"}}', "$default"),
        ('{"meta": {"kind": "$connect"}}', "$default"),
        ('{"meta": "sync"}', "$default"),
        ("sync", "$default"),
        ("", "$default"),
    ],
)
def test_route_selection_follows_the_expression(body: str, route: str) -> None:
    assert RouteTable.parse(TABLE, 29.0).select_route(body) == route


def test_no_default_route_selects_nothing() -> None:
    table = RouteTable.parse({**TABLE, "routes": {"sync": "f"}}, 29.0)
    assert table.select_route('{"meta": {"kind": "nope"}}') is None


@pytest.mark.parametrize(
    "change",
    [
        {"routes": {"sync": "nowhere"}},
        {"functions": {"f": {"handler": "no_dot"}}},
        {"routeSelectionExpression": "$request.header.x"},
        {"authorizer": {"function": "nowhere"}},
        {"authorizer": {"function": "f", "route": "sync"}},
    ],
)
def test_route_table_mistakes_fail_at_start_up(change: dict[str, Any]) -> None:
    with pytest.raises(RouteTableError):
        RouteTable.parse({**TABLE, **change}, 29.0)


def test_product_route_table_loads() -> None:
    from pathlib import Path

    table = RouteTable.load(Path(__file__).parents[2] / "functions" / "routes.json")
    assert table.authorizer == "authorizer"
    assert table.select_route('{"action": "sync"}') == "sync"


def authorizer_result(result: Any = None, status: str = "ok", message: str = "") -> Outcome:
    error = None if status == "ok" else {"errorType": "Exception", "errorMessage": message}
    return Outcome(status, result, error, "req", 3.0, "env-1", False)


def policy(
    effect: str, resource: Any = ARN, action: Any = "execute-api:Invoke", **extra: Any
) -> dict[str, Any]:
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    return {
        "principalId": "p",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        **extra,
    }


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (authorizer_result(status="error", message="Unauthorized"), 401),
        (authorizer_result(status="error", message="something else"), 500),
        (authorizer_result(status="timeout"), 500),
        (authorizer_result(policy("Deny")), 403),
        (authorizer_result(policy("Allow", resource="arn:aws:execute-api:*:*:other/*")), 403),
        (authorizer_result(policy("Allow", action="s3:GetObject")), 403),
        (authorizer_result({"principalId": "p"}), 500),
        (authorizer_result(policy("Allow", context={"nested": {"no": 1}})), 500),
        (authorizer_result(policy("Allow")), 200),
        (authorizer_result(policy("Allow", resource=["arn:aws:execute-api:us-east-1:*:emulator01/*"])), 200),
        (authorizer_result(policy("Allow", action="execute-api:*", resource="*")), 200),
    ],
)
def test_authorizer_answers(outcome: Outcome, status: int) -> None:
    assert decide(outcome, ARN).status == status


def test_deny_wins_over_allow() -> None:
    answer = policy("Allow")
    answer["policyDocument"]["Statement"].append({"Effect": "Deny", "Action": "*", "Resource": ARN})
    assert decide(authorizer_result(answer), ARN).status == 403


def test_allowed_context_is_stringified_with_principal() -> None:
    decision = decide(authorizer_result(policy("Allow", context={"n": 2, "b": False, "s": "x"})), ARN)
    assert decision.allowed
    assert {k: decision.context[k] for k in ("n", "b", "s", "principalId")} == {
        "n": "2",
        "b": "false",
        "s": "x",
        "principalId": "p",
    }


def test_gateway_ids_look_like_api_gateways() -> None:
    ids = {gateway_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 16 and i.endswith("=") and i[:-1].isalnum() for i in ids)


def test_function_memory_overrides_the_route_table_for_known_functions() -> None:
    from emulator.__main__ import parse_args
    from tests.emulator.support import APP_DIR

    config = EmulatorConfig(APP_DIR / "routes.json", APP_DIR, function_memory={"messages": 640})
    functions = config.route_table().functions
    assert functions["messages"].memory_mb == 640
    assert functions["connect"].memory_mb == 128  # the route table's default
    with pytest.raises(RouteTableError, match="unknown functions"):
        EmulatorConfig(APP_DIR / "routes.json", APP_DIR, function_memory={"nope": 1}).route_table()
    cli = parse_args(["--routes", "r.json", "--code", "c", "--memory", "messages=640", "--no-memory-limit"])
    assert cli.function_memory == {"messages": 640} and not cli.enforce_memory


@pytest.mark.skipif(not can_measure(), reason="memory is measured in /proc (Linux)")
def test_peak_reader_follows_a_process_and_stops_when_it_ends() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; b = bytearray(64 << 20); b[::4096] = b'x' * (16 << 10); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    reader = PeakReader()
    try:
        # The kept-open file reads what a fresh open reads, growing with the process.
        first = reader(child.pid)
        assert first is not None and first <= (peak_resident_bytes(child.pid) or 0)
        deadline = time.monotonic() + 60
        while (peak := reader(child.pid) or 0) < 64 << 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert peak >= 64 << 20
        assert peak <= (peak_resident_bytes(child.pid) or 0)  # a high-water mark only grows
        assert len(reader) == 1
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    # Ended (and reaped): the file is closed and the pid is never misread if reused.
    assert reader(child.pid) is None
    assert len(reader) == 0


@pytest.mark.skipif(not can_measure(), reason="memory is measured in /proc (Linux)")
def test_peak_reader_ignores_a_child_until_it_has_execd() -> None:
    # Between fork and exec a child's peak is a copy of this process's: not its own.
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait for the word, then become a small program of its own
        os.close(go_write)
        os.read(go_read, 1)
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(30)"])
    os.close(go_read)
    reader = PeakReader()
    try:
        assert reader(pid) is None  # forked, not exec'd: nothing of its own yet
        os.write(go_write, b"x")
        deadline = time.monotonic() + 60
        while (peak := reader(pid)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert peak is not None and peak < (peak_resident_bytes(os.getpid()) or 0)
    finally:
        os.close(go_write)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        reader.close()
