"""What happened during one interval: per op×tier a histogram, bytes and errors.

Windows merge by adding, so one shape serves the second, the minute and the hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.metrics.histogram import Histogram

OpKey = tuple[str, str]
"""(op, tier)"""


@dataclass(slots=True)
class OpWindow:
    hist: Histogram = field(default_factory=Histogram)
    bytes: int = 0
    errors: int = 0

    def add(self, seconds: float, nbytes: int, ok: bool) -> None:
        self.hist.observe(seconds)
        self.bytes += nbytes
        if not ok:
            self.errors += 1

    def merge(self, other: OpWindow) -> OpWindow:
        self.hist.merge(other.hist)
        self.bytes += other.bytes
        self.errors += other.errors
        return self


@dataclass(slots=True)
class Window:
    ops: dict[OpKey, OpWindow] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.ops or self.hits or self.misses)

    def op(self, key: OpKey) -> OpWindow:
        found = self.ops.get(key)
        if found is None:
            found = self.ops[key] = OpWindow()
        return found

    def merge(self, other: Window) -> Window:
        for key, part in other.ops.items():
            self.op(key).merge(part)
        for layer, n in other.hits.items():
            self.hits[layer] = self.hits.get(layer, 0) + n
        for layer, n in other.misses.items():
            self.misses[layer] = self.misses.get(layer, 0) + n
        return self
