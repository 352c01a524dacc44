"""Metrics over time: seconds in memory, minutes and hours in the DB, and the live stream.

Graphs must survive a restart, but a row per operation would grow the DB with
every backup. So the registry's windows are folded: each second into the 1 s
series in memory (ten minutes), each minute into one row per op×tier in the
`metrics` table, each hour into one row derived from that hour's minute rows.
Minute rows keep their histogram (sparse JSON), so the hour's percentiles are
computed from the merged buckets rather than by averaging percentiles. Minute
rows older than a week are dropped once rolled up; hourly ones stay (a few
dozen bytes per op and hour of activity). Idle minutes write nothing.

The same loop publishes the `metrics` event four times a second, but only while
a subscriber asked for that topic by name; otherwise it wakes once a second to
fold, which costs next to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import orjson

from core.events import EventBus
from core.local.db.database import Database, Row
from core.metrics.histogram import Histogram
from core.metrics.models import MetricsSnapshot, Resolution, SeriesPoint
from core.metrics.registry import Metrics, series_point
from core.metrics.window import OpKey, Window

log = logging.getLogger(__name__)

TOPIC = "metrics"
PUBLISH_INTERVAL = 0.25
STEP_INTERVAL = 1.0
MINUTES_KEPT = timedelta(days=7)

_INSERT = """INSERT INTO metrics(ts, resolution, op, tier, count, p50, p95, p99, bytes, errors,
  sum, hist) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"""


def iso(ts: float) -> str:
    """The `ts` column's form: UTC, whole seconds, so text order is time order."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricsRecorder:
    def __init__(self, db: Database, metrics: Metrics, bus: EventBus) -> None:
        self.db = db
        self.metrics = metrics
        self.bus = bus
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._minute: int | None = None
        self._acc = Window()
        self._rolled_up = False

    # lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        """Writes the minute in progress, so a restart loses no point."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await self.step(final=True)
        except Exception:
            log.exception("could not save the last minute of metrics")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_step = loop.time() + STEP_INTERVAL
        next_queue = 0.0
        while True:
            listening = self.bus.listening(TOPIC)
            if listening:
                try:
                    if loop.time() >= next_queue:
                        next_queue = loop.time() + STEP_INTERVAL
                        await self.refresh_queue()
                    self.bus.publish(TOPIC, self.metrics.snapshot().model_dump(mode="json"))
                except Exception:
                    log.exception("could not publish metrics")
            pause = next_step - loop.time()
            if listening:
                pause = min(pause, PUBLISH_INTERVAL)
            await asyncio.sleep(max(pause, 0.0))
            if loop.time() >= next_step:
                next_step += STEP_INTERVAL
                if next_step < loop.time():  # the machine slept, or the loop was blocked
                    next_step = loop.time() + STEP_INTERVAL
                try:
                    await self.step()
                except Exception:
                    log.exception("could not fold metrics")

    # folding --------------------------------------------------------------------------
    async def step(self, *, final: bool = False) -> None:
        """One second's work: fold the registry's window (what happened since the last
        step counts in the minute of this one); at a new minute write the last one; at a
        new hour roll up and prune. `final` writes the minute in progress too."""
        async with self._lock:
            with self.metrics.unmetered():
                await self._step(final)

    async def _step(self, final: bool) -> None:
        now = self.metrics.clock()
        window = self.metrics.tick(now)
        minute = math.floor(now / 60)
        if self._minute is None:
            self._minute = minute
        if minute != self._minute:
            # Reset only once written: a write cancelled by `stop` is redone by its
            # final step instead of lost.
            await self._write_minute(self._minute * 60, self._acc)
            self._acc = Window()
            if minute // 60 != self._minute // 60:
                self._rolled_up = False
            self._minute = minute
        self._acc.merge(window)
        if final:
            await self._write_minute(self._minute * 60, self._acc)
            self._acc = Window()
        elif not self._rolled_up:
            await self._roll_up(now)
            self._rolled_up = True

    async def _write_minute(self, start: float, acc: Window) -> None:
        if not acc.ops:
            return
        ts = iso(start)
        rows = [_row(ts, "1m", key, part.hist, part.bytes, part.errors)
                for key, part in sorted(acc.ops.items())]  # fmt: skip
        async with self.db.transaction() as tx:
            await tx.executemany(_INSERT, rows)

    async def _roll_up(self, now: float) -> None:
        """Hours that ended and have minute rows but no hourly row yet, then the prune.

        Runs at each new hour and at start, so hours that ended while the service
        was down are rolled up from the minutes it saved before going down."""
        this_hour = iso(math.floor(now / 3600) * 3600)
        async with self.db.transaction() as tx:
            last = await tx.fetchone("SELECT max(ts) FROM metrics WHERE resolution = '1h'")
            after = "" if last is None or last[0] is None else _next_hour(str(last[0]))
            rows = await tx.fetchall(
                "SELECT ts, op, tier, bytes, errors, hist FROM metrics WHERE resolution = '1m' "
                "AND ts >= ? AND ts < ? ORDER BY ts",
                (after, this_hour),
            )
            hours: dict[tuple[str, str, str], tuple[Histogram, int, int]] = {}
            for row in rows:
                key = (_hour_of(str(row["ts"])), str(row["op"]), str(row["tier"]))
                hist, nbytes, errors = hours.get(key) or (Histogram(), 0, 0)
                hist.merge(_hist_of(row))
                hours[key] = (hist, nbytes + int(row["bytes"]), errors + int(row["errors"]))
            await tx.executemany(
                _INSERT,
                [_row(hour, "1h", (op, tier), hist, nbytes, errors)
                 for (hour, op, tier), (hist, nbytes, errors) in sorted(hours.items())],
            )  # fmt: skip
            await tx.execute(
                "DELETE FROM metrics WHERE resolution = '1m' AND ts < ?",
                (iso(now - MINUTES_KEPT.total_seconds()),),
            )

    # reading ----------------------------------------------------------------------------
    async def refresh_queue(self) -> None:
        with self.metrics.unmetered():
            rows = await self.db.fetchall(
                "SELECT state, count(*) FROM jobs WHERE state IN ('queued', 'running', "
                "'waiting') GROUP BY state"
            )
        counts = {str(r[0]): int(r[1]) for r in rows}
        self.metrics.set_queue(queued=counts.get("queued", 0), running=counts.get("running", 0),
                               waiting=counts.get("waiting", 0))  # fmt: skip

    async def live(self) -> MetricsSnapshot:
        """A snapshot with the job queue counted now (for a one-off read or a scrape)."""
        await self.refresh_queue()
        return self.metrics.snapshot()

    async def series(
        self, op: str, tier: str, since: datetime, resolution: Resolution = "1m"
    ) -> list[SeriesPoint]:
        """Points from `since` on, oldest first: seconds from memory (the last ten
        minutes), minutes (the last week) and hours from the DB. The hour in
        progress is rolled up from its minutes on the fly."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if resolution == "1s":
            return self.metrics.seconds(op, tier, since.timestamp())
        start = iso(since.timestamp())
        rows = await self.db.fetchall(
            "SELECT ts, bytes, errors, hist FROM metrics WHERE op = ? AND tier = ? "
            "AND resolution = ? AND ts >= ? ORDER BY ts",
            (op, tier, resolution, start),
        )
        points = _points(rows, _identity)
        if resolution == "1h":
            last = points[-1].ts.timestamp() + 3600 if points else since.timestamp()
            recent = await self.db.fetchall(
                "SELECT ts, bytes, errors, hist FROM metrics WHERE op = ? AND tier = ? "
                "AND resolution = '1m' AND ts >= ? ORDER BY ts",
                (op, tier, iso(max(last, math.floor(since.timestamp() / 3600) * 3600))),
            )
            points += _points(recent, _hour_of)
        return points


def _row(
    ts: str, resolution: str, key: OpKey, hist: Histogram, nbytes: int, errors: int
) -> tuple[object, ...]:
    return (ts, resolution, key[0], key[1], hist.count, hist.quantile(0.5), hist.quantile(0.95),
            hist.quantile(0.99), nbytes, errors, hist.sum,
            orjson.dumps(hist.to_sparse()).decode())  # fmt: skip


def _hist_of(row: Row) -> Histogram:
    try:
        data = orjson.loads(row["hist"] or "{}")
    except orjson.JSONDecodeError:
        return Histogram()
    return Histogram.from_sparse(data) if isinstance(data, dict) else Histogram()


def _points(rows: Iterable[Row], bucket: Callable[[str], str]) -> list[SeriesPoint]:
    """Rows merged per `bucket(ts)`: the same minute written twice (a restart within
    it), or minutes into their hour."""
    merged: dict[str, tuple[Histogram, int, int]] = {}
    for row in rows:
        key = bucket(str(row["ts"]))
        hist, nbytes, errors = merged.get(key) or (Histogram(), 0, 0)
        merged[key] = (hist.merge(_hist_of(row)), nbytes + int(row["bytes"]),
                       errors + int(row["errors"]))  # fmt: skip
    return [series_point(datetime.fromisoformat(ts), hist, nbytes, errors)
            for ts, (hist, nbytes, errors) in sorted(merged.items())]  # fmt: skip


def _identity(ts: str) -> str:
    return ts


def _hour_of(ts: str) -> str:
    return ts[:13] + ":00:00Z"


def _next_hour(ts: str) -> str:
    return iso(datetime.fromisoformat(ts).timestamp() + 3600)
