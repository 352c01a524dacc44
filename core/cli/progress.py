"""Follows a job on the terminal: a progress bar with rate and ETA on stderr."""

from __future__ import annotations

import asyncio
import contextlib

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from core.cli.output import err
from core.events import Subscription
from core.models import JobInfo, JobState
from core.service import Service

FINAL = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


async def follow_job(svc: Service, job_id: int, *, quiet: bool = False) -> JobInfo:
    """Waits for the job, drawing its progress unless quiet; Ctrl-C cancels it."""
    sub = svc.bus.subscribe(["job.progress", "job.finished"])
    waiter = asyncio.ensure_future(svc.jobs.wait(job_id))
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )
    try:
        with progress:
            info = await svc.jobs.get(job_id)
            task = progress.add_task(info.title or info.kind, total=None)
            reader = asyncio.ensure_future(_draw(sub, job_id, progress, task))
            try:
                return await waiter
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    except (KeyboardInterrupt, asyncio.CancelledError):
        await svc.jobs.cancel(job_id)
        raise
    finally:
        await sub.aclose()


async def _draw(sub: Subscription, job_id: int, progress: Progress, task: TaskID) -> None:
    async for event in sub:
        data = event.data
        if data.get("id") != job_id:
            continue
        total = data.get("bytes_total") or data.get("items_total")
        done = data.get("bytes_done") if data.get("bytes_total") else data.get("items_done")
        progress.update(task, total=total, completed=done or 0)
