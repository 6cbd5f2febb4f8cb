"""The transport under the outbox: SigV4-signed HTTP/1.1 to the API Gateway Management API
over the AWS Common Runtime (awscrt), with no SDK on the path.

Why awscrt and not boto3: a boto3 `post_to_connection` spends most of its CPU in Python
(request serialisation, event hooks, signing, urllib3), and fan-out does one per recipient
(docs/benchmarks.md has the figures). awscrt signs in C and runs every connection on one
native event-loop thread, so a post costs little more than building its request, and every
post of a broadcast can be in flight at once without a thread each.

What this module owns: where the endpoint is (`Endpoint`), whose credentials sign
(`SigningIdentity`: botocore's standard chain, refreshed when they expire), and the
kept-alive connections to one endpoint (`ConnectionPool`), which outlive the invocation
because the pool lives as long as the execution environment's Outbox. HTTPS verifies the
certificate and the host name (API Gateway); plain HTTP is for the local emulator only.

Which addresses it connects to (FANOUT_IP_FAMILY, collab.settings): by default awscrt's
resolver returns an IPv4 and an IPv6 address of the host and connects to both at once, the
first to answer wins. A function in a VPC that routes IPv6 but not IPv4 (infra egress
ipv6: an egress-only internet gateway, no NAT) must never wait on an IPv4 address it has
no route to: that attempt is silently dropped, and if the IPv6 one fails or is missing
the post waits out its connect timeout. With "ipv6" the pool resolves the host itself,
IPv6 only (`ipv6_addresses`; IPv4-mapped ones excluded, they travel as IPv4), and hands
awscrt an address, never the name, so nothing it does can pick IPv4; TLS still checks the
certificate against the host name. A host without an IPv6 address fails at once
(`NoIpv6Address`), which the outbox reports as a transport failure like any other.
awscrt offers no address-family filter of its own: `SocketOptions.domain` is overridden
per resolved address (aws-c-io, channel_bootstrap.c).

The same transport carries the handlers' DynamoDB, EventBridge, SSM and Secrets Manager
calls (collab.aws_json), with the same credentials.

awscrt is imported on first use, not with this module: its native module seeds aws-lc's
CPU-jitter entropy source as it loads (40-70 ms of CPU), which a process that only
imports the handlers (a test, a tool) should not pay; a new environment pays it on its
first AWS call (docs/benchmarks.md, "Cold start, third pass").
"""

from __future__ import annotations

import hashlib
import importlib
import io
import ipaddress
import os
import re
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from awscrt import auth, http
    from awscrt import io as crt_io

# {api-id}.execute-api.{region}.amazonaws.com (and the China partition's .com.cn).
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
SIGNING_SERVICE = "execute-api"
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")

IpFamily = Literal["any", "ipv6"]
# How long resolved addresses are reused (aws-c-io's default TTL is 30 s too), and how long
# a lookup that found no IPv6 address is believed: a broadcast opens dozens of connections
# at once, and each must not repeat a failing lookup.
ADDRESS_TTL_SECONDS = 30.0
NO_ADDRESS_TTL_SECONDS = 5.0


class _OnFirstUse:
    """Stands in for one of awscrt's modules under its name in this module's globals until
    an attribute is first read, then imports it and puts the module itself there: later
    reads (every post) are plain global lookups, as with an import at the top."""

    def __init__(self, name: str, module: str) -> None:
        self._name = name
        self._module = module

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self._module)
        globals()[self._name] = module
        return getattr(module, attribute)


if not TYPE_CHECKING:
    auth = _OnFirstUse("auth", "awscrt.auth")
    http = _OnFirstUse("http", "awscrt.http")
    crt_io = _OnFirstUse("crt_io", "awscrt.io")


def load_awscrt() -> None:
    """Import awscrt now (an environment initialised ahead of traffic: its first AWS call
    would load it)."""
    importlib.import_module("awscrt.auth")  # imports awscrt.http and awscrt.io too


