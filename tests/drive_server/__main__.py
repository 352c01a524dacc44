"""`python -m tests.drive_server`: the fake Drive as a process of its own.

A benchmark wants the server off its own GIL, as real Drive is. Prints one
JSON line (`base_url`, `client_id`) on stdout once it listens, then serves
until its stdin closes (so it never outlives the process that started it) or
it gets SIGTERM. The test side of this is `tests/drive_server/process.py`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from tests.drive_server.server import DEFAULT_QUOTA, DriveTestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.drive_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--client-id", default="tierkeeper-test.apps.googleusercontent.com")
    parser.add_argument(
        "--client-secret-from-stdin",
        action="store_true",
        help="read the OAuth client secret (also the control key) as stdin's first line",
    )
    parser.add_argument("--quota-limit", type=int, default=DEFAULT_QUOTA)
    args = parser.parse_args(argv)

    secret = "test-secret"
    if args.client_secret_from_stdin:
        secret = sys.stdin.readline().strip()  # not argv: other users can read a command line
    server = DriveTestServer(
        client_id=args.client_id,
        client_secret=secret,
        host=args.host,
        port=args.port,
        control=True,
        quota_limit=args.quota_limit,
    ).start()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
    print(json.dumps({"base_url": server.base_url, "client_id": server.client_id}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _wait_for_eof(stop: threading.Event) -> None:
    """The parent holds our stdin open; when it goes (even killed), so do we."""
    sys.stdin.read()
    stop.set()


if __name__ == "__main__":
    raise SystemExit(main())
