"""Timing every store call, as a wrapper like the retry one.

It sits inside the retry wrapper, so each attempt is one observation: a put
that failed twice and then worked shows as two errors and one success, which
is what the target really did. A missing object is an answer, not an error
(`reachable` relies on one). A cancelled call is not recorded: it tells
nothing about the store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import BinaryIO, TypeVar

from core.metrics.registry import Metrics
from core.remote.base import ObjectInfo, ObjectNotFound, ProgressFn, PutSource, ResumeSlot, Store

_T = TypeVar("_T")


class MeteredStore:
    def __init__(self, inner: Store, metrics: Metrics, tier: str) -> None:
        self.inner = inner  # capability lookups (thaw_control) walk through `.inner`
        self.name = inner.name
        self.metrics = metrics
        self.tier = tier

    async def _timed(self, op: str, call: Awaitable[_T], nbytes: int = 0) -> _T:
        start = time.perf_counter()
        try:
            result = await call
        except ObjectNotFound:
            self.metrics.observe(op, self.tier, time.perf_counter() - start)
            raise
        except Exception:
            self.metrics.observe(op, self.tier, time.perf_counter() - start, ok=False)
            raise
        moved = result if isinstance(result, int) and op == "get" else nbytes
        self.metrics.observe(op, self.tier, time.perf_counter() - start, moved)
        return result

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        return await self._timed(
            "put", self.inner.put(key, source, progress, resume=resume), source.size
        )

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        return await self._timed(
            "get", self.inner.get(key, dest, offset=offset, length=length, progress=progress)
        )

    async def stat(self, key: str) -> ObjectInfo:
        return await self._timed("stat", self.inner.stat(key))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """One observation for the whole listing, however far the caller reads it."""
        start = time.perf_counter()
        items = self.inner.list(prefix)
        ok: bool | None = True
        try:
            async for info in items:
                yield info
        except (GeneratorExit, ObjectNotFound):
            raise  # the caller stopped reading early, or an answer
        except Exception:
            ok = False
            raise
        except BaseException:
            ok = None  # cancelled: says nothing about the store
            raise
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
            if ok is not None:
                self.metrics.observe("list", self.tier, time.perf_counter() - start, ok=ok)

    async def delete(self, key: str) -> None:
        await self._timed("delete", self.inner.delete(key))

    async def close(self) -> None:
        await self.inner.close()
