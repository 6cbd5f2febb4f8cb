"""moto's server application on waitress, which keeps HTTP/1.1 connections alive.

    python -m devstack.moto_server --port 5000

`moto_server` runs on Werkzeug's development server, which answers every request with
`Connection: close` (werkzeug/serving.py: "Always close the connection"): every boto3 call
of every handler then opens a new TCP connection and moto starts a new thread for it.
DynamoDB keeps connections alive, so the local stack paid a cost AWS does not: measured
on this machine, a PutItem took 16.8 ms wall and 2.17 ms of the caller's CPU against
Werkzeug, 9.9 ms and 1.81 ms against this server (500 sequential puts, warm client).
The application is moto's own (the one `moto_server` serves); only the HTTP server differs.
Two differences to know: waitress drops request headers whose names hold an underscore
(moto_server's handler keeps them for S3 user metadata, which nothing here uses), and, as
under moto_server, moto does not serialise concurrent writes to one item (an `ADD` from
many threads at once can lose increments; DynamoDB would not).
"""

from __future__ import annotations

import argparse
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

# The handlers' and tests' concurrency: up to max_environments (4 by default) execution
# environments per function, each with one call in flight, plus the test process and
# collabctl; requests beyond it queue (waitress logs "Task queue depth", here discarded).
THREADS = 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto's server on waitress (keep-alive)")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = DomainDispatcherApplication(create_backend_app)
    # S3 uploads of snapshots can be large; waitress's default request body cap is 1 GB.
    serve(app, host=args.host, port=args.port, threads=THREADS, ident="moto", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
