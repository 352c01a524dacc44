"""The numbers behind the Performance graphs, kept apart from Qt.

A graph covers one operation on one tier over a time range. Its history comes
from the stored series (one point per second, minute or hour); while the live
range is shown, each `metrics` event adds the newest second. Both land in one
bucket per step, keyed by the bucket's start, so a second that is both in the
history and in the stream is drawn once. Plain lists of floats come out, with
NaN where nothing was measured, which is what pyqtgraph draws as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.client import OpMetrics, QueueMetrics, Resolution, SeriesPoint

OpKey = tuple[str, str]
"""(operation, tier), e.g. ("put", "folder") or ("db.read", "local")."""

STORE_OPS = ("put", "get", "stat", "list", "delete")
"""A store's calls, in the order a person looks for them (uploads first)."""
LOCAL_TIER = "local"
NAN = math.nan


@dataclass(frozen=True, slots=True)
class TimeRange:
    key: str
    label: str
    resolution: Resolution
    span_s: int
    step_s: int
    live: bool
    """Whether the live stream adds points (only the 1 s series can take them as they are)."""

    def start(self, now: float) -> float:
        return now - self.span_s

    def bucket(self, ts: float) -> int:
        return int(ts // self.step_s * self.step_s)


RANGES = (
    TimeRange("5m", "Live · last 5 min", "1s", 300, 1, live=True),
    TimeRange("24h", "Last 24 h", "1m", 86_400, 60, live=False),
    TimeRange("30d", "Last 30 days", "1h", 30 * 86_400, 3_600, live=False),
)
MIN_BUCKETS = 30
"""Sparse data is not squeezed against the right edge: at least this many steps show."""


def range_by_key(key: str) -> TimeRange:
    return next(r for r in RANGES if r.key == key)


def op_label(key: OpKey) -> str:
    return f"{key[0]} · {key[1]}"


def order_ops(keys: Iterable[OpKey]) -> list[OpKey]:
    """The targets' calls first (what a person opens this page for), the database's after."""

    def rank(key: OpKey) -> tuple[int, str, int, str]:
        op, tier = key
        known = STORE_OPS.index(op) if op in STORE_OPS else len(STORE_OPS)
        return (int(tier == LOCAL_TIER), tier, known, op)

    return sorted(set(keys), key=rank)


def x_window(rng: TimeRange, now: float, first: float | None) -> tuple[float, float]:
    """The visible time span: the range, narrowed to start at the first point when
    that is recent (but never narrower than MIN_BUCKETS steps)."""
    start = rng.start(now)
    if first is not None:
        start = max(start, min(first - rng.step_s, now - MIN_BUCKETS * rng.step_s))
    return start, now + rng.step_s


@dataclass(slots=True)
class Sample:
    p50: float | None
    p95: float | None
    p99: float | None
    bytes_per_s: float
    live: bool = False


@dataclass(frozen=True, slots=True)
class Columns:
    ts: list[float]
    p50: list[float]
    p95: list[float]
    p99: list[float]
    bytes_per_s: list[float]

    def __len__(self) -> int:
        return len(self.ts)


def _nan(value: float | None) -> float:
    return NAN if value is None else value


class Trace:
    """One operation's latency and throughput over one range, a bucket per step."""

    def __init__(self, rng: TimeRange, key: OpKey | None) -> None:
        self.range = rng
        self.key = key
        self._samples: dict[int, Sample] = {}

    def load(self, points: Sequence[SeriesPoint]) -> None:
        """Replaces what is held with stored history (live points are newer, kept)."""
        step = self.range.step_s
        newest = max((p.ts.timestamp() for p in points), default=-math.inf)
        live = {k: s for k, s in self._samples.items() if self.range.live and k > newest}
        self._samples = {
            self.range.bucket(p.ts.timestamp()): Sample(p.p50, p.p95, p.p99, p.bytes / step)
            for p in points
            if p.count
        } | live

    def add_live(self, ts: float, op: OpMetrics | None, before: OpMetrics | None) -> bool:
        """A point for the second of snapshot `op` when calls ended since the snapshot
        before it (`before`: the operation there, None if it had no calls yet): their
        bytes, exact from the totals, and the recent window's percentiles. A second
        without calls gets no point, though the window still remembers some.
        True when a point was added or grown."""
        count, nbytes = (before.count, before.bytes) if before is not None else (0, 0)
        if not self.range.live or op is None or op.count <= count:
            return False
        bucket = self.range.bucket(ts)
        moved = max(0, op.bytes - nbytes) / self.range.step_s
        old = self._samples.get(bucket)
        rate = moved + (old.bytes_per_s if old is not None and old.live else 0.0)
        self._samples[bucket] = Sample(op.p50, op.p95, op.p99, rate, live=True)
        return True

    def trim(self, now: float) -> None:
        oldest = self.range.start(now)
        for key in [k for k in self._samples if k < oldest]:
            del self._samples[key]

    def columns(self) -> Columns:
        keys = sorted(self._samples)
        rows = [self._samples[k] for k in keys]
        return Columns(
            ts=[float(k) for k in keys],
            p50=[_nan(s.p50) for s in rows],
            p95=[_nan(s.p95) for s in rows],
            p99=[_nan(s.p99) for s in rows],
            bytes_per_s=[s.bytes_per_s for s in rows],
        )

    def __len__(self) -> int:
        return len(self._samples)


QUEUE_KEPT_S = 86_400


class QueueTrace:
    """Queue depth is not stored: it is drawn from what the stream said while the page
    was open, one point per second."""

    def __init__(self) -> None:
        self._depth: dict[int, tuple[int, int]] = {}

    def add(self, ts: float, queue: QueueMetrics) -> None:
        self._depth[int(ts)] = (queue.running, queue.queued + queue.waiting)
        if len(self._depth) > QUEUE_KEPT_S:
            for key in sorted(self._depth)[: len(self._depth) - QUEUE_KEPT_S]:
                del self._depth[key]

    def columns(self, since: float) -> tuple[list[float], list[float], list[float]]:
        """(times, running, waiting to run) from `since` on, as steps: a count holds
        until the next one (a job does not half-start)."""
        keys = sorted(k for k in self._depth if k >= since)
        xs: list[float] = []
        running: list[float] = []
        waiting: list[float] = []
        for i, key in enumerate(keys):
            if i:
                xs.append(float(key))
                running.append(running[-1])
                waiting.append(waiting[-1])
            xs.append(float(key))
            running.append(float(self._depth[key][0]))
            waiting.append(float(self._depth[key][1]))
        return xs, running, waiting

    def __len__(self) -> int:
        return len(self._depth)


def human_latency(seconds: float | None) -> str:
    """Latency with a unit a person reads at once: "85 µs", "1.8 ms", "2.4 s"."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        ms = seconds * 1e3
        return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
    return f"{seconds:.1f} s"


def percent(share: float | None) -> str:
    if share is None or math.isnan(share):
        return "—"
    return f"{share * 100:.0f} %" if share < 0.995 or share == 1 else "99 %"