@dataclass(frozen=True)
class Endpoint:
    """A Management API endpoint, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod
    on AWS or http://127.0.0.1:PORT/local for the emulator."""

    secure: bool
    host: str
    port: int
    base_path: str  # "/prod", or "" when the stage is not part of the URL
    region: str  # the region requests are signed for

    @classmethod
    def parse(cls, url: str, default_region: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {url!r}")
        secure = parts.scheme == "https"
        match = _EXECUTE_API_HOST.match(parts.hostname)
        return cls(
            secure=secure,
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            base_path=parts.path.rstrip("/"),
            region=match.group(1) if match else default_region,
        )

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.secure else 80) else f"{host}:{self.port}"

    def connection_path(self, connection_id: str) -> str:
        # Percent-encoded as botocore encodes a URI label ("=" is %3D): the signature is
        # computed over exactly this path. API Gateway's ids are base64, where only three
        # characters need it; str.replace is a tenth of quote()'s cost, and this runs per post.
        if _BASE64.fullmatch(connection_id):
            encoded = connection_id.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        else:
            encoded = quote(connection_id, safe="")
        return f"{self.base_path}/@connections/{encoded}"


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class EnvironmentCredentials:
    """The credentials Lambda gives a function, in its environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as botocore's first provider reads them:
    read again at every freeze, so a changed set is picked up."""

    def get_frozen_credentials(self) -> tuple[str, str, str | None]:
        token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
        return (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], token or None)


