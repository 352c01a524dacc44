"""Rate and ETA for a running job.

A sliding window over recent samples rather than "done / elapsed since start":
a resumed job starts its window afresh (so bytes done before a crash do not
inflate the rate), and a stall shows up as a falling rate that reaches zero
once the window holds no progress at all — at which point the ETA becomes
unknown instead of a confident lie. Times are passed in, so the class is pure.
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW = 10.0
MIN_SPAN = 0.25


class RateEstimator:
    """Units per second over the last `window` seconds of one counter."""

    def __init__(self, *, window: float = DEFAULT_WINDOW, min_span: float = MIN_SPAN) -> None:
        if window <= 0 or min_span < 0:
            raise ValueError("window must be positive and min_span not negative")
        self._window = window
        self._min_span = min_span
        # Samples closer together than this are merged, so a job reporting a
        # million times a second keeps about fifty samples, not millions.
        self._resolution = window / 50
        self._samples: deque[tuple[float, float]] = deque()

    @property
    def done(self) -> float | None:
        return self._samples[-1][1] if self._samples else None

    def reset(self) -> None:
        self._samples.clear()

    def update(self, done: float, now: float) -> None:
        samples = self._samples
        if samples and done < samples[-1][1]:
            samples.clear()  # the counter went backwards: a new pass, a new window
        if len(samples) >= 2 and now - samples[-2][0] < self._resolution:
            samples[-1] = (now, done)
        else:
            samples.append((now, done))
        cutoff = now - self._window
        while len(samples) >= 2 and samples[1][0] <= cutoff:
            samples.popleft()

    def rate(self, now: float) -> float | None:
        """None until the window spans `min_span` seconds; 0.0 through a long stall."""
        samples = self._samples
        if not samples:
            return None
        cutoff = now - self._window
        anchor = samples[0]
        for sample in samples:
            if sample[0] > cutoff:
                break
            anchor = sample
        span = now - anchor[0]
        if span < self._min_span:
            return None
        return max(samples[-1][1] - anchor[1], 0.0) / span

    def eta(self, total: float | None, now: float) -> float | None:
        """Seconds left at the current rate; None when the total or the rate is unknown."""
        done = self.done
        if total is None or done is None:
            return None
        if done >= total:
            return 0.0
        rate = self.rate(now)
        if not rate:
            return None
        return (total - done) / rate


class JobMeter:
    """Both counters of a job, and the rule for which one the user sees.

    Bytes are the better measure when their total is known (a 2 GB file and a
    2 KB file are not the same "item"); otherwise items, otherwise whichever
    counter has moved, with no ETA.
    """

    def __init__(self, *, window: float = DEFAULT_WINDOW, min_span: float = MIN_SPAN) -> None:
        self.items = RateEstimator(window=window, min_span=min_span)
        self.bytes = RateEstimator(window=window, min_span=min_span)

    def update(self, *, items_done: int, bytes_done: int, now: float) -> None:
        self.items.update(items_done, now)
        self.bytes.update(bytes_done, now)

    def rate_eta(
        self, *, items_total: int | None, bytes_total: int | None, now: float
    ) -> tuple[float | None, float | None]:
        if bytes_total is not None:
            return self.bytes.rate(now), self.bytes.eta(bytes_total, now)
        if items_total is not None:
            return self.items.rate(now), self.items.eta(items_total, now)
        if self.bytes.done:
            return self.bytes.rate(now), None
        if self.items.done:
            return self.items.rate(now), None
        return None, None
