"""Backups and verifies that run by themselves, on the schedule in config.toml.

The schedule keeps no state of its own: when a run is due follows from the
last successful job of that kind in the `jobs` table, so a restart, a laptop
lid closed for a weekend or a week without the service all end the same way —
one run as soon as possible, not one per missed slot. A run never starts while
another of its kind is queued, running or waiting for its target.

A due run may still wait: during quiet hours until they end; on battery or a
metered connection until the next look (a minute later), each told once on the
bus as `schedule.skipped` with the reason. A failed or cancelled run is not
retried at once either: the next try comes after the period, at most an hour.

`backup_every = "session-end"` leaves backups to the session's end (`tierkeeper
session end` starts one); this class then only verifies.

The clock (timezone-aware: quiet hours are read in its zone) and both checks are
attributes, so tests replace them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from core.errors import BadInputError
from core.power import PowerSource, metered, power_source

if TYPE_CHECKING:
    from core.config import TargetConfig
    from core.service import Service

log = logging.getLogger(__name__)

Kind = Literal["backup", "verify"]
KINDS: tuple[Kind, ...] = ("backup", "verify")
PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1),
           "weekly": timedelta(weeks=1)}  # fmt: skip
RETRY_AFTER_FAILURE = timedelta(hours=1)
MAX_NAP = 60.0
"""Longest sleep between looks: asyncio's clock stops while the machine sleeps, so
a long sleep would overshoot a due time by the length of the suspend."""
SKIPPED = "schedule.skipped"


def local_now() -> datetime:
    return datetime.now().astimezone()


def quiet_until(spec: str | None, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in ("22:00-07:00", in `now`'s zone), or None."""
    if not spec:
        return None
    start_s, end_s = spec.split("-")
    start = now.replace(hour=int(start_s[:2]), minute=int(start_s[3:]), second=0, microsecond=0)
    end = now.replace(hour=int(end_s[:2]), minute=int(end_s[3:]), second=0, microsecond=0)
    if start == end:
        return None
    if start < end:
        return end if start <= now < end else None
    if now >= start:  # the window runs past midnight
        return end + timedelta(days=1)
    return end if now < end else None


