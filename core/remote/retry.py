"""Retry with backoff as a wrapper, so every store gets the same policy and none embeds one.

Only `TransientError` is retried: a dropped network, a 429, a NAS mount that
went away. Permanent errors, missing objects and revoked sign-ins pass
through at once — waiting cannot fix them, and a job that hides them behind
minutes of retries only delays the message the user needs.

Delays use exponential backoff with full jitter (a uniform pick between zero
and the exponential cap), so many jobs that failed together do not come back
together. A small loop rather than a retry library: `get` must resume the
range where the failed attempt stopped and `list` may only retry before the
first item, and both read more plainly as a loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO, TypeVar

from core.remote.base import (
    ObjectInfo,
    ObjectNotFound,
    ProgressFn,
    PutSource,
    ResumeSlot,
    Store,
    TransientError,
)

_T = TypeVar("_T")
log = logging.getLogger(__name__)

SleepFn = Callable[[float], Awaitable[object]]


class RetryingStore:
    def __init__(
        self,
        inner: Store,
        *,
        attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        sleep: SleepFn = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays cannot be negative")
        self.inner = inner
        self.name = inner.name
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()

    def delay_cap(self, retry: int) -> float:
        """Upper bound of the pause before retry number `retry` (1 = the first retry)."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 60))

    def _delay(self, retry: int) -> float:
        return self._rng.uniform(0.0, self.delay_cap(retry))

    async def _backoff(self, what: str, attempt: int, err: TransientError) -> None:
        """Sleep before the next attempt, or re-raise `err` saying how often we tried."""
        if attempt >= self.attempts:
            tries = "attempt" if attempt == 1 else "attempts"
            err.message = f"{err.message} (gave up after {attempt} {tries})"
            err.args = (err.message,)
            raise err
        pause = self._delay(attempt)
        if err.retry_after is not None:  # the server said how long: never come back sooner
            pause = max(pause, min(err.retry_after, self.max_delay * 4))
        log.info(
            "%s on %s failed (%s); retry %d of %d in %.1fs",
            what,
            self.name,
            err,
            attempt,
            self.attempts - 1,
            pause,
        )
        await self._sleep(pause)

    async def _call(self, what: str, op: Callable[[], Awaitable[_T]]) -> _T:
        attempt = 1
        while True:
            try:
                return await op()
            except TransientError as err:
                await self._backoff(what, attempt, err)
            attempt += 1

    # -- the Store protocol ------------------------------------------------

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        return await self._call(
            f"put {key}", lambda: self.inner.put(key, source, progress, resume=resume)
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
        """Retried attempts continue the range where the failed one stopped writing.

        That needs `dest.tell()`; a destination that cannot tell (a pipe) gets one
        attempt only, since bytes already written there cannot be taken back.
        """
        if _tell(dest) is None:
            return await self.inner.get(key, dest, offset=offset, length=length, progress=progress)
        done = 0

        async def once() -> int:
            nonlocal done
            before = _tell(dest)
            try:
                return done + await self.inner.get(
                    key,
                    dest,
                    offset=offset + done,
                    length=None if length is None else length - done,
                    progress=progress,
                )
            except TransientError:
                after = _tell(dest)
                if before is not None and after is not None:
                    done += after - before
                raise

        return await self._call(f"get {key}", once)

    async def stat(self, key: str) -> ObjectInfo:
        return await self._call(f"stat {key}", lambda: self.inner.stat(key))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Retries only until the first item: after that, a retry would repeat items."""
        attempt = 1
        while True:
            items = self.inner.list(prefix)
            try:
                first = await anext(items)
            except StopAsyncIteration:
                return
            except TransientError as err:
                await _aclose(items)
                await self._backoff(f"list {prefix!r}", attempt, err)
                attempt += 1
                continue
            break
        try:
            yield first
            async for info in items:
                yield info
        finally:
            await _aclose(items)

    async def delete(self, key: str) -> None:
        """A delete that is retried and then finds nothing was done by the attempt that failed."""
        attempt = 1
        while True:
            try:
                await self.inner.delete(key)
                return
            except ObjectNotFound:
                if attempt == 1:
                    raise
                return
            except TransientError as err:
                await self._backoff(f"delete {key}", attempt, err)
            attempt += 1

    async def close(self) -> None:
        await self.inner.close()


def _tell(dest: BinaryIO) -> int | None:
    try:
        return dest.tell() if dest.seekable() else None
    except (OSError, ValueError, AttributeError):
        return None


async def _aclose(items: AsyncIterator[ObjectInfo]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
