"""The state every `CachingStore` shares: memory and disk layers, stats and listings.

One instance per service, not per store: stores are opened per job and closed
after it, while what they read should outlive them; and the memory budget is
the process's, not a target's. Keys carry a namespace per target, so two
targets never see each other's objects.

Layers as the metrics registry names them: `memory` and `disk` (object
contents), `listing` (stat and list answers). Each counts hits, misses,
evictions and the bytes it holds.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from pathlib import Path

from core.cache.disk import Digests, DiskCache
from core.cache.lru import Lru
from core.cache.ttl import AdaptiveTtl
from core.metrics.registry import Metrics
from core.remote.base import ObjectInfo

MEMORY = "memory"
DISK = "disk"
LISTING = "listing"

LIST_TTL = "L"
"""Prefix of a listing's key in the TTL table, apart from object keys."""

ENTRY_OVERHEAD = 200
"""Rough bytes of bookkeeping per cached entry, so tiny entries are not free."""


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    data: bytes
    digests: Digests


@dataclass(frozen=True, slots=True)
class Fresh:
    """An answer from the remote and until when it is trusted."""

    value: ObjectInfo | tuple[ObjectInfo, ...]
    until: float


class ObjectCache:
    def __init__(
        self,
        *,
        memory_bytes: int = 64 << 20,
        disk_dir: Path | None = None,
        disk_bytes: int = 512 << 20,
        metrics: Metrics | None = None,
        ttl: AdaptiveTtl | None = None,
        max_listings: int = 1024,
    ) -> None:
        """No `disk_dir` (or `disk_bytes` 0) keeps objects in memory only."""
        self.metrics = metrics or Metrics()
        self.ttl = ttl or AdaptiveTtl()
        self.memory: Lru[str, MemoryEntry] = Lru(
            max_entries=max(1, memory_bytes // 1024) if memory_bytes else 0,
            max_weight=memory_bytes,
            weigh=lambda e: len(e.data) + ENTRY_OVERHEAD,
            on_evict=lambda _k, _v: self.metrics.evicted(MEMORY),
        )
        self.memory_entry_max = memory_bytes // 8
        """The largest object memory takes: a few big files must not crowd out many small."""
        self.disk = (
            DiskCache(disk_dir, disk_bytes, on_evict=lambda _n: self.metrics.evicted(DISK))
            if disk_dir is not None and disk_bytes > 0
            else None
        )
        self._disk_loaded = False
        self.stats: Lru[str, Fresh] = Lru(
            max_entries=max_listings * 16,
            max_weight=max_listings * 16,
            on_evict=lambda _k, _v: self.metrics.evicted(LISTING),
        )
        self.listings: Lru[str, Fresh] = Lru(
            max_entries=max_listings,
            max_weight=max_listings * 256,
            weigh=lambda f: 1 + len(f.value) if isinstance(f.value, tuple) else 1,
            on_evict=lambda _k, _v: self.metrics.evicted(LISTING),
        )
        self.validated: Lru[str, float] = Lru(max_entries=100_000, max_weight=100_000)
        """Object contents checked against the remote, and until when that holds."""
        self._fill_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.seq = 0
        self._forgotten = 0
        self._invalidated: Lru[str, int] = Lru(
            max_entries=10_000, max_weight=10_000, on_evict=self._forget_invalidation
        )

    # layers ----------------------------------------------------------------------------
    async def disk_ready(self) -> DiskCache | None:
        """The disk layer with its index loaded (the first call scans the folder)."""
        if self.disk is not None and not self._disk_loaded:
            await asyncio.to_thread(self.disk.load)
            self._disk_loaded = True
            self.report_sizes()
        return self.disk

    def count(self, layer: str, hit: bool) -> None:
        if hit:
            self.metrics.hit(layer)
        else:
            self.metrics.miss(layer)

    def report_sizes(self) -> None:
        self.metrics.cache_bytes(MEMORY, self.memory.weight)
        if self.disk is not None:
            self.metrics.cache_bytes(DISK, self.disk.size)

    def remember(self, key: str, data: bytes, digests: Digests) -> None:
        if len(data) <= self.memory_entry_max:
            self.memory.put(key, MemoryEntry(data, digests))
            self.report_sizes()

    def fill_lock(self, key: str) -> asyncio.Lock:
        """One download per object at a time: concurrent readers wait for the first."""
        lock = self._fill_locks.get(key)
        if lock is None:
            lock = self._fill_locks[key] = asyncio.Lock()
        return lock

    # freshness -------------------------------------------------------------------------
    def is_fresh(self, key: str) -> bool:
        until = self.validated.peek(key)
        return until is not None and until > self.ttl.clock()

    def mark_valid(self, key: str, ttl_s: float) -> None:
        self.validated.put(key, self.ttl.clock() + ttl_s)

    def fresh(self, lru: Lru[str, Fresh], key: str) -> Fresh | None:
        entry = lru.get(key)
        return entry if entry is not None and entry.until > self.ttl.clock() else None

    # invalidation ----------------------------------------------------------------------
    def forget_object(self, key: str) -> None:
        """The object's contents and what we knew of it; not the listings around it."""
        self.memory.pop(key)
        if self.disk is not None:
            self.disk.drop(key)
        self.stats.pop(key)
        self.validated.pop(key)
        self.report_sizes()

    def invalidate(self, namespace: str, key: str) -> None:
        """Someone wrote `key` through a store: nothing cached may answer for it again."""
        full = f"{namespace}\x00{key}"
        self.forget_object(full)
        self.ttl.wrote(full)
        self.seq += 1
        self._invalidated.put(full, self.seq)
        for listing in [k for k in self.listings if k.startswith(f"{namespace}\x00")]:
            if key.startswith(listing.split("\x00", 1)[1]):
                self.listings.pop(listing)
                self.ttl.wrote(LIST_TTL + listing)

    def may_keep(self, key: str, since: int) -> bool:
        """A download that started at `seq == since` may be cached: no write since."""
        written = self._invalidated.peek(key)
        return self._forgotten <= since and (written is None or written <= since)

    def _forget_invalidation(self, _key: str, seq: int) -> None:
        self._forgotten = max(self._forgotten, seq)


def same_content(digests: Digests, info: ObjectInfo) -> bool:
    """Whether the remote still holds the bytes we kept; unknown digests count as changed."""
    if info.size != digests.size:
        return False
    if info.sha256:
        return info.sha256 == digests.sha256
    if info.md5:
        return info.md5 == digests.md5
    return False
