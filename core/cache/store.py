"""`CachingStore`: reads through memory, then the disk cache, then the wrapped store.

It sits outside the retry and metering wrappers, so a hit costs no remote call
and the metered numbers stay what the remote really did. Objects here are not
content-addressed (a session's manifest is rewritten in place on the next
backup), so a cached object is served only while it is *validated*: checked
against a `stat` of the remote (digests and size) within its adaptive TTL.
A stat is one small round trip, a download may be megabytes. Puts and deletes
through the wrapper drop the key, any listing that would contain it, and
lower the key's TTL; a download racing a write is not kept.

When the remote cannot be reached to check, a cached copy is served anyway
(stale-if-error): it is a version the remote really held, and restores check
files against their manifest regardless.

`read_through=False` is for verification: reads go to the remote (a verify
that reads our copy proves nothing), but what it learns still drops cached
objects the remote no longer matches, and writes still invalidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, cast

from core.cache.disk import CorruptEntry, Digests, digest_file
from core.cache.objects import (
    DISK,
    LIST_TTL,
    LISTING,
    MEMORY,
    Fresh,
    ObjectCache,
    same_content,
)
from core.cache.tee import TeeWriter
from core.remote.base import (
    ObjectInfo,
    ObjectNotFound,
    ProgressFn,
    PutSource,
    ResumeSlot,
    Store,
    TransientError,
)

log = logging.getLogger(__name__)

BIG_WRITE = 1 << 20
"""Copies from memory larger than this go to a worker thread: `dest` may be a slow disk."""


def cache_namespace(*parts: str) -> str:
    """A target's namespace: stable for the same place, different for another one."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class CachingStore:
    def __init__(
        self, inner: Store, cache: ObjectCache, namespace: str, *, read_through: bool = True
    ) -> None:
        self.inner = inner  # capability lookups (thaw_control) walk through `.inner`
        self.name = inner.name
        self.cache = cache
        self.namespace = namespace
        self.read_through = read_through

    def _full(self, key: str) -> str:
        return f"{self.namespace}\x00{key}"

    # reads -------------------------------------------------------------------------------
    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        """A ranged read is served from a cached whole object; a ranged miss is passed on
        uncached (the rest of the object may never be wanted)."""
        if not self.read_through:
            return await self.inner.get(key, dest, offset=offset, length=length, progress=progress)
        full = self._full(key)
        self.cache.ttl.read(full)
        served = await self._serve(key, full, dest, offset, length, progress, count=True)
        if served is not None:
            return served
        if offset or length is not None:
            return await self.inner.get(key, dest, offset=offset, length=length, progress=progress)
        async with self.cache.fill_lock(full):
            served = await self._serve(key, full, dest, 0, None, progress, count=False)
            if served is not None:  # another reader filled it while we waited
                return served
            return await self._fill(key, full, dest, progress)

    async def _serve(
        self,
        key: str,
        full: str,
        dest: BinaryIO,
        offset: int,
        length: int | None,
        progress: ProgressFn | None,
        *,
        count: bool,
    ) -> int | None:
        """Bytes written from a validated cached copy, or None when there is none."""
        cache = self.cache
        disk = await cache.disk_ready()
        memory = cache.memory.get(full)
        entry = None if memory is not None or disk is None else disk.lookup(full)
        layer = MEMORY if memory is not None else DISK
        digests = memory.digests if memory is not None else entry.digests if entry else None
        if digests is not None and not await self._validate(key, full, digests):
            memory = entry = None
        n: int | None = None
        if memory is not None:
            n = await _write_slice(memory.data, dest, offset, length)
        elif entry is not None and disk is not None:
            try:
                if entry.digests.size <= cache.memory_entry_max:
                    data = await asyncio.to_thread(disk.read_all, full, entry)
                    cache.remember(full, data, entry.digests)  # promoted: read often, it seems
                    n = await _write_slice(data, dest, offset, length)
                else:
                    n = await asyncio.to_thread(disk.read, full, entry, dest, offset, length)
            except CorruptEntry:
                cache.report_sizes()
                n = None
        if count:
            cache.count(MEMORY, n is not None and layer == MEMORY)
            if disk is not None and not (n is not None and layer == MEMORY):
                cache.count(DISK, n is not None)
        if n is not None and progress is not None and n:
            progress(n)
        return n

    async def _validate(self, key: str, full: str, digests: Digests) -> bool:
        """Whether the cached copy may be served: validated recently, or matching a stat."""
        if self.cache.is_fresh(full):
            return True
        try:
            info = await self.stat(key)
        except ObjectNotFound:
            self.cache.forget_object(full)
            raise
        except TransientError as exc:  # offline: a version we really read beats no answer
            log.info("serving %s from the cache unchecked: %s", key, exc)
            return True
        if not same_content(digests, info):
            self.cache.forget_object(full)
            return False
        self.cache.mark_valid(full, self.cache.ttl.ttl(full))
        return True

    async def _fill(self, key: str, full: str, dest: BinaryIO, progress: ProgressFn | None) -> int:
        """Downloads into `dest` and, alongside, into a cache file (or memory)."""
        cache = self.cache
        since = cache.seq
        disk = cache.disk
        if disk is not None:
            temp, copy = await asyncio.to_thread(disk.new_temp)
            limit = max(disk.max_bytes // 4, cache.memory_entry_max)
        else:
            temp, copy, limit = None, io.BytesIO(), cache.memory_entry_max
        tee = TeeWriter(dest, copy, limit)
        try:
            n = await self.inner.get(key, cast(BinaryIO, tee), progress=progress)
            if tee.kept and limit and cache.may_keep(full, since):
                await self._keep(full, copy, temp)
        finally:
            copy.close()
            if temp is not None:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(temp.unlink, missing_ok=True)
        return n

    async def _keep(self, full: str, copy: BinaryIO, temp: Path | None) -> None:
        cache = self.cache
        digests = await asyncio.to_thread(digest_file, copy)
        known = cache.stats.peek(full)
        if (
            known is not None
            and isinstance(known.value, ObjectInfo)
            and not same_content(digests, known.value)
        ):
            cache.stats.pop(full)  # older than the bytes we just got
        data: bytes | None = None
        if digests.size <= cache.memory_entry_max:
            copy.seek(0)
            data = await asyncio.to_thread(copy.read)
            cache.remember(full, data, digests)
        if cache.disk is not None and temp is not None and cache.disk.fits(digests.size):
            await asyncio.to_thread(cache.disk.admit, full, temp, copy, digests)
        cache.mark_valid(full, cache.ttl.ttl(full))
        cache.report_sizes()

    async def stat(self, key: str) -> ObjectInfo:
        cache = self.cache
        full = self._full(key)
        if self.read_through:
            cache.ttl.read(full)
            found = cache.fresh(cache.stats, full)
            if found is None:
                found = self._from_listing(key)
            cache.count(LISTING, found is not None)
            if found is not None:
                assert isinstance(found.value, ObjectInfo)
                return found.value
        try:
            info = await self.inner.stat(key)
        except ObjectNotFound:
            cache.forget_object(full)
            raise
        self._learned(full, info)
        return info

    def _learned(self, full: str, info: ObjectInfo) -> None:
        """A fresh answer from the remote: re-time the key, drop contents it contradicts."""
        cache = self.cache
        old = cache.stats.peek(full)
        changed = old is not None and old.value != info
        memory = cache.memory.peek(full)
        entry = cache.disk.lookup(full) if cache.disk is not None else None
        kept = memory.digests if memory is not None else entry.digests if entry else None
        if kept is not None and not same_content(kept, info):
            cache.forget_object(full)
            changed = True
        ttl = cache.ttl.refreshed(full, changed=changed)
        cache.stats.put(full, Fresh(info, cache.ttl.clock() + ttl))

    def _from_listing(self, key: str) -> Fresh | None:
        """A fresh listing that covers `key` answers its stat too."""
        cache = self.cache
        head = f"{self.namespace}\x00"
        for name in list(cache.listings):
            if name.startswith(head) and key.startswith(name[len(head) :]):
                listing = cache.fresh(cache.listings, name)
                if listing is None or not isinstance(listing.value, tuple):
                    continue
                for info in listing.value:
                    if info.key == key:
                        return Fresh(info, listing.until)
        return None

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Streams from the remote on a miss and keeps the listing only if read to the end."""
        cache = self.cache
        name = self._full(prefix)
        if self.read_through:
            cache.ttl.read(LIST_TTL + name)
            found = cache.fresh(cache.listings, name)
            cache.count(LISTING, found is not None)
            if found is not None:
                assert isinstance(found.value, tuple)
                for info in found.value:
                    yield info
                return
        since = cache.seq
        items: list[ObjectInfo] = []
        async for info in self.inner.list(prefix):
            items.append(info)
            yield info
        old = cache.listings.peek(name)
        ttl = cache.ttl.refreshed(
            LIST_TTL + name, changed=old is not None and old.value != tuple(items)
        )
        if cache.seq == since:  # no write landed while we listed
            cache.listings.put(name, Fresh(tuple(items), cache.ttl.clock() + ttl))

    # writes ------------------------------------------------------------------------------
    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        try:
            return await self.inner.put(key, source, progress, resume=resume)
        finally:  # even a failed put may have replaced the object
            self.cache.invalidate(self.namespace, key)

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        finally:
            self.cache.invalidate(self.namespace, key)

    async def close(self) -> None:
        await self.inner.close()


async def _write_slice(data: bytes, dest: BinaryIO, offset: int, length: int | None) -> int:
    end = len(data) if length is None else min(len(data), offset + length)
    if offset >= end:
        return 0
    view = memoryview(data)[offset:end]
    if len(view) > BIG_WRITE:
        await asyncio.to_thread(dest.write, view)
    else:
        dest.write(view)
    return len(view)
