"""The last resort of `make dev` when no redis-server is installed: fakeredis (with Lua)
behind a TCP port, as a redis-server would be. `python -m devstack.fake_redis PORT` serves
until SIGTERM; devstack/services.py starts it.

Two things differ from running fakeredis's TcpFakeServer as shipped (2.40) in the stack's
own process, and both made the fallback slow enough to time out a client's `sync` under
load:

- Its request handler closes a client's connection after *any* error reply: it raises the
  reply, sends it, and leaves its loop. Every script's first EVALSHA gets NOSCRIPT (that
  is how redis-py loads scripts), so the connection then dies under the SCRIPT LOAD that
  follows, the handler's cache breaker opens, and for its cooldown every `sync` of that
  environment is served from DynamoDB the slow way. It looked like "connections drop under
  concurrent scripts", so the stack ran one execution environment per function, and every
  invocation of a scene queued behind every other. Here an error reply is sent as a reply
  and the connection stays open, as on a real server, and the usual number of
  environments runs. (fakeredis-py issue 432 is this bug seen from redis-py.)
- In-process, every Redis command and Lua script ran on the stack's own interpreter and
  competed for its GIL with the emulator that routes every message. In its own process it
  competes only for a core.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler
from redis.exceptions import ResponseError


class KeepOpenHandler(TCPFakeRequestHandler):
    """fakeredis's handler, except that an error reply does not end the connection."""

    def setup(self) -> None:
        super().setup()
        connection = self.current_client
        read: Callable[..., Any] = connection.read_response

        def read_reply(*args: Any, **kwargs: Any) -> Any:
            try:
                return read(*args, **kwargs)
            except ResponseError as error:
                return error  # the handler writes an exception as an error reply

        connection.read_response = read_reply  # type: ignore[method-assign]


class FakeRedisServer(TcpFakeServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), server_type="redis")
        self.RequestHandlerClass = KeepOpenHandler
        self.daemon_threads = True


def main(argv: list[str]) -> None:
    server = FakeRedisServer(int(argv[0]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True).start()
    print("READY", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
