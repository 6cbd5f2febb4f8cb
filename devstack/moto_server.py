"""moto's server application on waitress, which keeps HTTP/1.1 connections alive.

    python -m devstack.moto_server --port 5000

`moto_server` runs on Werkzeug's development server, which answers every request with
`Connection: close` (werkzeug/serving.py: "Always close the connection"): every boto3 call
of every handler then opens a new TCP connection and moto starts a new thread for it.
DynamoDB keeps connections alive, so the local stack paid a cost AWS does not: measured
on this machine, a PutItem took 16.8 ms wall and 2.17 ms of the caller's CPU against
Werkzeug, 9.9 ms and 1.81 ms against this server (500 sequential puts, warm client).
The application is moto's own (the one `moto_server` serves); only the HTTP server differs.
waitress drops request headers whose names hold an underscore (moto_server's handler keeps
them for S3 user metadata, which nothing here uses).

Requests run inside moto one at a time (`Serialised`). moto does not isolate concurrent
requests: two conditional updates of one item can both pass their condition, and an `ADD`
from several threads can lose increments, where DynamoDB applies each write to an item
atomically. Chunk reassembly while the cache is down (collab.durable_chunks) counts its
parts with `ADD`, and lost increments there left a paste unassembled in a CI run. moto
holds the GIL for nearly all of a request, so its threads bought almost no parallelism;
waitress's threads still read and write the sockets, so a slow client holds up nobody.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

# The handlers' and tests' concurrency: up to max_environments (4 by default) execution
# environments per function, each with one call in flight, plus the test process and
# collabctl; requests beyond it queue (waitress logs "Task queue depth", here discarded).
THREADS = 32


class Serialised:
    """A WSGI application that lets one request at a time into `app`, response included."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            response = self._app(environ, start_response)
            try:
                return list(response)  # moto's bodies are in memory already
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto's server on waitress (keep-alive)")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = Serialised(DomainDispatcherApplication(create_backend_app))
    # S3 uploads of snapshots can be large; waitress's default request body cap is 1 GB.
    serve(app, host=args.host, port=args.port, threads=THREADS, ident="moto", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
