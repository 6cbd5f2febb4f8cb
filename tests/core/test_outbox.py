"""The outbox against a real Management API server on loopback that answers what each test
scripts: 200, 410, 403, 429, 500, an answer held back until the test releases it, and a
connection dropped without an answer. These are the faults the emulator cannot produce (it
never throttles or fails); the server records every request as it arrived, so the tests
check what a recipient would have received, and the signatures API Gateway would check."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collab.chunks import split_message
from collab.management_client import Endpoint
from collab.outbox import LANES, Outbox
from collab.protocol import SERVER_FRAME_LIMIT

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1")
# Generous: the tests wait on conditions, this only bounds a broken run.
PATIENCE = 30.0


# -- a scripted Management API ----------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    code: int
    error_type: str = ""
    message: str = ""


@dataclass(frozen=True)
class Hold:
    """Answer 200 only once `release` is set (or a barrier of requests has met)."""

    release: threading.Event | threading.Barrier


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


Answer = Status | Hold | Drop


@dataclass
class Received:
    method: str
    connection_id: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class ScriptedManagementApi(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # every post of a broadcast connects at once

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            # The handshake happens in the handler's thread: a client that refuses the
            # certificate must not block the accept loop for the others.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.scheme = "https" if tls else "http"
        self.script: dict[str, deque[Answer]] = defaultdict(deque)
        self.received: list[Received] = []
        self.accepted = 0  # TCP connections
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight = 0
        self.max_in_flight_per_id: dict[str, int] = defaultdict(int)
        self.idle: set[socket.socket] = set()
        self.changed = threading.Condition()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_address[1]}/local"

    def answer(self, connection_id: str, *answers: Answer) -> None:
        self.script[connection_id].extend(answers)

    def to(self, connection_id: str) -> list[Received]:
        with self.changed:
            return [r for r in self.received if r.connection_id == connection_id]

    def wait_for(self, condition: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, timeout=PATIENCE), "the server never saw it"

    def close_idle_connections(self) -> None:
        """What a load balancer or NAT gateway does to a kept-alive connection left idle."""
        with self.changed:
            idle, self.idle = set(self.idle), set()
        for sock in idle:
            sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway
    server: ScriptedManagementApi

    def setup(self) -> None:
        super().setup()
        with self.server.changed:
            self.server.accepted += 1

    def handle_one_request(self) -> None:
        with self.server.changed:
            self.server.idle.add(self.connection)
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True  # closed while idle, by the test or the client
        finally:
            with self.server.changed:
                self.server.idle.discard(self.connection)

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        server = self.server
        with server.changed:
            server.idle.discard(self.connection)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        connection_id = unquote(self.path.rsplit("/@connections/", 1)[1])
        with server.changed:
            server.received.append(Received(self.command, connection_id, self.path, dict(self.headers), body))
            server.in_flight[connection_id] += 1
            server.max_in_flight = max(server.max_in_flight, sum(server.in_flight.values()))
            per_id = server.max_in_flight_per_id
            per_id[connection_id] = max(per_id[connection_id], server.in_flight[connection_id])
            script = server.script[connection_id]
            answer: Answer = script.popleft() if script else Status(200)
            server.changed.notify_all()
        try:
            self._answer(answer)
        finally:
            with server.changed:
                server.in_flight[connection_id] -= 1

    def _answer(self, answer: Answer) -> None:
        if isinstance(answer, Drop):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(answer, Hold):
            answer.release.wait(PATIENCE)
            answer = Status(200)
        payload = json.dumps({"message": answer.message}).encode() if answer.error_type else b""
        self.send_response(answer.code)
        if answer.error_type:
            self.send_header("x-amzn-ErrorType", answer.error_type)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(server: ScriptedManagementApi) -> Iterator[ScriptedManagementApi]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api() -> Iterator[ScriptedManagementApi]:
    yield from _serve(ScriptedManagementApi())


@pytest.fixture
def outbox(api: ScriptedManagementApi) -> Iterator[Outbox]:
    box = Outbox(api.url(), workers=16, credentials=CREDENTIALS)
    yield box
    box.shutdown()


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


# -- signing -----------------------------------------------------------------------------
def _signature_botocore_computes(received: Received, credentials: Credentials, region: str) -> str:
    """What API Gateway checks: the SigV4 signature over what arrived, by botocore's signer."""
    headers = {k: v for k, v in received.headers.items() if k.lower() != "authorization"}
    request = AWSRequest(
        received.method, f"http://{headers['Host']}{received.path}", data=received.body, headers=headers
    )
    # At the request's own date: add_auth would sign at "now", which differs from the
    # request's X-Amz-Date whenever the clock ticks a second in between.
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(credentials, "execute-api", region)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    return (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, Signature={signature}"
    )


