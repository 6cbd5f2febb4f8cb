"""FANOUT_IP_FAMILY=ipv6 (infra egress ipv6): the fan-out reaches the Management API host
over IPv6 and never tries an IPv4 address, which such a VPC has no route to (an attempt
there would hang until its connect timeout). Real awscrt connections to real listeners on
loopback, one on ::1 and one on 127.0.0.1 that counts every connection it accepts; the
names are resolved by the system resolver ("localhost" is IPv4-only on this machine, and
the test checks that first)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collab import management_client as mc
from collab import runtime
from collab.outbox import Outbox
from collab.settings import FANOUT_IP_FAMILY, REDIS_URL, InvalidSetting, Settings
from devstack import services

PATIENCE = 10.0


class Listener(ThreadingHTTPServer):
    """A Management API that answers 200 to everything and records what reached it."""

    daemon_threads = True

    def __init__(self, family: socket.AddressFamily, host: str, port: int = 0) -> None:
        self.address_family = family
        super().__init__((host, port), _Handler)
        self.accepted = 0
        self.bodies: list[bytes] = []
        self.changed = threading.Condition()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def wait_for_bodies(self, count: int) -> list[bytes]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.bodies) >= count, PATIENCE)
            return list(self.bodies)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Listener

    def setup(self) -> None:
        super().setup()
        with self.server.changed:
            self.server.accepted += 1
            self.server.changed.notify_all()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.changed:
            self.server.bodies.append(body)
            self.server.changed.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def listeners() -> Iterator[tuple[Listener, Listener]]:
    """An IPv6 and an IPv4 listener on the same port number of ::1 and 127.0.0.1."""
    for _ in range(20):
        v6 = Listener(socket.AF_INET6, "::1")
        try:
            v4 = Listener(socket.AF_INET, "127.0.0.1", v6.port)
        except OSError:  # that port is taken on 127.0.0.1: try another
            v6.close()
            continue
        yield v6, v4
        v6.close()
        v4.close()
        return
    raise RuntimeError("no port free on both ::1 and 127.0.0.1")


def outbox(url: str, family: mc.IpFamily) -> Outbox:
    return Outbox(url, timeout=2.0, connect_timeout=1.0, ip_family=family)


def test_localhost_is_an_ipv4_only_name_here() -> None:
    """The premise of the tests below (this machine's /etc/hosts)."""
    assert {info[4][0] for info in socket.getaddrinfo("localhost", 80)} == {"127.0.0.1"}
    with pytest.raises(mc.NoIpv6Address):
        mc.ipv6_addresses("localhost", 80)


def test_ipv6_only_reaches_the_ipv6_listener(listeners: tuple[Listener, Listener]) -> None:
    v6, v4 = listeners
    box = outbox(f"http://[::1]:{v6.port}/local", "ipv6")
    assert box._pool.ip_family == "ipv6"
    assert box.send("a=", "over ipv6") is True
    assert box.send("a=", "again") is True
    assert v6.wait_for_bodies(2) == [b"over ipv6", b"again"]
    assert v4.accepted == 0
    box.shutdown()


def test_ipv6_only_refuses_an_ipv4_only_host_at_once_and_never_connects(
    listeners: tuple[Listener, Listener],
) -> None:
    _, v4 = listeners
    box = outbox(f"http://localhost:{v4.port}/local", "ipv6")
    started = time.monotonic()
    with pytest.raises(mc.NoIpv6Address, match="localhost"):
        box._pool.open()
    box.send("a=", "lost")  # a transport failure: logged, retried once, never gone
    box.send("b=", "lost too")  # the lookup's answer is remembered: no second wait
    assert time.monotonic() - started < 0.5  # far under the 1 s connect timeout
    time.sleep(0.2)  # anything in flight would have been accepted by now
    assert (v4.accepted, v4.bodies) == (0, [])


def test_the_same_host_is_reached_over_ipv4_by_default(listeners: tuple[Listener, Listener]) -> None:
    """The check above can fail: without the setting the IPv4 listener is reached."""
    _, v4 = listeners
    box = outbox(f"http://localhost:{v4.port}/local", "any")
    assert box.send("a=", "over ipv4") is True
    assert v4.wait_for_bodies(1) == [b"over ipv4"]
    box.shutdown()


def test_ipv4_mapped_addresses_count_as_ipv4(listeners: tuple[Listener, Listener]) -> None:
    _, v4 = listeners
    url = f"http://[::ffff:127.0.0.1]:{v4.port}/local"
    with pytest.raises(mc.NoIpv6Address):
        mc.ipv6_addresses("::ffff:127.0.0.1", v4.port)
    with pytest.raises(mc.NoIpv6Address):
        outbox(url, "ipv6")._pool.open()
    assert v4.accepted == 0
    # Why they are excluded: such an address is the IPv4 listener, reached over IPv4.
    box = outbox(url, "any")
    assert box.send("a=", "mapped") is True
    assert v4.wait_for_bodies(1) == [b"mapped"]
    box.shutdown()


def test_the_runtime_builds_ipv6_only_fan_out_from_the_setting(
    listeners: tuple[Listener, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    v6, _ = listeners
    for key, value in services.LOCAL_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    env = {
        "CONNECTIONS_TABLE": "c",
        "ACCESS_TABLE": "a",
        "DOCUMENTS_TABLE": "d",
        "SNAPSHOT_BUCKET": "b",
        REDIS_URL: "redis://127.0.0.1:1/0",
        FANOUT_IP_FAMILY: "ipv6",
    }
    rt = runtime.build(Settings.from_env(env))
    box = rt.outbox(f"http://[::1]:{v6.port}/local")
    assert box._pool.ip_family == "ipv6"
    assert box.send("a=", "from the runtime") is True
    assert v6.wait_for_bodies(1) == [b"from the runtime"]
    box.shutdown()
    # The default stays as it was.
    default = runtime.build(Settings.from_env({**env, FANOUT_IP_FAMILY: ""}))
    assert default.outbox("http://[::1]:1/local")._pool.ip_family == "any"
    assert Outbox("http://[::1]:1/local")._pool.ip_family == "any"
    with pytest.raises(InvalidSetting, match=FANOUT_IP_FAMILY):
        Settings.from_env({**env, FANOUT_IP_FAMILY: "ipv4"})
