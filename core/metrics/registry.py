"""The live numbers: what every store call, DB query, cache lookup and job adds up to.

Recording must cost next to nothing, since it sits on every store call and every
DB query: an observation is a few additions into the current one-second window
plus running totals. The expensive part — percentiles, rates — happens only when
someone asks for a snapshot. Once a second `tick` moves the current window into
a ring of the last ten minutes of seconds, which is both the live graph's data
and what the persister folds into minute points.

Thread-safe (one lock), so a worker thread may record too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from core.metrics.histogram import Histogram
from core.metrics.models import (
    CacheMetrics,
    MetricsSnapshot,
    OpMetrics,
    QueueMetrics,
    RatioMetrics,
    SeriesPoint,
)
from core.metrics.window import OpKey, Window

SECONDS_KEPT = 600
"""The in-memory 1 s series: the last ten minutes."""

_UNMETERED: ContextVar[bool] = ContextVar("unmetered", default=False)


@dataclass(slots=True)
class _Totals:
    count: int = 0
    errors: int = 0
    bytes: int = 0
    sum: float = 0.0


class Metrics:
    def __init__(self, *, clock: Callable[[], float] = time.time, window_s: float = 5.0) -> None:
        """`clock` is wall time in seconds (tests pass a fake one); `window_s` is the span
        that percentiles and rates in a snapshot cover."""
        self.clock = clock
        self.window_s = window_s
        self._lock = threading.Lock()
        self._started = clock()
        self._totals: dict[OpKey, _Totals] = {}
        self._current = Window()
        self._seconds: deque[tuple[int, Window]] = deque(maxlen=SECONDS_KEPT)
        self._hits: dict[str, int] = {}
        self._misses: dict[str, int] = {}
        self._evictions: dict[str, int] = {}
        self._cache_bytes: dict[str, int] = {}
        self._ratios: dict[str, tuple[int, int]] = {}
        self._queue = QueueMetrics()

    # recording ---------------------------------------------------------------------
    def observe(self, op: str, tier: str, seconds: float, nbytes: int = 0, ok: bool = True) -> None:
        key = (op, tier)
        with self._lock:
            totals = self._totals.get(key)
            if totals is None:
                totals = self._totals[key] = _Totals()
            totals.count += 1
            totals.bytes += nbytes
            totals.sum += seconds
            if not ok:
                totals.errors += 1
            self._current.op(key).add(seconds, nbytes, ok)

    def hit(self, layer: str) -> None:
        with self._lock:
            self._hits[layer] = self._hits.get(layer, 0) + 1
            self._current.hits[layer] = self._current.hits.get(layer, 0) + 1

    def miss(self, layer: str) -> None:
        with self._lock:
            self._misses[layer] = self._misses.get(layer, 0) + 1
            self._current.misses[layer] = self._current.misses.get(layer, 0) + 1

    def evicted(self, layer: str, count: int = 1) -> None:
        with self._lock:
            self._evictions[layer] = self._evictions.get(layer, 0) + count

    def cache_bytes(self, layer: str, nbytes: int) -> None:
        """What the layer holds now (a level, not a total)."""
        with self._lock:
            self._cache_bytes[layer] = nbytes

    def ratio(self, kind: str, raw: int, stored: int) -> None:
        """Adds one artifact of `kind` that took `stored` bytes for `raw` bytes of input."""
        with self._lock:
            old_raw, old_stored = self._ratios.get(kind, (0, 0))
            self._ratios[kind] = (old_raw + raw, old_stored + stored)

    def set_queue(self, *, queued: int, running: int, waiting: int) -> None:
        self._queue = QueueMetrics(queued=queued, running=running, waiting=waiting)

    def db_timer(self, kind: str, seconds: float) -> None:
        """The Database's query hook: `kind` is "read" or "tx"."""
        if not _UNMETERED.get():
            self.observe(f"db.{kind}", "local", seconds)

    @staticmethod
    @contextmanager
    def unmetered() -> Iterator[None]:
        """DB queries the current task makes in here are not counted: the metrics' own
        writes would otherwise make every idle minute look busy. Other tasks' queries
        meanwhile still count (a context variable, not a flag)."""
        token = _UNMETERED.set(True)
        try:
            yield
        finally:
            _UNMETERED.reset(token)

    # the 1 s series ------------------------------------------------------------------
    def tick(self, now: float | None = None) -> Window:
        """Closes the current window as the second `now` falls in; returns it."""
        second = int(self.clock() if now is None else now)
        with self._lock:
            window, self._current = self._current, Window()
            if not window.empty:
                if self._seconds and self._seconds[-1][0] >= second:
                    self._seconds[-1][1].merge(window)  # two ticks in one second
                else:
                    self._seconds.append((second, window))
        return window

    def seconds(self, op: str, tier: str, since: float) -> list[SeriesPoint]:
        with self._lock:
            found = [(s, w.ops[(op, tier)]) for s, w in self._seconds
                     if s >= since and (op, tier) in w.ops]  # fmt: skip
            return [series_point(datetime.fromtimestamp(s, UTC), w.hist, w.bytes, w.errors)
                    for s, w in found]  # fmt: skip

    # reading ---------------------------------------------------------------------------
    def snapshot(self) -> MetricsSnapshot:
        now = self.clock()
        span = max(1.0, min(self.window_s, now - self._started))
        with self._lock:
            recent = Window()
            for second, window in reversed(self._seconds):
                if second <= now - span:
                    break
                recent.merge(window)
            recent.merge(self._current)
            ops = [
                _op_metrics(key, totals, recent, span)
                for key, totals in sorted(self._totals.items())
            ]
            cache = [
                _cache_metrics(layer, self._hits.get(layer, 0), self._misses.get(layer, 0),
                               recent, span, self._evictions.get(layer, 0),
                               self._cache_bytes.get(layer, 0))
                for layer in sorted(set(self._hits) | set(self._misses) | set(self._evictions)
                                    | set(self._cache_bytes))
            ]  # fmt: skip
            ratios = [
                RatioMetrics(kind=kind, raw_bytes=raw, stored_bytes=stored,
                             ratio=raw / stored if stored else None)
                for kind, (raw, stored) in sorted(self._ratios.items())
            ]  # fmt: skip
        return MetricsSnapshot(
            ts=datetime.fromtimestamp(now, UTC),
            uptime_s=max(0.0, now - self._started),
            window_s=span,
            ops=ops,
            cache=cache,
            ratios=ratios,
            queue=self._queue,
        )


