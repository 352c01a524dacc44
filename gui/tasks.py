"""Runs the coroutines that slots start, and turns their failures into messages.

A slot must never block, so it hands a coroutine to `TaskRunner.spawn`. The
runner keeps a reference (asyncio holds tasks only weakly), reports a
`TierkeeperError` as the message it carries, and can cancel and await every
task at shutdown so the client closes with nothing still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from core.errors import TierkeeperError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskRunner(QObject):
    failed = Signal(str)
    """A person-readable message for the error banner."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(
        self, coro: Coroutine[Any, Any, T], *, busy: QWidget | None = None
    ) -> asyncio.Task[T] | None:
        """Start `coro` on the event loop; `busy` is disabled until it ends."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        if busy is not None:
            busy.setEnabled(False)
        task.add_done_callback(lambda t: self._done(t, busy))
        return task

    @property
    def active(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[Any], busy: QWidget | None) -> None:
        self._tasks.discard(task)
        if busy is not None:
            try:
                busy.setEnabled(True)
            except RuntimeError:  # the widget was deleted while we awaited
                pass
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, TierkeeperError):
            self.failed.emit(str(exc))
        else:
            log.error("unexpected error in a UI task", exc_info=exc)
            self.failed.emit(f"Something went wrong: {type(exc).__name__}: {exc}")

    async def shutdown(self) -> None:
        """Cancel what is still running and wait for it to unwind."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
