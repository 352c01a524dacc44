"""Bridges the client's event stream into Qt signals.

Widgets connect to signals instead of each iterating `client.subscribe()`, so
one subscription serves the whole window and stops in one place at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from core.client import Client, Event, JobInfo

log = logging.getLogger(__name__)


class EventPump(QObject):
    job = Signal(str, object)
    """(topic, JobInfo) for every "job.*" event but "job.log" (a line of text, not a job)."""
    other = Signal(object)
    """Every other Event, unchanged."""
    ended = Signal()
    """The stream stopped by itself (the daemon went away), not by `stop()`."""

    def __init__(self, client: Client, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._task: asyncio.Task[None] | None = None
        self._events: AsyncIterator[Event] | None = None

    def start(self) -> None:
        """Subscribes now (so nothing published from here on is missed) and starts relaying."""
        if self._task is None:
            self._events = self._client.subscribe()
            self._task = asyncio.get_event_loop().create_task(self._run(self._events))

    async def _run(self, events: AsyncIterator[Event]) -> None:
        try:
            async for ev in events:
                self._dispatch(ev)
        except Exception:  # the window keeps working without live updates
            log.exception("the event stream stopped")
        with contextlib.suppress(RuntimeError):  # the window is gone already: nobody to tell
            self.ended.emit()  # not reached when stop() cancels the task

    def _dispatch(self, ev: Event) -> None:
        if ev.topic.startswith("job.") and ev.topic != "job.log":
            try:
                info = JobInfo.model_validate(ev.data)
            except ValidationError:
                log.warning("ignoring malformed %s event: %r", ev.topic, ev.data)
                return
            self.job.emit(ev.topic, info)
        else:
            self.other.emit(ev)

    async def restart(self) -> None:
        """A new subscription on the client (now maybe another transport behind it)."""
        await self.stop()
        self.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        events, self._events = self._events, None
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
