"""The offline queue: a backup whose target is away waits, in order, across restarts.

The target is a real folder that disappears the way a USB disk does (its
mount point is gone), so the store reports it unreachable for real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.models import JobState
from core.service import Service
from core.tier2.targets import RetryPolicy
from tests.support import CLAUDE_FIXTURES

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


async def start(ws: Path, *, probe_delay: float = 0.05) -> Service:
    return await Service.start(ws, retry=FAST, probe_delay=probe_delay)


async def until(svc: Service, job_id: int, state: JobState, timeout: float = 20) -> None:
    async def poll() -> None:
        while (await svc.jobs.get(job_id)).state != state:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def prepared(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    svc = await start(ws)
    try:
        job = await svc.start_import([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE
        await svc.add_folder_target("usb", str(disk))
        sessions = [s.id for s in await svc.list_sessions()]
    finally:
        await svc.stop()
    return ws, disk, sorted(sessions)


async def test_jobs_wait_for_an_unplugged_disk_in_order_across_a_restart(tmp_path: Path) -> None:
    ws, disk, sessions = await prepared(tmp_path)
    away = tmp_path / "unplugged"
    disk.rename(away)

    svc = await start(ws, probe_delay=3600)  # nothing comes back during this run
    try:
        first = await svc.start_backup(sessions[:1], "usb")
        parked = await svc.jobs.wait(first.id)
        assert parked.state == JobState.WAITING
        assert parked.wait_reason and "usb is unreachable" in parked.wait_reason
        assert not parked.needs_user
        second = await svc.start_backup(sessions[1:], "usb")
        await asyncio.sleep(0.3)
        # the later job does not overtake the parked one: it stays queued behind it
        assert (await svc.jobs.get(second.id)).state == JobState.QUEUED
        listed = {j.id: j.state for j in await svc.jobs.list(active_only=True)}
        assert listed == {first.id: JobState.WAITING, second.id: JobState.QUEUED}
    finally:
        await svc.stop()

    away.rename(disk)  # plugged in while the app was closed
    svc = await start(ws)
    try:
        await until(svc, second.id, JobState.DONE)
        done_first, done_second = await svc.jobs.get(first.id), await svc.jobs.get(second.id)
        assert done_first.state == done_second.state == JobState.DONE
        assert done_first.finished_at is not None and done_second.finished_at is not None
        assert done_first.finished_at <= done_second.finished_at
        rows = await svc.db.fetchall("SELECT session_id FROM backups ORDER BY id")
        assert sorted(r[0] for r in rows) == sessions
        assert rows[0][0] == sessions[0]  # the older job ran first
    finally:
        await svc.stop()


async def test_a_waiting_job_runs_once_the_disk_returns_while_running(tmp_path: Path) -> None:
    ws, disk, sessions = await prepared(tmp_path)
    away = tmp_path / "unplugged"
    disk.rename(away)
    svc = await start(ws)
    try:
        job = await svc.start_backup(sessions, "usb")
        await until(svc, job.id, JobState.WAITING)
        away.rename(disk)
        await until(svc, job.id, JobState.DONE)
        info = await svc.jobs.get(job.id)
        assert info.result is not None and info.result["sessions"] == len(sessions)
        assert info.wait_reason is None
    finally:
        await svc.stop()


async def test_a_waiting_job_can_be_cancelled(tmp_path: Path) -> None:
    ws, disk, sessions = await prepared(tmp_path)
    disk.rename(tmp_path / "unplugged")
    svc = await start(ws, probe_delay=3600)
    try:
        job = await svc.start_backup(sessions, "usb")
        assert (await svc.jobs.wait(job.id)).state == JobState.WAITING
        assert (await svc.jobs.cancel(job.id)).state == JobState.CANCELLED
        assert await svc.jobs.list(active_only=True) == []
    finally:
        await svc.stop()


async def test_sessions_done_before_the_disk_went_away_are_not_redone(tmp_path: Path) -> None:
    ws, disk, sessions = await prepared(tmp_path)
    svc = await start(ws, probe_delay=3600)
    away = tmp_path / "unplugged"
    try:
        moved = False

        def unplug_after_first(event_data: dict[str, object]) -> None:
            nonlocal moved
            if not moved and event_data.get("steps_done") == 1:
                disk.rename(away)
                moved = True

        sub = svc.bus.subscribe(["job.progress"])
        job = await svc.start_backup(sessions, "usb")

        async def watch() -> None:
            async for event in sub:
                unplug_after_first(event.data)

        watcher = asyncio.ensure_future(watch())
        parked = await svc.jobs.wait(job.id)
        watcher.cancel()
        await sub.aclose()
        if parked.state == JobState.DONE:  # the whole run beat the watcher: nothing to check
            return
        assert parked.state == JobState.WAITING
        before = await svc.db.scalar("SELECT count(*) FROM backups")
        assert before is not None and before >= 1
        away.rename(disk)
        assert await svc.jobs.resume_waiting() == 1
        await until(svc, job.id, JobState.DONE)
        rows = await svc.db.fetchall("SELECT session_id FROM backups")
        assert sorted(r[0] for r in rows) == sessions  # each session backed up exactly once
    finally:
        await svc.stop()


async def test_a_disk_gone_when_every_session_is_already_backed_up_still_parks(
    tmp_path: Path,
) -> None:
    """Nothing to upload, but the job still writes the target's index (what a fresh
    machine reads first): with the disk away that waits too, it does not fail."""
    ws, disk, sessions = await prepared(tmp_path)
    svc = await start(ws)
    try:
        first = await svc.jobs.wait((await svc.start_backup(sessions, "usb")).id)
        assert first.state == JobState.DONE
        away = tmp_path / "unplugged"
        disk.rename(away)

        again = await svc.start_backup(sessions, "usb")
        await until(svc, again.id, JobState.WAITING)
        parked = await svc.jobs.get(again.id)
        assert parked.wait_reason and "usb is unreachable" in parked.wait_reason
        assert parked.error is None

        away.rename(disk)
        await until(svc, again.id, JobState.DONE)
        done = await svc.jobs.get(again.id)
        assert done.result is not None and done.result["unchanged"] == len(sessions)
    finally:
        await svc.stop()
