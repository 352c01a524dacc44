"""How long a cached listing or object may be trusted before asking the remote again.

A fixed TTL is wrong both ways: a key read every few seconds pays a round trip
every TTL for nothing when it never changes, and a key that changes often is
served stale for the whole TTL. So each key's TTL is `base`, stretched by how
often the key is read (reads decay with a half-life, so yesterday's burst does
not count forever) and doubled by each refresh that found it unchanged, halved
twice by a refresh that found it changed (or by a write we made ourselves) —
then clamped to [min, max].

The per-key record is small and bounded (least recently used keys are
forgotten first, and a forgotten key simply starts again at `base`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.cache.lru import Lru

MAX_LEVEL = 8
MIN_LEVEL = -4


@dataclass(slots=True)
class _Stats:
    reads: float = 0.0
    at: float = 0.0
    level: int = 0


class AdaptiveTtl:
    def __init__(
        self,
        *,
        min_s: float = 2.0,
        base_s: float = 30.0,
        max_s: float = 3600.0,
        half_life_s: float = 600.0,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_s <= base_s <= max_s:
            raise ValueError("need 0 < min_s <= base_s <= max_s")
        self.min_s = min_s
        self.base_s = base_s
        self.max_s = max_s
        self.half_life_s = half_life_s
        self.clock = clock
        self._keys: Lru[str, _Stats] = Lru(max_entries=max_keys, max_weight=max_keys)

    def _stats(self, key: str) -> _Stats:
        stats = self._keys.get(key)
        if stats is None:
            stats = _Stats(at=self.clock())
            self._keys.put(key, stats)
        return stats

    def _decayed(self, stats: _Stats, now: float) -> float:
        return float(stats.reads * 0.5 ** (max(0.0, now - stats.at) / self.half_life_s))

    def read(self, key: str) -> None:
        """One more read of `key` (hit or miss alike)."""
        now = self.clock()
        stats = self._stats(key)
        stats.reads = self._decayed(stats, now) + 1.0
        stats.at = now

    def refreshed(self, key: str, *, changed: bool) -> float:
        """The remote was asked again; returns the key's new TTL."""
        stats = self._stats(key)
        if changed:
            stats.level = max(MIN_LEVEL, min(stats.level, 0) - 2)
        else:
            stats.level = min(MAX_LEVEL, stats.level + 1)
        return self.ttl(key)

    def wrote(self, key: str) -> None:
        """We changed `key` ourselves: it is a key that changes."""
        self.refreshed(key, changed=True)

    def ttl(self, key: str) -> float:
        stats = self._keys.peek(key) or _Stats(at=self.clock())
        frequency = 1.0 + math.log2(1.0 + self._decayed(stats, self.clock()))
        return min(self.max_s, max(self.min_s, self.base_s * frequency * 2.0**stats.level))
