"""Latency histogram with fixed, log-spaced buckets.

Fixed buckets make two histograms mergeable by adding counts (one per second
into one per minute into one per hour, or the windows of several ops), and a
quantile costs one pass over ~110 integers instead of keeping every sample.
Log spacing keeps the relative error the same from 50 µs to 100 s: sixteen
buckets a decade put any quantile within about 8 % of the true value, which
is as close as a latency graph can show anyway. The exact min and max are
kept too, so a quantile never lands outside what was really seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

LOW = 50e-6
"""Lower edge of the first regular bucket (seconds); faster ops share one bucket."""
HIGH = 100.0
"""Upper edge of the last regular bucket; slower ops share one overflow bucket."""
PER_DECADE = 16
_LOG_STEP = math.log(10.0) / PER_DECADE
REGULAR = math.ceil(math.log(HIGH / LOW) / _LOG_STEP)
SIZE = REGULAR + 2
"""Index 0 is below LOW, 1..REGULAR the log-spaced buckets, the last one at or above HIGH."""


def bucket_of(seconds: float) -> int:
    if seconds < LOW:
        return 0
    index = int(math.log(seconds / LOW) / _LOG_STEP) + 1
    return min(index, SIZE - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """[lower, upper) of a bucket in seconds; the outer two are open-ended."""
    if index <= 0:
        return 0.0, LOW
    if index >= SIZE - 1:
        return HIGH, math.inf
    return LOW * math.exp((index - 1) * _LOG_STEP), LOW * math.exp(index * _LOG_STEP)


class Histogram:
    __slots__ = ("count", "counts", "max", "min", "sum")

    def __init__(self) -> None:
        self.counts = [0] * SIZE
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.counts[bucket_of(seconds)] += 1
        self.count += 1
        self.sum += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> Histogram:
        """Adds `other` into this one; returns self."""
        if other.count:
            counts = self.counts
            for i, n in enumerate(other.counts):
                if n:
                    counts[i] += n
            self.count += other.count
            self.sum += other.sum
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        return self

    def copy(self) -> Histogram:
        return Histogram().merge(self)

    @classmethod
    def merged(cls, parts: Iterable[Histogram]) -> Histogram:
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction `q` of observations fall (None when empty).

        Interpolated geometrically inside the bucket holding the rank, since the
        buckets are log-spaced, then clamped to the observed min and max."""
        if not self.count:
            return None
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be within [0, 1]")
        if q == 0.0:
            return self.min
        if q == 1.0:
            return self.max
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self.counts):
            if not n:
                continue
            if seen + n >= rank:
                lower, upper = bucket_bounds(index)
                lower, upper = max(lower, self.min), min(upper, self.max)
                if upper <= lower or lower <= 0.0:
                    value = upper if lower <= 0.0 else lower
                else:
                    value = lower * (upper / lower) ** ((rank - seen) / n)
                return min(max(value, self.min), self.max)
            seen += n
        return self.max

    # sparse form, for storing minute points so hours can be rolled up exactly ---------
    def to_sparse(self) -> dict[str, float | dict[str, int]]:
        return {
            "sum": self.sum,
            "min": self.min if self.count else 0.0,
            "max": self.max,
            "b": {str(i): n for i, n in enumerate(self.counts) if n},
        }

    @classmethod
    def from_sparse(cls, data: dict[str, object]) -> Histogram:
        out = cls()
        buckets = data.get("b")
        if isinstance(buckets, dict):
            for key, n in buckets.items():
                index = int(key)
                if 0 <= index < SIZE and isinstance(n, int) and n > 0:
                    out.counts[index] += n
                    out.count += n
        if out.count:
            out.sum = float(_number(data.get("sum")))
            out.min = float(_number(data.get("min")))
            out.max = float(_number(data.get("max")))
        return out


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
