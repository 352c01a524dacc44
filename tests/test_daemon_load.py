"""Many clients at once: 50 connections × 1,000 read requests, and not one error.

The daemon is the real `tierkeeper daemon` in a process of its own (so it has a core
to itself, as it does beside a window and a CLI); the clients are plain aiohttp sessions, each
with one connection of its own, asking what a window and scripts ask all day: status,
the session list, jobs, search, metrics. The clients read the answers raw (no parsing
into models) so the test's half of the two cores stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from core.client import connect_daemon
from core.daemon.socket_path import socket_path
from core.service import Service
from tests.daemon_harness import spawn_daemon
from tests.support import CLAUDE_FIXTURES

CLIENTS = 50
REQUESTS = 1000


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


MIX = [
    ("GET", "/v1/status", None),
    ("GET", "/v1/sessions", None),
    ("GET", "/v1/jobs?active_only=true", None),
    ("POST", "/v1/search", b'{"text": "markdown", "limit": 5}'),
    ("GET", "/v1/metrics", None),
]


async def test_fifty_clients_times_a_thousand_requests_without_an_error(
    tmp_path: Path, xdg: Path
) -> None:
    ws = tmp_path / "ws"
    async with await Service.start(ws, run_jobs=False, schedule=False) as svc:
        await svc.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        sessions = len(await svc.list_sessions())
    daemon = await spawn_daemon(ws, tmp_path / "daemon.log")
    sock = socket_path(ws)
    answered: Counter[str] = Counter()

    async def client(n: int) -> None:
        """One connection, requests one after another, as a window or a script does."""
        connector = aiohttp.UnixConnector(path=str(sock), limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            for i in range(REQUESTS):
                method, path, body = MIX[(n + i) % len(MIX)]
                async with http.request(method, "http://tierkeeper" + path, data=body) as resp:
                    await resp.read()
                    assert resp.status == 200 and resp.content_type == "application/json"
                answered[path] += 1

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        wall = time.perf_counter() - started
        print(f"{CLIENTS} × {REQUESTS} requests in {wall:.1f} s")  # for the record, not judged
        assert sum(answered.values()) == CLIENTS * REQUESTS
        assert set(answered) == {path for _, path, _ in MIX}
        still = await connect_daemon(ws)  # and it still serves, with the data intact
        assert still is not None
        assert (await still.status()).sessions == sessions
        await still.close()
        assert daemon.returncode is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            daemon.terminate()
        await daemon.wait()
    text = (tmp_path / "daemon.log").read_text()
    assert "Traceback" not in text and "failed" not in text
