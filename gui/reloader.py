"""A reload that coalesces: asked again while it runs, it runs once more after.

Events arrive in bursts (a backup publishes `backups.changed`, then
`job.finished`); each asks for a reload, and starting one per event would
repaint the page several times with the same data. Whoever awaits a reload
still sees data at least as new as the moment they asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Reloader:
    def __init__(self, load: Callable[[], Awaitable[None]]) -> None:
        self._load = load
        self._task: asyncio.Task[None] | None = None
        self._again = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def __call__(self) -> None:
        task = self._task
        if task is not None and not task.done():
            self._again = True
            await task
            return
        self._task = asyncio.get_event_loop().create_task(self._loop())
        await self._task

    async def _loop(self) -> None:
        while True:
            self._again = False
            await self._load()
            if not self._again:
                return
