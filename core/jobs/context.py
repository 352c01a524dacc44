"""What a job function gets: its inputs, its last checkpoint, and ways to report.

The context is also the live record of a running job (its counters, its
cancel flags), so reporting progress is a few attribute writes: the bus sees
at most ten updates a second per job and the DB one every half second, however
often the job calls `progress()`. Checkpoints are the opposite: they are the
promise that finished work is never redone, so `save_checkpoint` returns only
once the row is committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from core.errors import JobCancelled
from core.events import EventBus
from core.jobs.progress import JobMeter
from core.local.db.database import Database
from core.models import JobInfo, JobState

logger = logging.getLogger("core.jobs")

PUBLISH_INTERVAL = 0.1  # at most 10 progress events a second per job


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Counters:
    """The progress columns of a `jobs` row, in column order."""

    steps_total: int | None = None
    steps_done: int = 0
    items_total: int | None = None
    items_done: int = 0
    bytes_total: int | None = None
    bytes_done: int = 0

    def as_row(self) -> tuple[int | None, ...]:
        return astuple(self)


COUNTER_COLUMNS = (
    "steps_total=?, steps_done=?, items_total=?, items_done=?, bytes_total=?, bytes_done=?"
)


class JobContext:
    def __init__(
        self,
        *,
        job_id: int,
        kind: str,
        title: str,
        params: dict[str, Any],
        checkpoint: dict[str, Any] | None,
        resource: str | None = None,
        created_at: str,
        started_at: str | None,
        counters: Counters,
        db: Database,
        bus: EventBus,
        on_dirty: Callable[[JobContext], None],
    ) -> None:
        self.job_id = job_id
        self.kind = kind
        self.title = title
        self.params = params
        self.checkpoint = checkpoint
        self.resource = resource
        self.created_at = created_at
        self.started_at = started_at
        self.counters = counters
        self.message: str | None = None
        self.pauses_at_checkpoints = False
        """Set by a job that watches `pause_requested` and stops by itself where all it
        finished is checkpointed; the runner then lets it finish what is in flight
        instead of interrupting it (up to the runner's grace period)."""
        self._db = db
        self._bus = bus
        self._on_dirty = on_dirty
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._meter = JobMeter()
        self._meter.update(
            items_done=counters.items_done, bytes_done=counters.bytes_done, now=time.monotonic()
        )
        self._cancel_requested = False
        self._stop_requested = False
        self._pause_requested = False
        self._finished = False
        self._last_publish = -math.inf
        self._pending: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    # --- for the job function ---------------------------------------------------------
    async def save_checkpoint(
        self, state: dict[str, Any], *, steps_done: int | None = None
    ) -> None:
        """Commits `state` (and the counters) before returning.

        The write is shielded: if the job is cancelled mid-write the row is
        still committed whole, and the runner waits for it before finishing.
        """
        blob = orjson.dumps(state).decode()
        if steps_done is not None:
            self.counters.steps_done = steps_done
        write = asyncio.ensure_future(self._write_checkpoint(blob, self.counters.as_row()))
        self._writes.add(write)
        write.add_done_callback(self._write_done)
        await asyncio.shield(write)
        self.checkpoint = state
        self._publish_progress()

    def progress(
        self,
        *,
        items_done: int | None = None,
        items_total: int | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        steps_total: int | None = None,
        steps_done: int | None = None,
        message: str | None = None,
    ) -> None:
        """Records absolute counter values; safe to call from a worker thread."""
        if threading.get_ident() != self._loop_thread:
            update = functools.partial(
                self.progress,
                items_done=items_done,
                items_total=items_total,
                bytes_done=bytes_done,
                bytes_total=bytes_total,
                steps_total=steps_total,
                steps_done=steps_done,
                message=message,
            )
            try:
                self._loop.call_soon_threadsafe(update)
            except RuntimeError:
                pass  # the loop is gone; so is anyone who would read this
            return
        if self._finished:
            return
        c = self.counters
        if items_done is not None:
            c.items_done = items_done
        if items_total is not None:
            c.items_total = items_total
        if bytes_done is not None:
            c.bytes_done = bytes_done
        if bytes_total is not None:
            c.bytes_total = bytes_total
        if steps_done is not None:
            c.steps_done = steps_done
        if steps_total is not None:
            c.steps_total = steps_total
        if message is not None:
            self.message = message
        self._meter.update(items_done=c.items_done, bytes_done=c.bytes_done, now=time.monotonic())
        self._on_dirty(self)
        self._publish_progress()

    def check_cancelled(self) -> None:
        """For loops that do not await: turns a cancel (a pause, a shutdown) into JobCancelled."""
        if self._cancel_requested or self._stop_requested or self._pause_requested:
            raise JobCancelled(f"Job {self.job_id} ({self.kind}) was cancelled")

    def log(self, message: str) -> None:
        logger.info("job %d (%s): %s", self.job_id, self.kind, message)
        self._bus.publish_threadsafe(
            "job.log", {"id": self.job_id, "kind": self.kind, "message": message}
        )

    # --- for the runner ------------------------------------------------------------
    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def pause_requested(self) -> bool:
        return self._pause_requested

    def request_pause(self) -> None:
        self._pause_requested = True

    def request_cancel(self) -> None:
        self._cancel_requested = True

    def request_stop(self) -> None:
        self._stop_requested = True

    def info(self, state: JobState = JobState.RUNNING) -> JobInfo:
        c = self.counters
        rate, eta = self._meter.rate_eta(
            items_total=c.items_total, bytes_total=c.bytes_total, now=time.monotonic()
        )
        return JobInfo(
            id=self.job_id,
            kind=self.kind,
            title=self.title,
            state=state,
            steps_total=c.steps_total,
            steps_done=c.steps_done,
            items_total=c.items_total,
            items_done=c.items_done,
            bytes_total=c.bytes_total,
            bytes_done=c.bytes_done,
            rate=rate,
            eta_seconds=eta,
            resource=self.resource,
            created_at=self.created_at,
            started_at=self.started_at,
        )

    async def drain_writes(self) -> None:
        """Waits for checkpoint writes a cancellation left running."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def finish(self) -> None:
        """Publishes a throttled-away final value, then ignores further reports."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self._emit()
        self._finished = True

    # --- internals ---------------------------------------------------------------------
    async def _write_checkpoint(self, blob: str, counters: tuple[int | None, ...]) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                f"UPDATE jobs SET checkpoint=?, {COUNTER_COLUMNS}, updated_at=? WHERE id=?",
                (blob, *counters, utc_now(), self.job_id),
            )

    def _write_done(self, write: asyncio.Task[None]) -> None:
        self._writes.discard(write)

    def _publish_progress(self) -> None:
        if self._finished:
            return
        wait = self._last_publish + PUBLISH_INTERVAL - time.monotonic()
        if wait <= 0:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self._emit()
        elif self._pending is None:
            self._pending = self._loop.call_later(wait, self._emit_pending)

    def _emit_pending(self) -> None:
        self._pending = None
        if not self._finished:
            self._emit()

    def _emit(self) -> None:
        self._last_publish = time.monotonic()
        data = self.info().model_dump(mode="json")
        data["message"] = self.message
        self._bus.publish("job.progress", data)
