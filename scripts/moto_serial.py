"""Starts moto's DynamoDB server handling ONE request at a time, for the conformance tests.

Why not plain `moto_server`: it serves each request on its own thread, and moto's
TransactWriteItems is not atomic across threads (it checks every condition, then writes, and on
cancellation restores a deep copy of the whole table, undoing other requests' writes). Real
DynamoDB is linearizable, so the concurrency tests (two rotations of one refresh token, two
registrations of one email) fail now and then against threaded moto. Serving requests one at a
time restores the real semantics; the suite is no slower.

Usage: .venv/bin/python scripts/moto_serial.py PORT   (binds 127.0.0.1 only)
"""

import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: moto_serial.py PORT")
    run_simple(
        "127.0.0.1",
        int(sys.argv[1]),
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
