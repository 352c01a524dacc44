"""A daemon killed with SIGKILL in the middle of a backup: the next daemon finishes it.

Real processes throughout: `tierkeeper daemon` runs as a child, the backup goes to a
folder target, the kill is a real SIGKILL (no cleanup, no graceful stop, the socket
file left behind), and the second daemon picks the job up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from core.client import HttpClient, connect_daemon
from core.models import JobInfo, JobState
from core.service import Service
from tests.daemon_harness import spawn_daemon
from tests.support import CLAUDE_FIXTURES

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
SESSIONS = 60


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


async def _prepared(tmp_path: Path) -> Path:
    """A workspace with many small sessions and a folder target to back them up to."""
    project = tmp_path / "projects" / "demo"
    project.mkdir(parents=True)
    for n in range(SESSIONS):
        shutil.copyfile(SOURCE, project / f"session-{n:03d}.jsonl")
    ws = tmp_path / "ws"
    async with await Service.start(ws, run_jobs=False, schedule=False) as svc:
        await svc.import_now([str(project)])
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        assert len(await svc.list_sessions()) == SESSIONS
    return ws


async def _connect(ws: Path) -> HttpClient:
    client = await connect_daemon(ws)
    assert client is not None
    return client


async def test_a_backup_interrupted_by_kill_9_is_finished_by_the_next_daemon(
    tmp_path: Path, xdg: Path
) -> None:
    ws = await _prepared(tmp_path)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = await spawn_daemon(ws, logs[0])
    second: asyncio.subprocess.Process | None = None
    try:
        client = await _connect(ws)
        events = client.subscribe(["job.progress"])
        job = await client.start_backup([], "usb")
        seen: JobInfo | None = None
        async for event in events:
            info = JobInfo.model_validate(event.data)
            if info.id == job.id and (info.items_done or 0) >= 1:
                seen = info
                os.kill(first.pid, signal.SIGKILL)  # mid-way: some sessions done, not all
                break
        assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
        assert seen is not None and seen.items_total == SESSIONS
        assert (seen.items_done or 0) < SESSIONS, "the backup finished before the kill"
        await client.close()

        second = await spawn_daemon(ws, logs[1])  # replaces the dead one's socket file
        client = await _connect(ws)
        assert client.pid == second.pid
        done = await asyncio.wait_for(client.wait_job(job.id), 60)
        assert done.state == JobState.DONE, done.error
        assert done.result is not None and done.result["sessions"] == SESSIONS
        assert done.result["failed"] == []
        backed_up = {b.session_id for b in await client.backups(target="usb")}
        assert len(backed_up) == SESSIONS
        verify = await client.start_verify("usb", deep=True)
        checked = await asyncio.wait_for(client.wait_job(verify.id), 60)
        assert checked.state == JobState.DONE
        assert checked.result == {"verified": SESSIONS, "failed": []}
        await client.close()
    finally:
        for proc in (first, second):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    text = logs[1].read_text()
    assert "requeued 1 interrupted job(s)" in text and "Traceback" not in text
