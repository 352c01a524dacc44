"""Follows a job on the terminal: a progress bar with rate and ETA on stderr.

It reads the job through the `Client` protocol, so the same bar follows a job run by
this process's service or by the daemon: progress comes from the event stream, the
end from `wait_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

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
        _Amount(),
        _Speed(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )
    try:
        with progress:
            info = await _job(client, job_id)
            task = progress.add_task(_label(info.title or info.kind), total=None)
            _show(progress, task, info.model_dump())
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


def _label(title: str, width: int = 40) -> str:
    """A title cut to leave the bar its room: an import of many files is titled with
    all their names, and took the whole line."""
    return title if len(title) <= width else title[: width - 1] + "…"


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
        _show(progress, task, data)


def _show(progress: Progress, task: TaskID, data: dict[str, Any]) -> None:
    """Bytes when the job knows how many it will move, else the sessions it has done."""
    if data.get("bytes_total"):
        progress.update(task, total=data["bytes_total"], completed=data.get("bytes_done") or 0,
                        by_bytes=True)  # fmt: skip
    elif data.get("items_total"):
        progress.update(task, total=data["items_total"], completed=data.get("items_done") or 0,
                        by_bytes=False)  # fmt: skip


class _Amount(ProgressColumn):
    """`12.0/150.1 MB` when a job counts bytes, `29/240 sessions` when it counts the
    sessions it has done (a backup, a recovery, closing a phase)."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:  # nothing counted yet
            return Text("")
        if task.fields.get("by_bytes", True):
            return self._bytes.render(task)
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(f"{task.completed:.0f}/{total} sessions", style="progress.download")


class _Speed(ProgressColumn):
    """Bytes a second; nothing for a count of sessions (their sizes differ too much for a
    rate of them to mean anything: the ETA says what there is to say)."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        if task.total is None or not task.fields.get("by_bytes", True):
            return Text("")
        return self._bytes.render(task)
