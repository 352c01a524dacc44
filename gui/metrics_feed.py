"""The live `metrics` stream as a Qt signal, running only while someone looks.

The service builds a snapshot four times a second only while a subscriber
named the `metrics` topic, so the window's general event pump (which takes
every topic without naming them) does not start it. This feed subscribes by
name when the Performance page is shown and closes the subscription when it
is hidden: a window left on another page costs the service nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from core.client import Client, Event, MetricsSnapshot
from gui.tasks import TaskRunner

log = logging.getLogger(__name__)
TOPIC = "metrics"


class MetricsFeed(QObject):
    snapshot = Signal(object)
    """A MetricsSnapshot, about four times a second while running."""

    def __init__(self, client: Client, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self._task: asyncio.Task[None] | None = None
        self._events: AsyncIterator[Event] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is not None:
            return
        events = self._client.subscribe([TOPIC])
        task = self._runner.spawn(self._relay(events))
        if task is None:  # the window is shutting down
            self._runner.spawn(_close(events))
            return
        self._events, self._task = events, task

    def stop(self) -> None:
        """Ends the subscription; the service stops the stream once nobody else asked."""
        task, self._task = self._task, None
        events, self._events = self._events, None
        if task is not None:
            task.cancel()
        if events is not None and self._runner.spawn(_close(events)) is None:
            close = getattr(events, "close", None)  # shutting down: a bus subscription
            if close is not None:  # closes synchronously, the daemon's ends with the client
                close()

    async def _relay(self, events: AsyncIterator[Event]) -> None:
        try:
            async for ev in events:
                try:
                    snap = MetricsSnapshot.model_validate(ev.data)
                except ValidationError:
                    log.warning("ignoring a malformed metrics event")
                    continue
                self.snapshot.emit(snap)
        except Exception:  # the page keeps its last figures without live updates
            log.exception("the metrics stream stopped")


async def _close(events: AsyncIterator[Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
