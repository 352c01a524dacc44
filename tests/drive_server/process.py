"""The fake Drive in a child process, and what a benchmark asks of it.

In-process (`fixture.py`), the server shares the GIL with the client it
serves: on a two-core machine every request the client makes slows the client
down twice, once for itself and once for the server's share of the
interpreter. Real Drive costs the client nothing but waiting, so a throughput
figure against an in-process server is an underestimate of unknown size. Here
the server runs as `python -m tests.drive_server`; tokens, request counts and
stored bytes come over its control routes (`control.py`).

Tests keep the in-process fixture: it starts in a millisecond and exposes
fault injection, which this does not.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from google.oauth2.credentials import Credentials

from tests.drive_server.auth import DRIVE_FILE_SCOPE
from tests.drive_server.control import PREFIX, SECRET_HEADER

_REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


class DriveProcess:
    """A running `python -m tests.drive_server` child, and its control calls."""

    def __init__(self, *, quota_limit: int | None = None) -> None:
        self.client_secret = "proc-" + secrets.token_urlsafe(18)
        self.client_id = ""
        self.base_url = ""
        self._quota_limit = quota_limit
        self._child: subprocess.Popen[str] | None = None

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}token"

    @property
    def pid(self) -> int:
        assert self._child is not None
        return self._child.pid

    def start(self) -> DriveProcess:
        if self._child is not None:
            raise RuntimeError("already started")
        cmd = [sys.executable, "-m", "tests.drive_server", "--client-secret-from-stdin"]
        if self._quota_limit is not None:
            cmd += ["--quota-limit", str(self._quota_limit)]
        child = subprocess.Popen(
            cmd, cwd=_REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._child = child
        try:
            stdin: IO[str] | None = child.stdin
            assert stdin is not None and child.stdout is not None
            stdin.write(self.client_secret + "\n")
            stdin.flush()
            line = child.stdout.readline()  # the child prints once it listens
            if not line:
                raise RuntimeError(f"the Drive server process exited ({child.wait(5)})")
            ready = json.loads(line)
        except BaseException:
            self.stop()
            raise
        self.base_url = str(ready["base_url"])
        self.client_id = str(ready["client_id"])
        return self

    def stop(self) -> None:
        """Closing stdin tells the child to stop; it is killed if it does not."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __enter__(self) -> DriveProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control calls --------------------------------------------------------------

    def _call(self, method: str, what: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base_url}{PREFIX.lstrip('/')}{what}",
            method=method,
            headers={SECRET_HEADER: self.client_secret},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            data: dict[str, Any] = json.loads(answer.read())
        return data

    def issue_tokens(self, scope: str = DRIVE_FILE_SCOPE) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair the server accepts."""
        minted = self._call("POST", f"tokens?scope={urllib.request.quote(scope)}")
        return str(minted["access_token"]), str(minted["refresh_token"])

    def credentials(self, *, scopes: Sequence[str] = (DRIVE_FILE_SCOPE,)) -> Credentials:
        access, refresh = self.issue_tokens(" ".join(scopes))
        return Credentials(
            token=access,
            refresh_token=refresh,
            token_uri=self.token_uri,
            client_id=self.client_id,
            client_secret=self.client_secret,
            scopes=list(scopes),
        )

    def traffic_counts(self) -> dict[str, int]:
        """Requests per endpoint name (as `Traffic.counts()`), since the last reset."""
        return {str(k): int(v) for k, v in self._call("GET", "traffic")["counts"].items()}

    def traffic_records(self) -> list[dict[str, Any]]:
        """Each request since the last reset: `endpoint`, `method`, `query`, `status`."""
        records: list[dict[str, Any]] = self._call("GET", "traffic?records=1")["records"]
        return records

    def reset_traffic(self) -> None:
        self._call("DELETE", "traffic")

    def stored(self) -> dict[str, int]:
        """`files`, `folders` and content `bytes` the account holds."""
        return {str(k): int(v) for k, v in self._call("GET", "stored").items()}


@contextmanager
def drive_process(*, quota_limit: int | None = None) -> Iterator[DriveProcess]:
    with DriveProcess(quota_limit=quota_limit) as running:
        yield running