def test_posts_are_signed_with_the_functions_credentials_session_token_included(
    api: ScriptedManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    box = Outbox(api.url(), credentials=CREDENTIALS)
    assert box.send_all(["L0SM9cOFvHcCIhw=", "a+b/c="], '{"type":"pong"}') == []
    box.close("L0SM9cOFvHcCIhw=")
    assert len(api.received) == 3
    for received in api.received:
        assert received.headers["X-Amz-Security-Token"] == "session-token-1"
        assert "/eu-west-1/execute-api/aws4_request" in received.headers["Authorization"]
        assert received.headers["Authorization"] == _signature_botocore_computes(
            received, CREDENTIALS, "eu-west-1"
        )
    # botocore's encoding of the id in the path, which the signature covers.
    assert sorted((r.method, r.path, r.body) for r in api.received) == [
        ("DELETE", "/local/@connections/L0SM9cOFvHcCIhw%3D", b""),
        ("POST", "/local/@connections/L0SM9cOFvHcCIhw%3D", b'{"type":"pong"}'),
        ("POST", "/local/@connections/a%2Bb%2Fc%3D", b'{"type":"pong"}'),
    ]


def test_expiring_credentials_are_refreshed_between_broadcasts(api: ScriptedManagementApi) -> None:
    """Lambda's role credentials are temporary: botocore refreshes them when they near
    expiry, and the next broadcast signs with the new ones."""
    issued = iter(["AKID1", "AKID2"])
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)  # inside the refresh window

    def refresh() -> dict[str, str]:
        key = next(issued)
        expiry = soon if key == "AKID1" else soon + datetime.timedelta(hours=1)
        return {
            "access_key": key,
            "secret_key": f"secret-{key}",
            "token": f"token-{key}",
            "expiry_time": expiry.isoformat(),
        }

    expired = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).isoformat()
    credentials = RefreshableCredentials.create_from_metadata(
        {"access_key": "AKID0", "secret_key": "s0", "token": "t0", "expiry_time": expired}, refresh, "test"
    )
    box = Outbox(api.url(), credentials=credentials)
    box.send("a=", "one")
    box.send("a=", "two")
    first, second = api.to("a=")
    assert (
        first.headers["X-Amz-Security-Token"] == "token-AKID1" and "AKID1/" in first.headers["Authorization"]
    )
    assert (
        second.headers["X-Amz-Security-Token"] == "token-AKID2"
        and "AKID2/" in second.headers["Authorization"]
    )
    key2 = Credentials("AKID2", "secret-AKID2", "token-AKID2")
    assert second.headers["Authorization"] == _signature_botocore_computes(second, key2, "us-east-1")


def test_the_signing_region_comes_from_api_gateways_host_name() -> None:
    deployed = Endpoint.parse("https://abc123.execute-api.ap-southeast-2.amazonaws.com/prod", "us-east-1")
    assert (deployed.secure, deployed.port, deployed.base_path, deployed.region) == (
        True,
        443,
        "/prod",
        "ap-southeast-2",
    )
    assert deployed.host_header == "abc123.execute-api.ap-southeast-2.amazonaws.com"
    local = Endpoint.parse("http://127.0.0.1:4510/local", "eu-central-1")
    assert (local.secure, local.host_header, local.region) == (False, "127.0.0.1:4510", "eu-central-1")


# -- answers -----------------------------------------------------------------------------
def test_throttled_posts_are_retried_then_delivered(api: ScriptedManagementApi, outbox: Outbox) -> None:
    throttled = Status(429, "LimitExceededException", "Limit Exceeded")
    api.answer("a=", throttled, throttled)
    assert outbox.send("a=", "hi") is True
    assert [r.body for r in api.to("a=")] == [b"hi"] * 3