def _cache_metrics(
    layer: str, hits: int, misses: int, recent: Window, span: float, evictions: int, nbytes: int
) -> CacheMetrics:
    return CacheMetrics(
        layer=layer,
        hits=hits,
        misses=misses,
        hit_rate=hits / (hits + misses) if hits + misses else None,
        lookups_per_s=(recent.hits.get(layer, 0) + recent.misses.get(layer, 0)) / span,
        evictions=evictions,
        bytes=nbytes,
    )


def _op_metrics(key: OpKey, totals: _Totals, recent: Window, span: float) -> OpMetrics:
    part = recent.ops.get(key)
    hist = part.hist if part is not None else Histogram()
    return OpMetrics(
        op=key[0],
        tier=key[1],
        count=totals.count,
        errors=totals.errors,
        bytes=totals.bytes,
        sum_s=totals.sum,
        p50=hist.quantile(0.50),
        p95=hist.quantile(0.95),
        p99=hist.quantile(0.99),
        ops_per_s=hist.count / span,
        bytes_per_s=(part.bytes if part else 0) / span,
        errors_per_s=(part.errors if part else 0) / span,
    )


def series_point(ts: datetime, hist: Histogram, nbytes: int, errors: int) -> SeriesPoint:
    return SeriesPoint(
        ts=ts,
        count=hist.count,
        errors=errors,
        bytes=nbytes,
        mean=hist.mean,
        p50=hist.quantile(0.50),
        p95=hist.quantile(0.95),
        p99=hist.quantile(0.99),
    )
