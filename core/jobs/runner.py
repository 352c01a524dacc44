"""Runs jobs: rows in `jobs`, so nothing that matters lives only in memory.

The DB row is the truth and this class is a scheduler over it. A worker claims
the oldest queued row inside a write transaction and registers it as active
before that transaction commits, so `cancel` (which also decides inside a
write transaction) always sees a job as either queued in the DB or running
here — never neither. Workers are never cancelled themselves; only the job's
own task is, so every outcome (done, failed, cancelled, or back to queued on a
shutdown) is written by code that runs to completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import BadInputError, JobCancelled, JobMustWait, NotFoundError, TierkeeperError
from core.events import EventBus
from core.jobs.context import COUNTER_COLUMNS, Counters, JobContext, utc_now
from core.local.db.database import Database, Row
from core.models import JobInfo, JobState

logger = logging.getLogger("core.jobs")

JobFunc = Callable[[JobContext], Awaitable[dict[str, Any] | None]]
ProbeFunc = Callable[[str], Awaitable[None]]
"""Returns if the resource answers again; raises (anything) while it does not."""
JobResult = dict[str, Any] | None

FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
SETTLED = FINISHED | {JobState.WAITING, JobState.PAUSED}
"""States `wait` returns on: nothing more will happen without the outside world."""
ACTIVE = ("queued", "running", "waiting", "paused")
_ACTIVE_SQL = ", ".join(f"'{state}'" for state in ACTIVE)
PERSIST_INTERVAL = 0.5  # progress reaches the DB at most this often per runner
PAUSE_GRACE = 30.0
"""How long a job that pauses at its checkpoints may take to get there before it is
interrupted anyway (a huge session in flight): a pause must not wait for hours."""

INFO_COLUMNS = (
    "id, kind, title, state, steps_total, steps_done, items_total, items_done, "
    "bytes_total, bytes_done, error, result, created_at, started_at, finished_at, "
    "resource, wait_reason, needs_user"
)


def _check_id(job_id: int) -> None:
    """An id SQLite cannot even hold (a typo, a fuzzer) names no job: say so, not crash."""
    if not -(2**63) <= job_id < 2**63:
        raise NotFoundError(f"There is no job {job_id}", hint="see `tierkeeper jobs`")


@dataclass(eq=False)
class _Active:
    ctx: JobContext
    finished: asyncio.Future[JobInfo]
    task: asyncio.Task[JobResult] | None = None


class JobRunner:
    """Besides running jobs, keeps the offline queue: a job that raises `JobMustWait`
    is parked with its checkpoint, jobs queued after it on the same resource wait
    behind it (order is kept), and a probe with backoff requeues them all once the
    resource answers. Parked jobs survive restarts; probing resumes at `start`.

    A job the user pauses is parked the same way (state `paused`, never probed):
    it holds its resource, so the order is kept, until `resume` requeues it."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        concurrency: int = 2,
        probe_delay: float = 2.0,
        probe_max_delay: float = 300.0,
        pause_grace: float = PAUSE_GRACE,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._probe_delay = probe_delay
        self._pause_grace = pause_grace
        self._probe_max_delay = probe_max_delay
        self._probes: dict[str, ProbeFunc] = {}
        self._probers: dict[str, asyncio.Task[None]] = {}
        self._db = db
        self._bus = bus
        self._concurrency = concurrency
        self._funcs: dict[str, JobFunc] = {}
        self._active: dict[int, _Active] = {}
        self._waiters: dict[int, set[asyncio.Future[JobInfo]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._kick_event = asyncio.Event()
        self._dirty: set[JobContext] = set()
        self._dirty_event = asyncio.Event()
        self._closing_event = asyncio.Event()
        self._running = False
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._running

    def register(self, kind: str, func: JobFunc) -> None:
        if kind in self._funcs:
            raise ValueError(f"job kind {kind!r} is already registered")
        self._funcs[kind] = func
        self._kick()  # queued rows of this kind may be waiting for it

    def register_probe(self, prefix: str, probe: ProbeFunc) -> None:
        """`probe(resource)` checks resources whose name starts with `prefix`.

        Register before `start`, which begins probing for jobs parked earlier."""
        self._probes[prefix] = probe

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Requeues jobs a dead process left running (checkpoints kept), then works."""
        if self._running:
            return
        async with self._db.transaction() as tx:
            stale = await tx.fetchall("SELECT id FROM jobs WHERE state='running'")
            if stale:
                await tx.execute(
                    "UPDATE jobs SET state='queued', updated_at=? WHERE state='running'",
                    (utc_now(),),
                )
        if stale:
            logger.info("requeued %d interrupted job(s): %s", len(stale), [r[0] for r in stale])
        self._running = True
        self._stopping = False
        self._closing_event = asyncio.Event()
        self._flusher = asyncio.create_task(self._flush_loop(), name="jobs-flush")
        self._workers = [
            asyncio.create_task(self._worker(), name=f"jobs-worker-{n}")
            for n in range(self._concurrency)
        ]
        await self._start_probers()

    async def stop(self) -> None:
        """Interrupts running jobs and puts them back in the queue for the next start."""
        if not self._running:
            return
        self._stopping = True
        probers = list(self._probers.values())
        for prober in probers:
            prober.cancel()
        await asyncio.gather(*probers, return_exceptions=True)
        self._probers.clear()
        for active in list(self._active.values()):
            active.ctx.request_stop()
            if active.task is not None:
                active.task.cancel()
        self._kick()
        await asyncio.gather(*self._workers)
        self._workers = []
        self._closing_event.set()
        self._dirty_event.set()
        if self._flusher is not None:
            await self._flusher
            self._flusher = None
        self._running = False

    # --- API ---------------------------------------------------------------------------
    async def submit(
        self, kind: str, params: dict[str, Any], title: str = "", *, resource: str | None = None
    ) -> JobInfo:
        if kind not in self._funcs:
            known = ", ".join(sorted(self._funcs)) or "none"
            raise BadInputError(f"Unknown job kind {kind!r}", hint=f"known kinds: {known}")
        try:
            blob = orjson.dumps(params).decode()
        except TypeError as exc:
            raise BadInputError(f"Parameters of a {kind} job must be JSON: {exc}") from exc
        now = utc_now()
        job_id = await self._db.execute(
            "INSERT INTO jobs(kind, state, title, params, resource, created_at, updated_at) "
            "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
            (kind, title or kind, blob, resource, now, now),
        )
        info = JobInfo(
            id=job_id,
            kind=kind,
            title=title or kind,
            state=JobState.QUEUED,
            rate=None,
            eta_seconds=None,
            resource=resource,
            created_at=now,
        )
        self._bus.publish("job.queued", info.model_dump(mode="json"))
        self._kick()
        return info

    async def cancel(self, job_id: int) -> JobInfo:
        _check_id(job_id)
        while True:
            active: _Active | None = None
            cancelled_here = False
            async with self._db.transaction() as tx:
                row = await tx.fetchone("SELECT state FROM jobs WHERE id=?", (job_id,))
                if row is None:
                    raise NotFoundError(f"There is no job {job_id}", hint="see `tierkeeper jobs`")
                active = self._active.get(job_id)
                if active is None and row["state"] in ACTIVE:
                    # A 'running' row with no task here is a leftover of a dead process.
                    now = utc_now()
                    await tx.execute(
                        "UPDATE jobs SET state='cancelled', finished_at=?, updated_at=? WHERE id=?",
                        (now, now, job_id),
                    )
                    cancelled_here = True
            if active is None:
                info = await self.get(job_id)
                if cancelled_here:
                    self._announce_finished(info)
                return info
            active.ctx.request_cancel()
            if active.task is not None:
                active.task.cancel()
            info = await asyncio.shield(active.finished)
            if info.state in FINISHED:
                return info
            # It was parked (waiting, paused) or requeued by a shutdown as we asked:
            # its row is all that is left, and the next turn cancels that.

    async def pause(self, job_id: int) -> JobInfo:
        """Parks a job until `resume`, returning once it is parked.

        A running job that `pauses_at_checkpoints` finishes what is in flight and
        stops at its next checkpoint, so nothing it did is redone; any other job
        is interrupted as a shutdown interrupts it (its committed checkpoints
        stay). The row keeps its id, hence its place in the queue, and jobs
        queued after it on the same resource wait behind it. Pausing a job that
        has ended changes nothing (its state says so).
        """
        _check_id(job_id)
        while True:
            active: _Active | None = None
            paused_here = False
            async with self._db.transaction() as tx:
                row = await tx.fetchone("SELECT state FROM jobs WHERE id=?", (job_id,))
                if row is None:
                    raise NotFoundError(f"There is no job {job_id}", hint="see `tierkeeper jobs`")
                active = self._active.get(job_id)
                if active is None and row["state"] in ("queued", "running", "waiting"):
                    # A 'running' row with no task here is a leftover of a dead process.
                    await tx.execute(
                        "UPDATE jobs SET state='paused', wait_reason=NULL, needs_user=0, "
                        "updated_at=? WHERE id=?",
                        (utc_now(), job_id),
                    )
                    paused_here = True
            if active is None:
                info = await self.get(job_id)
                if paused_here:
                    self._announce_paused(info)
                return info
            active.ctx.request_pause()
            if active.task is not None and active.ctx.pauses_at_checkpoints:
                await asyncio.wait([active.finished], timeout=self._pause_grace)
            if active.task is not None and not active.finished.done():
                active.task.cancel()
            info = await asyncio.shield(active.finished)
            if info.state != JobState.QUEUED:
                return info
            # Claimed and requeued by a shutdown before it could start: pause the row.

    async def resume(self, job_id: int) -> JobInfo:
        """Puts a paused job back in the queue, where its id puts it; it goes on from its
        last checkpoint. Any other job is left as it is."""
        _check_id(job_id)
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT state FROM jobs WHERE id=?", (job_id,))
            if row is None:
                raise NotFoundError(f"There is no job {job_id}", hint="see `tierkeeper jobs`")
            resumed = row["state"] == JobState.PAUSED
            if resumed:
                await tx.execute(
                    "UPDATE jobs SET state='queued', updated_at=? WHERE id=?", (utc_now(), job_id)
                )
        info = await self.get(job_id)
        if resumed:
            self._bus.publish("job.queued", info.model_dump(mode="json"))
            self._kick()
        return info

    async def wait(self, job_id: int) -> JobInfo:
        """Returns once the job is done, failed or cancelled, or parked waiting."""
        waiter: asyncio.Future[JobInfo] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(job_id, set())
        waiters.add(waiter)
        try:
            info = await self.get(job_id)
            if info.state in SETTLED:
                return info
            return await waiter
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(job_id, None)

    async def get(self, job_id: int) -> JobInfo:
        _check_id(job_id)
        active = self._active.get(job_id)
        if active is not None:
            return active.ctx.info()
        row = await self._db.fetchone(f"SELECT {INFO_COLUMNS} FROM jobs WHERE id=?", (job_id,))
        if row is None:
            raise NotFoundError(f"There is no job {job_id}", hint="see `tierkeeper jobs`")
        return _row_info(row)

    async def list(self, *, active_only: bool = False, limit: int = 200) -> list[JobInfo]:
        """Newest first."""
        where = f"WHERE state IN ({_ACTIVE_SQL})" if active_only else ""
        rows = await self._db.fetchall(
            f"SELECT {INFO_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?", (limit,)
        )
        out: list[JobInfo] = []
        for row in rows:
            active = self._active.get(row["id"])
            out.append(active.ctx.info() if active is not None else _row_info(row))
        return out

    # --- workers -----------------------------------------------------------------------
    def _kick(self) -> None:
        """Wakes idle workers; each waits on the event it saw before looking."""
        self._kick_event.set()
        self._kick_event = asyncio.Event()

    async def _worker(self) -> None:
        while not self._stopping:
            kicked = self._kick_event
            try:
                active = await self._claim()
            except Exception:
                logger.exception("could not claim a job; retrying on the next submit")
                active = None
            if active is None:
                await kicked.wait()
                continue
            await self._run(active)

    async def _claim(self) -> _Active | None:
        kinds = list(self._funcs)
        if not kinds or self._stopping:
            return None
        marks = ", ".join("?" * len(kinds))
        active: _Active | None = None
        try:
            async with self._db.transaction() as tx:
                # One job at a time per resource, in order: a job never overtakes
                # an older one that is parked (waiting, paused) on the same resource.
                # A newer parked one does not hold back an older job: resuming the
                # first of two paused backups runs it.
                row = await tx.fetchone(
                    f"SELECT * FROM jobs AS j WHERE state='queued' AND kind IN ({marks}) "
                    "AND (resource IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS o "
                    "WHERE o.resource = j.resource AND (o.state = 'running' "
                    "OR (o.state IN ('waiting', 'paused') AND o.id < j.id)))) "
                    "ORDER BY id LIMIT 1",
                    kinds,
                )
                if row is None:
                    return None
                now = utc_now()
                started_at = row["started_at"] or now
                await tx.execute(
                    "UPDATE jobs SET state='running', started_at=?, updated_at=? WHERE id=?",
                    (started_at, now, row["id"]),
                )
                active = _Active(
                    ctx=self._context(row, started_at),
                    finished=asyncio.get_running_loop().create_future(),
                )
                self._active[row["id"]] = active
        except BaseException:
            if active is not None:
                self._active.pop(active.ctx.job_id, None)
            raise
        self._bus.publish("job.started", active.ctx.info().model_dump(mode="json"))
        return active

    def _context(self, row: Row, started_at: str) -> JobContext:
        checkpoint = row["checkpoint"]
        return JobContext(
            job_id=row["id"],
            kind=row["kind"],
            title=row["title"],
            params=orjson.loads(row["params"]),
            checkpoint=None if checkpoint is None else orjson.loads(checkpoint),
            resource=row["resource"],
            created_at=row["created_at"],
            started_at=started_at,
            counters=Counters(
                steps_total=row["steps_total"],
                steps_done=row["steps_done"],
                items_total=row["items_total"],
                items_done=row["items_done"],
                bytes_total=row["bytes_total"],
                bytes_done=row["bytes_done"],
            ),
            db=self._db,
            bus=self._bus,
            on_dirty=self._mark_dirty,
        )

    async def _run(self, active: _Active) -> None:
        ctx = active.ctx
        if self._stopping:
            ctx.request_stop()  # claimed while stop() was already interrupting the others
        if not (ctx.cancel_requested or ctx.stop_requested or ctx.pause_requested):
            active.task = asyncio.create_task(
                _call(self._funcs[ctx.kind], ctx), name=f"job-{ctx.job_id}-{ctx.kind}"
            )
            await asyncio.wait([active.task])
        info: JobInfo | None = None
        try:
            info = await self._finalize(active)
        except Exception:
            logger.exception("could not record the end of job %d", ctx.job_id)
        finally:
            self._active.pop(ctx.job_id, None)
            self._dirty.discard(ctx)
            if info is None:
                info = ctx.info(JobState.FAILED)
            active.finished.set_result(info)
        if info.state in FINISHED:
            self._announce_finished(info)
            if info.resource is not None:
                self._kick()  # the next job on that resource may go
        elif info.state == JobState.PAUSED:
            self._announce_paused(info)
            self._kick()  # other resources' jobs may run meanwhile
        elif info.state == JobState.WAITING:
            self._announce_waiting(info)
            if info.resource is not None:
                self._ensure_prober(info.resource)
            self._kick()  # other resources' jobs may run meanwhile
        else:
            self._bus.publish("job.queued", info.model_dump(mode="json"))

    async def _finalize(self, active: _Active) -> JobInfo:
        ctx = active.ctx
        await ctx.drain_writes()
        ctx.finish()
        state, result, error = self._outcome(active)
        wait = self._wait_of(active) if state == JobState.WAITING else None
        resource = wait.resource if wait is not None else ctx.resource
        reason = wait.message if wait is not None else None
        needs_user = wait is not None and wait.needs_user
        now = utc_now()
        finished_at = now if state in FINISHED else None
        async with self._db.transaction() as tx:
            await tx.execute(
                f"UPDATE jobs SET state=?, result=?, error=?, finished_at=?, {COUNTER_COLUMNS}, "
                "resource=?, wait_reason=?, needs_user=?, updated_at=? WHERE id=?",
                (state, result, error, finished_at, *ctx.counters.as_row(), resource, reason,
                 int(needs_user), now, ctx.job_id),
            )  # fmt: skip
        return ctx.info(state).model_copy(
            update={
                "rate": None,
                "eta_seconds": None,
                "error": error,
                "result": None if result is None else orjson.loads(result),
                "finished_at": finished_at,
                "resource": resource,
                "wait_reason": reason,
                "needs_user": needs_user,
            }
        )

    @staticmethod
    def _wait_of(active: _Active) -> JobMustWait | None:
        task = active.task
        if task is None or task.cancelled():
            return None
        exc = task.exception()
        return exc if isinstance(exc, JobMustWait) else None

    def _outcome(self, active: _Active) -> tuple[JobState, str | None, str | None]:
        """(state, result JSON, error line) from how the job's task ended."""
        ctx, task = active.ctx, active.task
        if ctx.cancel_requested:
            interrupted = JobState.CANCELLED
        elif ctx.pause_requested:
            interrupted = JobState.PAUSED  # also across a shutdown: the user asked for it
        else:
            interrupted = JobState.QUEUED if ctx.stop_requested else JobState.CANCELLED
        if task is None or task.cancelled():
            return interrupted, None, None
        exc = task.exception()
        if exc is None:
            value = task.result()
            if value is not None and not isinstance(value, dict):
                exc = TypeError(f"a job returns a dict or None, not {type(value).__name__}")
            else:
                try:
                    return JobState.DONE, orjson.dumps(value).decode(), None
                except TypeError as err:
                    exc = err
        if isinstance(exc, JobCancelled):
            return interrupted, None, None
        if isinstance(exc, JobMustWait):
            # parked just as the user cancelled or paused it: what they asked for wins
            asked = ctx.cancel_requested or ctx.pause_requested
            return (interrupted if asked else JobState.WAITING), None, None
        if isinstance(exc, TierkeeperError):
            return JobState.FAILED, None, _one_line(str(exc))
        logger.error("job %d (%s) failed", ctx.job_id, ctx.kind, exc_info=exc)
        return JobState.FAILED, None, _one_line(f"internal error: {type(exc).__name__}: {exc}")

    def _announce_waiting(self, info: JobInfo) -> None:
        self._bus.publish("job.waiting", info.model_dump(mode="json"))
        self._settle_waiters(info)

    def _announce_paused(self, info: JobInfo) -> None:
        self._bus.publish("job.paused", info.model_dump(mode="json"))
        self._settle_waiters(info)

    def _settle_waiters(self, info: JobInfo) -> None:
        for waiter in self._waiters.get(info.id, ()):
            if not waiter.done():
                waiter.set_result(info)

    # --- the offline queue -------------------------------------------------------------
    async def resume_waiting(self, resource: str | None = None) -> int:
        """Requeues parked jobs (of one resource, or all) now; returns how many."""
        where, args = ("AND resource=?", (resource,)) if resource is not None else ("", ())
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(f"SELECT id FROM jobs WHERE state='waiting' {where}", args)
            await tx.execute(
                "UPDATE jobs SET state='queued', wait_reason=NULL, needs_user=0, updated_at=? "
                f"WHERE state='waiting' {where}",
                (utc_now(), *args),
            )
        for row in rows:
            self._bus.publish("job.queued", (await self.get(row[0])).model_dump(mode="json"))
        if rows:
            logger.info("requeued %d waiting job(s) on %s", len(rows), resource or "any")
            self._kick()
        return len(rows)

    def _probe_for(self, resource: str) -> ProbeFunc | None:
        for prefix, probe in self._probes.items():
            if resource.startswith(prefix):
                return probe
        return None

    async def _start_probers(self) -> None:
        rows = await self._db.fetchall(
            "SELECT DISTINCT resource FROM jobs WHERE state='waiting' AND resource IS NOT NULL"
        )
        for row in rows:
            self._ensure_prober(row[0])

    def _ensure_prober(self, resource: str) -> None:
        if self._stopping or not self._running:
            return
        running = self._probers.get(resource)
        if running is not None and not running.done():
            return
        if self._probe_for(resource) is None:
            return  # parked until `resume_waiting` (or a probe registered later)
        self._probers[resource] = asyncio.create_task(
            self._probe_loop(resource), name=f"jobs-probe-{resource}"
        )

    async def _probe_loop(self, resource: str) -> None:
        """Backoff with jitter up to `probe_max_delay`, then every that often."""
        attempt = 0
        while not self._stopping:
            cap = min(self._probe_max_delay, self._probe_delay * 2.0 ** min(attempt, 30))
            await asyncio.sleep(random.uniform(cap / 2, cap))
            attempt += 1
            probe = self._probe_for(resource)
            if probe is None:
                return
            try:
                await probe(resource)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.info("%s still unavailable (%s)", resource, exc)
                continue
            self._probers.pop(resource, None)
            await self.resume_waiting(resource)
            return

    def _announce_finished(self, info: JobInfo) -> None:
        self._bus.publish("job.finished", info.model_dump(mode="json"))
        for waiter in self._waiters.get(info.id, ()):
            if not waiter.done():
                waiter.set_result(info)

    # --- progress persistence ----------------------------------------------------------
    def _mark_dirty(self, ctx: JobContext) -> None:
        self._dirty.add(ctx)
        self._dirty_event.set()

    async def _flush_loop(self) -> None:
        while not self._closing_event.is_set():
            await self._dirty_event.wait()
            self._dirty_event.clear()
            try:
                await self._persist_progress()
            except Exception:
                logger.exception("could not save job progress")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing_event.wait(), PERSIST_INTERVAL)

    async def _persist_progress(self) -> None:
        if not self._dirty:
            return
        now = utc_now()
        rows = [(*ctx.counters.as_row(), now, ctx.job_id) for ctx in self._dirty]
        self._dirty.clear()
        async with self._db.transaction() as tx:
            await tx.executemany(
                f"UPDATE jobs SET {COUNTER_COLUMNS}, updated_at=? WHERE id=? AND state='running'",
                rows,
            )


async def _call(func: JobFunc, ctx: JobContext) -> JobResult:
    return await func(ctx)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _row_info(row: Row) -> JobInfo:
    result = row["result"]
    return JobInfo(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        state=JobState(row["state"]),
        steps_total=row["steps_total"],
        steps_done=row["steps_done"],
        items_total=row["items_total"],
        items_done=row["items_done"],
        bytes_total=row["bytes_total"],
        bytes_done=row["bytes_done"],
        rate=None,
        eta_seconds=None,
        error=row["error"],
        result=None if result is None else orjson.loads(result),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        resource=row["resource"],
        wait_reason=row["wait_reason"],
        needs_user=bool(row["needs_user"]),
    )