def test_throttling_that_never_ends_gives_up_after_four_attempts_and_evicts_no_one(
    api: ScriptedManagementApi, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    api.answer("a=", *[Status(429, "LimitExceededException", "Limit Exceeded")] * 5)
    with caplog.at_level(logging.WARNING, logger="collab.outbox"):
        assert outbox.send_all(["a=", "b="], "hi") == []
    assert len(api.to("a=")) == 4 and len(api.to("b=")) == 1
    assert "post to a= failed: 429" in caplog.text


def test_gone_connections_are_reported_and_others_still_served(
    api: ScriptedManagementApi, outbox: Outbox
) -> None:
    api.answer("b=", Status(410, "GoneException", "Gone"))
    api.answer("c=", Status(500, "InternalServerErrorException", "Internal"), Status(502, "", ""))
    gone = outbox.send_all(["a=", "b=", "c=", "d="], "x")
    assert gone == ["b="]  # a 5xx is not proof the peer left: the periodic resync repairs it
    assert len(api.to("c=")) == 2  # retried once
    assert [len(api.to(c)) for c in ("a=", "b=", "d=")] == [1, 1, 1]


def test_a_5xx_is_retried_once_and_then_delivered(api: ScriptedManagementApi, outbox: Outbox) -> None:
    api.answer("a=", Status(503, "ServiceUnavailable", "busy"))
    assert outbox.send("a=", "hi") is True
    assert [r.body for r in api.to("a=")] == [b"hi", b"hi"]


def test_a_403_for_an_unknown_connection_is_gone_but_a_permission_403_is_not(
    api: ScriptedManagementApi, outbox: Outbox
) -> None:
    """Review M10: API Gateway answers 403 ForbiddenException for a connection id it does
    not know; counting it as delivered kept the row (and a post per message) for hours. A
    403 that says the function lacks permission is a deployment fault: evicting on it would
    empty every room."""
    denied = "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: execute-api:ManageConnections"
    api.answer("unknown=", Status(403, "ForbiddenException", "Forbidden"))
    api.answer("denied=", Status(403, "AccessDeniedException", denied))
    api.answer("denied-too=", Status(403, "ForbiddenException", denied))
    assert outbox.send_all(["unknown=", "denied=", "denied-too="], "x") == ["unknown="]


def test_big_messages_go_out_on_a_few_lanes_per_recipient(api: ScriptedManagementApi, outbox: Outbox) -> None:
    """A chunked message's frames are in flight LANES at a time per recipient (frame k on
    lane k mod LANES, each lane one frame after another): a held frame holds up only the
    frames of its own lane, of its own recipient; what arrives reassembles by `seq`."""
    text = '{"type":"update","data":"' + "A" * (2 * LANES + 3) * SERVER_FRAME_LIMIT + '"}'
    frames = len(split_message(text, SERVER_FRAME_LIMIT))
    assert frames > 2 * LANES + 1  # every lane has a frame behind its first
    release = threading.Event()
    api.answer("a=", Hold(release))  # a's first frame to arrive waits, and its lane behind it
    thread, result = in_background(lambda: outbox.send_all(["a=", "b="], text))
    api.wait_for(lambda: len(api.to("b=")) == frames and len(api.to("a=")) >= 1)
    held = json.loads(api.to("a=")[0].body)["seq"]
    behind = set(range(held + LANES, frames, LANES))  # the rest of the held frame's lane
    api.wait_for(lambda: len(api.to("a=")) == frames - len(behind))
    arrived = {json.loads(r.body)["seq"] for r in api.to("a=")}
    assert arrived == set(range(frames)) - behind
    release.set()
    thread.join(PATIENCE)
    assert result == [[]]
    for recipient in ("a=", "b="):
        chunks = sorted((json.loads(r.body) for r in api.to(recipient)), key=lambda c: c["seq"])
        assert [c["seq"] for c in chunks] == list(range(frames))
        assert "".join(c["data"] for c in chunks) == text  # what the client reassembles
        assert 1 < api.max_in_flight_per_id[recipient] <= LANES


def test_a_gone_recipient_of_a_chunked_message_is_reported_once(
    api: ScriptedManagementApi, outbox: Outbox
) -> None:
    text = '{"type":"update","data":"' + "A" * 300_000 + '"}'
    for _ in range(3):
        api.answer("gone=", Status(410))
    assert outbox.send_all(["gone=", "b="], text) == ["gone="]


# -- concurrency, timeouts and connections -------------------------------------------------
def test_every_post_of_a_broadcast_is_in_flight_at_once(api: ScriptedManagementApi) -> None:
    """The server answers none of ten posts until all ten have arrived: a client that sent
    them one after another would never get an answer."""
    recipients = [f"peer{i}=" for i in range(10)]
    barrier = threading.Barrier(len(recipients))
    for recipient in recipients:
        api.answer(recipient, Hold(barrier))
    box = Outbox(api.url(), workers=16, timeout=PATIENCE, credentials=CREDENTIALS)
    assert box.send_all(recipients, "x") == []
    assert api.max_in_flight == 10 and not barrier.broken


def test_a_slow_peer_does_not_hold_up_the_others(api: ScriptedManagementApi) -> None:
    release = threading.Event()
    api.answer("slow=", Hold(release))
    box = Outbox(api.url(), timeout=PATIENCE, credentials=CREDENTIALS)
    thread, result = in_background(lambda: box.send_all(["slow=", "a=", "b="], "x"))
    api.wait_for(lambda: bool(api.to("a=") and api.to("b=")))
    assert thread.is_alive()  # a and b were served while slow's post was still open
    release.set()
    thread.join(PATIENCE)
    assert result == [[]]


def test_a_post_without_an_answer_times_out_and_the_next_broadcast_reaches_everyone(
    api: ScriptedManagementApi, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    api.answer("stuck=", Hold(release))
    box = Outbox(api.url(), timeout=1.0, credentials=CREDENTIALS)
    try:
        with caplog.at_level(logging.WARNING, logger="collab.outbox"):
            assert box.send_all(["stuck=", "a="], "first") == []  # not gone: it may just be slow
        assert "post to stuck= failed: no answer within 1 s" in caplog.text
        assert box.send_all(["stuck=", "a="], "second") == []
        assert [r.body for r in api.to("stuck=")] == [b"first", b"second"]
        assert [r.body for r in api.to("a=")] == [b"first", b"second"]
    finally:
        release.set()


def test_a_dropped_connection_is_retried_once_on_a_fresh_one(
    api: ScriptedManagementApi, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    api.answer("a=", Drop())
    api.answer("b=", Drop(), Drop())
    with caplog.at_level(logging.WARNING, logger="collab.outbox"):
        assert outbox.send_all(["a=", "b=", "c="], "x") == []
    assert len(api.to("a=")) == 2 and len(api.to("b=")) == 2 and len(api.to("c=")) == 1
    assert "post to b= failed" in caplog.text and "post to a=" not in caplog.text


def test_connections_are_kept_alive_across_invocations(api: ScriptedManagementApi, outbox: Outbox) -> None:
    recipients = [f"peer{i}=" for i in range(5)]
    for _ in range(3):  # three invocations of one warm environment
        assert outbox.send_all(recipients, "x") == []
    assert len(api.received) == 15
    assert api.accepted <= 5


def test_a_kept_alive_connection_the_server_closed_is_not_a_lost_post(
    api: ScriptedManagementApi, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    recipients = [f"peer{i}=" for i in range(4)]
    assert outbox.send_all(recipients, "before") == []
    api.wait_for(lambda: len(api.idle) == api.accepted)
    api.close_idle_connections()
    with caplog.at_level(logging.WARNING, logger="collab.outbox"):
        assert outbox.send_all(recipients, "after") == []
    assert all([r.body for r in api.to(p)] == [b"before", b"after"] for p in recipients)
    assert "failed" not in caplog.text


def test_closing_survives_a_transport_error(caplog: pytest.LogCaptureFixture) -> None:
    """Review M9: a refusal (`forbidden`, `token_expired`) closes the connection; a failure
    there must not escape and crash the handler before it finishes the reply."""
    box = Outbox("http://127.0.0.1:9/local", credentials=CREDENTIALS)  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="collab.outbox"):
        box.close("a=")
    assert "closing a= failed" in caplog.text


def test_closing_a_connection_that_is_already_gone_is_quiet(
    api: ScriptedManagementApi, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    api.answer("a=", Status(410, "GoneException", "Gone"))
    with caplog.at_level(logging.WARNING, logger="collab.outbox"):
        outbox.close("a=")
        outbox.close("b=")
    assert [(r.method, r.connection_id) for r in api.received] == [("DELETE", "a="), ("DELETE", "b=")]
    assert caplog.text == ""


# -- HTTPS ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server: ssl.SSLContext


def _pki(directory: Path, names: list[str]) -> Pki:
    """A throwaway CA and a server certificate it signed for `names`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outbox test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = directory / "server.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    return Pki(ca_file, context)


def test_https_delivers_only_to_a_server_whose_certificate_checks_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = _pki(tmp_path, ["localhost"])
    for api in _serve(ScriptedManagementApi(tls=pki.server)):
        trusted = Outbox(api.url("localhost"), credentials=CREDENTIALS, ca_file=str(pki.ca_file))
        assert trusted.send("a=", "over tls") is True
        assert [r.body for r in api.to("a=")] == [b"over tls"]
        assert api.to("a=")[0].headers["Authorization"] == _signature_botocore_computes(
            api.to("a=")[0], CREDENTIALS, "us-east-1"
        )
        with caplog.at_level(logging.WARNING, logger="collab.outbox"):
            # The system's trust store does not know this CA; and the certificate names
            # localhost, not 127.0.0.1. The TLS library delays its failure (s2n's blinding),
            # so each post ends at its timeout: failed, and not taken for gone.
            untrusted = Outbox(api.url("localhost"), timeout=1.0, credentials=CREDENTIALS)
            assert untrusted.send("b=", "must not arrive") is True
            wrong_name = Outbox(
                api.url("127.0.0.1"), timeout=1.0, credentials=CREDENTIALS, ca_file=str(pki.ca_file)
            )
            assert wrong_name.send("c=", "must not arrive") is True
        assert api.to("b=") == [] and api.to("c=") == []
        assert "post to b= failed" in caplog.text and "post to c= failed" in caplog.text
        for box in (trusted, untrusted, wrong_name):
            box.shutdown()
