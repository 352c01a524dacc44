"""`tierkeeper jobs pause ID` / `jobs resume ID`, as a user types them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.service import Service
from tests.support import CLAUDE_FIXTURES, ok, tk

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


async def queued_backup(ws: Path, disk: Path) -> int:
    """A backup left in the queue (the window that queued it was closed)."""
    svc = await Service.start(ws)
    try:
        job = await svc.start_import([str(SOURCE)])
        await svc.jobs.wait(job.id)
        await svc.add_folder_target("usb", str(disk))
    finally:
        await svc.stop()
    svc = await Service.start(ws, run_jobs=False)
    try:
        return (await svc.start_backup([], "usb")).id
    finally:
        await svc.stop()


def test_a_paused_job_waits_for_resume_by_id_then_finishes(tmp_path: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    job_id = asyncio.run(queued_backup(ws, disk))

    paused = tk("jobs", "pause", str(job_id), ws=ws)
    assert paused.returncode == 0, paused.stderr.decode()
    assert f"Job {job_id}: paused".encode() in paused.stderr
    assert f"tierkeeper jobs resume {job_id}".encode() in paused.stderr
    assert ok(tk("jobs", "resume", "--json", ws=ws)) == []  # without an id: left paused

    (done,) = ok(tk("jobs", "resume", str(job_id), "--json", ws=ws))
    assert done["id"] == job_id and done["state"] == "done"
    assert done["result"]["sessions"] == 1
    assert (disk / "Tierkeeper").is_dir()