def default_credentials() -> Any:
    """The environment's credentials when it has them (Lambda, the emulator, tests): no SDK
    is imported. Otherwise botocore's standard chain (profiles, SSO, container and instance
    roles), for a process run by hand with a profile; None when nothing is configured."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return EnvironmentCredentials()
    import botocore.session

    return botocore.session.get_session().get_credentials()


class SigningIdentity:
    """The function's credentials (`default_credentials`, or anything with botocore's
    `get_frozen_credentials()`). Frozen once per broadcast or call: botocore's chain
    refreshes credentials about to expire, and a changed set gets a new static provider."""

    def __init__(self, credentials: Any = None) -> None:
        self._credentials = credentials
        self._resolved = credentials is not None
        self._frozen: tuple[str, str, str | None] | None = None
        self._provider: auth.AwsCredentialsProvider | None = None
        self._lock = threading.Lock()

    def provider(self) -> auth.AwsCredentialsProvider | None:
        """None when no credentials are configured: a post goes unsigned (the emulator does
        not check; API Gateway refuses it with a 403 that is logged)."""
        with self._lock:
            if not self._resolved:
                self._credentials = default_credentials()
                self._resolved = True
            if self._credentials is None:
                return None
            current = self._credentials.get_frozen_credentials()
            frozen = (current[0], current[1], current[2] or None)
            if frozen != self._frozen:
                self._provider = auth.AwsCredentialsProvider.new_static(*frozen)
                self._frozen = frozen
            return self._provider


def signing_config(provider: auth.AwsCredentialsProvider, region: str, body: bytes) -> auth.AwsSigningConfig:
    """One per frame of a broadcast: the body hash is computed once for every recipient, and
    the signing date is fresh (a config's date is fixed when it is made)."""
    return auth.AwsSigningConfig(
        credentials_provider=provider,
        region=region,
        service=SIGNING_SERVICE,
        signed_body_value=hashlib.sha256(body).hexdigest(),
    )


def request(endpoint: Endpoint, method: str, path: str, body: bytes) -> http.HttpRequest:
    headers = http.HttpHeaders([("Host", endpoint.host_header), ("Content-Length", str(len(body)))])
    # BytesIO is C code and shares the bytes; the signer needs no read (the hash is given).
    return http.HttpRequest(method, path, headers, io.BytesIO(body) if body else None)


def sign(req: http.HttpRequest, config: auth.AwsSigningConfig | None) -> None:
    if config is not None:
        # With a static provider the signature is computed in this call; result() returns.
        auth.aws_sign_request(req, config).result()


class NoIpv6Address(OSError):
    """The host has no IPv6 address; with FANOUT_IP_FAMILY=ipv6 nothing falls back to IPv4."""


def ipv6_addresses(host: str, port: int) -> list[str]:
    """The host's IPv6 addresses, from the system resolver, in its order, without IPv4-mapped
    ones (::ffff:a.b.c.d reaches an IPv4 address). An IPv6 literal is its own answer."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET6, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise NoIpv6Address(f"{host} has no IPv6 address ({error})") from error
    found: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if ipaddress.IPv6Address(address.split("%", 1)[0]).ipv4_mapped is None and address not in found:
            found.append(address)
    if not found:
        raise NoIpv6Address(f"{host} has only IPv4-mapped IPv6 addresses")
    return found


@dataclass
class _EventLoop:
    pid: int
    bootstrap: crt_io.ClientBootstrap
    tls: crt_io.ClientTlsContext | None = None
    tls_ca_file: str | None = None


_loop: _EventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> _EventLoop:
    """One native event-loop thread per process: connections cost no thread each. Made
    again after a fork, whose child has no such thread (the emulator spawns its
    environments rather than fork them)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid():
            group = crt_io.EventLoopGroup(1)
            _loop = _EventLoop(os.getpid(), crt_io.ClientBootstrap(group, crt_io.DefaultHostResolver(group)))
        return _loop


def _tls_context(ca_file: str | None) -> crt_io.ClientTlsContext:
    loop = _event_loop()
    with _loop_lock:
        if loop.tls is None or loop.tls_ca_file != ca_file:
            options = crt_io.TlsContextOptions()  # verify_peer is on by default
            if ca_file:
                options.override_default_trust_store_from_path(ca_filepath=ca_file)
            options.alpn_list = ["http/1.1"]
            loop.tls, loop.tls_ca_file = crt_io.ClientTlsContext(options), ca_file
        return loop.tls


@dataclass
class ConnectionPool:
    """Kept-alive HTTP/1.1 connections to one endpoint, one request at a time each, so a slow
    answer to one recipient never waits behind (or holds up) another's. A connection idle
    longer than `max_idle_seconds` is closed rather than reused: NAT gateways and load
    balancers drop idle flows, and a post on a dropped one would wait for its timeout."""

    endpoint: Endpoint
    connect_timeout_ms: int = 1000
    max_idle_seconds: float = 50.0
    ca_file: str | None = None  # HTTPS trust store override (tests); None: the system's
    # "any": awscrt resolves the name (IPv4 and IPv6, raced); "ipv6": IPv6 addresses only.
    ip_family: IpFamily = "any"
    _idle: list[tuple[float, http.HttpClientConnection]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # ipv6: the resolved addresses (or why there are none) and until when they hold.
    _addresses: list[str] | NoIpv6Address = field(default_factory=list)
    _resolved_until: float = 0.0
    _turn: int = 0

    def __post_init__(self) -> None:
        if self.ip_family not in ("any", "ipv6"):
            raise ValueError(f"ip_family is {self.ip_family!r}; expected 'any' or 'ipv6'")

    def take(self) -> http.HttpClientConnection | None:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, connection = self._idle.pop()
                if connection.is_open() and now - since < self.max_idle_seconds:
                    return connection
                connection.close()
        return None

    def give_back(self, connection: http.HttpClientConnection) -> None:
        if connection.is_open():  # False after a "Connection: close" answer
            with self._lock:
                self._idle.append((time.monotonic(), connection))

    def open(self) -> Future[Any]:
        """A future of a new connection (connect and TLS handshake happen on the loop).
        Raises NoIpv6Address, before any connection attempt, when the family is ipv6 and
        the host has no IPv6 address."""
        # The address first: a host without one fails before anything else is made.
        target = self.endpoint.host if self.ip_family == "any" else self.next_address()
        loop = _event_loop()
        options = crt_io.SocketOptions()
        options.connect_timeout_ms = self.connect_timeout_ms
        options.keep_alive = True
        tls = None
        if self.endpoint.secure:
            tls = _tls_context(self.ca_file).new_connection_options()
            # SNI, and the name the certificate must match: the host's, also when `target`
            # is one of its addresses.
            tls.set_server_name(self.endpoint.host)
        return http.HttpClientConnection.new(target, self.endpoint.port, loop.bootstrap, options, tls)

    def next_address(self) -> str:
        """One of the host's IPv6 addresses, in turn (connections spread over them as
        awscrt's resolver spreads them), resolved again once ADDRESS_TTL_SECONDS passed."""
        now = time.monotonic()
        with self._lock:
            if now >= self._resolved_until:
                try:
                    self._addresses = ipv6_addresses(self.endpoint.host, self.endpoint.port)
                    self._resolved_until = now + ADDRESS_TTL_SECONDS
                except NoIpv6Address as missing:
                    self._addresses = missing
                    self._resolved_until = now + NO_ADDRESS_TTL_SECONDS
            if isinstance(self._addresses, NoIpv6Address):
                raise NoIpv6Address(*self._addresses.args)
            self._turn += 1
            return self._addresses[self._turn % len(self._addresses)]

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()
