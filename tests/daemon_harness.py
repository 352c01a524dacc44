"""Ways to reach a daemon from tests that cannot share its event loop.

A synchronous test (hypothesis, schemathesis, `requests`) needs the daemon running on a
loop of its own, so `ThreadedDaemon` runs one in a background thread. `UnixAdapter`
lets `requests` speak HTTP over the daemon's Unix socket, so the fuzzing goes through
the same socket a real client uses: the product never needs a TCP listener.
`spawn_daemon` starts the real `tierkeeper daemon` command as a child process.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from core.daemon.server import Daemon
from tests.support import REPO

T = TypeVar("T")

BASE = "http://tierkeeper"


class _UnixConnection(HTTPConnection):
    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, (int, float)):
            sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        return sock


class _UnixPool(HTTPConnectionPool):
    ConnectionCls = _UnixConnection  # type: ignore[assignment]


class UnixAdapter(HTTPAdapter):
    """Every URL mounted on it goes to one Unix socket, whatever its host."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__()
        self._pool = _UnixPool("tierkeeper", socket_path=str(socket_path), maxsize=4)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


def unix_session(socket_path: Path) -> requests.Session:
    session = requests.Session()
    session.mount(BASE + "/", UnixAdapter(socket_path))
    return session


class ThreadedDaemon:
    """A daemon on its own event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.daemon: Daemon | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Runs `coro` on the daemon's loop and returns its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self, workspace: Path, **options: Any) -> Daemon:
        self.daemon = self.run(Daemon.start(workspace, **options))
        return self.daemon

    def close(self) -> None:
        try:
            if self.daemon is not None:
                self.run(self.daemon.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop.close()


async def spawn_daemon(workspace: Path, log: Path) -> asyncio.subprocess.Process:
    """`tierkeeper daemon` as a child process, its stderr to `log` (a pipe nobody reads
    would fill and stall it); returns once it logged that it serves."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.cli.entry", "daemon", "--workspace", str(workspace),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    for _ in range(1200):
        if "serving" in log.read_text(errors="replace"):
            return proc
        if proc.returncode is not None:
            break
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            pass
    raise AssertionError("the daemon did not start serving:\n" + log.read_text(errors="replace"))
