"""Awaiting blocking store work in a worker thread, and stopping it when the caller gives up.

Every store runs its blocking I/O (a file copy, an SDK call) in a worker and
hands it a `threading.Event` that it checks between blocks. When the awaiting
task is cancelled, the event is set and the task keeps waiting until the
worker has really stopped — even through a second cancel — so nothing touches
the files or the network once the call has returned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

_T = TypeVar("_T")


async def until_stopped(fut: asyncio.Future[_T], cancel: threading.Event) -> _T:
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        cancel.set()
        while not fut.done():  # a second cancel must not cut the wait short
            try:
                await asyncio.wait({fut})
            except asyncio.CancelledError:
                continue
        if not fut.cancelled():
            fut.exception()  # consumed: the caller asked to cancel, not to hear it
        raise


def loop_notifier(progress: Callable[[int], None] | None) -> Callable[[int], None]:
    """A progress callback a worker thread may call: it runs on the loop thread, in order,
    before the awaiting call returns."""
    if progress is None:
        return lambda _n: None
    loop = asyncio.get_running_loop()

    def notify(n: int) -> None:
        loop.call_soon_threadsafe(progress, n)

    return notify


async def on_worker(
    executor: Executor, work: Callable[[threading.Event], _T]
) -> _T:  # fmt: skip
    """Runs `work(cancel)` on the executor and awaits it with `until_stopped`."""
    cancel = threading.Event()
    fut = asyncio.get_running_loop().run_in_executor(executor, work, cancel)
    return await until_stopped(fut, cancel)
