"""Follows a job on the terminal: a progress bar with rate and ETA on stderr.

It reads the job through the `Client` protocol, so the same bar follows a job run by
this process's service or by the daemon: progress comes from the event stream, the
end from `wait_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

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
from core.models import Event, JobInfo, JobState

if TYPE_CHECKING:
    from core.client import Client
    from core.service import Service

FINAL = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


async def follow_job(source: Client | Service, job_id: int, *, quiet: bool = False) -> JobInfo:
    """Waits for the job, drawing its progress unless quiet; Ctrl-C cancels it.

    A `Service` (commands that still hold one) is followed through an in-process client
    that is not closed here: the command owns the service."""
    from core.client import InProcessClient
    from core.service import Service

    client: Client = InProcessClient(source) if isinstance(source, Service) else source
    events = client.subscribe(["job.progress", "job.finished"])
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
            info = await _job(client, job_id)
            task = progress.add_task(info.title or info.kind, total=None)
            reader = asyncio.ensure_future(_draw(events, job_id, progress, task))
            try:
                return await client.wait_job(job_id)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    except (KeyboardInterrupt, asyncio.CancelledError):
        await client.cancel_job(job_id)
        raise
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def _job(client: Client, job_id: int) -> JobInfo:
    """The job as listed (for its title): the active ones first, the short list."""
    for active_only in (True, False):
        for job in await client.jobs(active_only=active_only):
            if job.id == job_id:
                return job
    from core.errors import NotFoundError

    raise NotFoundError(f"No job {job_id}")


async def _draw(
    events: AsyncIterator[Event], job_id: int, progress: Progress, task: TaskID
) -> None:
    async for event in events:
        data = event.data
        if data.get("id") != job_id:
            continue
        total = data.get("bytes_total") or data.get("items_total")
        done = data.get("bytes_done") if data.get("bytes_total") else data.get("items_done")
        progress.update(task, total=total, completed=done or 0)