class Scheduler:
    def __init__(
        self,
        service: Service,
        *,
        now: Callable[[], datetime] = local_now,
        power_source: Callable[[], Awaitable[PowerSource]] = power_source,
        metered: Callable[[], Awaitable[bool | None]] = metered,
        max_nap: float = MAX_NAP,
    ) -> None:
        self.service = service
        self.now = now
        self.power_source = power_source
        self.metered = metered
        self.max_nap = max_nap
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._told: dict[Kind, str] = {}

    # lifecycle -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        if self._tasks:
            return
        changes = self.service.bus.subscribe(["config."])
        self._tasks = [
            asyncio.create_task(self._run(), name="scheduler"),
            asyncio.create_task(self._listen(changes), name="scheduler-config"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Look again now (the schedule or the targets changed)."""
        self._woken.set()

    async def _listen(self, changes: AsyncIterator[object]) -> None:
        try:
            async for _ in changes:
                self.wake()
        finally:
            close = getattr(changes, "close", None)
            if close is not None:
                close()

    async def _run(self) -> None:
        while True:
            self._woken.clear()
            try:
                pause = await self.check()
            except Exception:
                log.exception("the schedule could not be checked")
                pause = self.max_nap
            # Not wait_for: on 3.11 it swallows a cancel that lands as the wait ends (a
            # config change during stop), and the scheduler would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._woken.wait()

    # deciding ---------------------------------------------------------------------------
    async def check(self) -> float:
        """Starts what is due now; returns how many seconds to sleep before looking again."""
        async with self._lock:
            now = self.now()
            pauses = [self.max_nap]
            with self.service.metrics.unmetered():  # housekeeping, not the user's load
                for kind in KINDS:
                    pause = await self._check(kind, now)
                    if pause is not None:
                        pauses.append(pause)
            return max(0.0, min(pauses))

    async def _check(self, kind: Kind, now: datetime) -> float | None:
        schedule = self.service.config.schedule
        period = PERIODS.get(schedule.backup_every if kind == "backup" else schedule.verify_every)
        targets = self.service.config.targets
        if period is None or not targets:
            self._told.pop(kind, None)
            return None
        target = targets[0]
        if await self._active(kind, target.name):
            return None
        due = await self._due(kind, target.name, period, now)
        if due is None:
            return None
        if due > now:
            self._told.pop(kind, None)
            return (due - now).total_seconds()
        quiet_end = quiet_until(schedule.quiet_hours, now)
        if quiet_end is not None:
            self._skip(kind, target, "quiet-hours", f"quiet hours until {quiet_end:%H:%M}",
                       until=quiet_end)  # fmt: skip
            return (quiet_end - now).total_seconds()
        if schedule.skip_on_battery and await self.power_source() == "battery":
            self._skip(kind, target, "battery", "the computer runs on battery")
            return None
        if schedule.skip_on_metered and await self.metered() is True:
            self._skip(kind, target, "metered", "the network connection is metered")
            return None
        self._told.pop(kind, None)
        try:
            if kind == "backup":
                job = await self.service.start_backup([], target.name)
            else:
                job = await self.service.start_verify(target.name)
        except BadInputError as exc:  # nothing to back up yet
            log.info("scheduled %s not started: %s", kind, exc)
            return None
        log.info("scheduled %s of %s started as job %d", kind, target.name, job.id)
        return None

    async def _active(self, kind: Kind, target: str) -> bool:
        found = await self.service.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = ? AND state IN ('queued', 'running', "
            "'waiting', 'paused') AND json_extract(params, '$.target') = ?",
            (kind, target),
        )
        return bool(found)

    async def _due(
        self, kind: Kind, target: str, period: timedelta, now: datetime
    ) -> datetime | None:
        """Last success + period; a failure or cancel since pushes it back; a first backup
        is due at once, a first verify a period after the first backup."""
        db = self.service.db
        where = "kind = ? AND json_extract(params, '$.target') = ?"
        ok = await db.scalar(
            f"SELECT max(COALESCE(started_at, created_at)) FROM jobs WHERE {where} "
            "AND state = 'done'",
            (kind, target),
        )
        if ok is not None:
            due = _parse(ok) + period
        elif kind == "verify":
            first = await db.scalar(
                "SELECT min(COALESCE(started_at, created_at)) FROM jobs WHERE kind = 'backup' "
                "AND state = 'done' AND json_extract(params, '$.target') = ?",
                (target,),
            )
            if first is None:
                return None
            due = _parse(first) + period
        else:
            due = None
        failed = await db.scalar(
            f"SELECT max(finished_at) FROM jobs WHERE {where} "
            "AND state IN ('failed', 'cancelled') AND finished_at IS NOT NULL",
            (kind, target),
        )
        if failed is not None and (ok is None or _parse(failed) > _parse(ok)):
            retry = _parse(failed) + min(period, RETRY_AFTER_FAILURE)
            due = retry if due is None else max(due, retry)
        return now if due is None else due

    def _skip(
        self, kind: Kind, target: TargetConfig, reason: str, message: str,
        *, until: datetime | None = None,
    ) -> None:  # fmt: skip
        """Tells the user once per reason, not at every look."""
        if self._told.get(kind) == reason:
            return
        self._told[kind] = reason
        log.info("scheduled %s of %s waits: %s", kind, target.name, message)
        self.service.bus.publish(SKIPPED, {
            "kind": kind, "target": target.name, "reason": reason, "message": message,
            "until": None if until is None else until.isoformat(),
        })  # fmt: skip


def _parse(stamp: object) -> datetime:
    return datetime.fromisoformat(str(stamp))
