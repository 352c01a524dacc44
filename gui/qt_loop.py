"""Creating and closing the qasync event loop the way this app needs it.

qasync 0.28's `QEventLoop.close()` only flags its timer object as stopped:
Qt timers for pending `call_later` handles (an `asyncio.wait_for` timeout, a
sleep) stay registered. If the loop is later garbage-collected on another
thread (cyclic GC runs wherever Python happens to allocate — an aiosqlite or
executor thread), Qt cannot unregister them there, and the next timer event is
sent to a deleted object: a segfault, in whichever test or window comes next.
Deleting that timer object here, on the loop's own thread, unregisters them.

Its `run_until_complete` also processes Qt events one last time after
`run_forever` has unset the running loop: an asyncio callback run in that pass
(a task resuming after `asyncio.to_thread`) finds no loop and fails. The loop
here stays the running loop for that pass.
"""

from __future__ import annotations

import asyncio
from typing import Any

import PySide6  # noqa: F401  (imported before qasync, which binds to the Qt already loaded)
import qasync  # type: ignore[import-untyped]
import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication


class _Loop(qasync.QEventLoop):  # type: ignore[misc]
    _completing = False

    def run_until_complete(self, future: Any) -> Any:
        self._completing = True
        try:
            return super().run_until_complete(future)
        finally:
            self._completing = False
            asyncio.events._set_running_loop(None)

    def _after_run_forever(self) -> None:
        super()._after_run_forever()
        if self._completing:  # for qasync's last processEvents in run_until_complete
            asyncio.events._set_running_loop(self)


def new_loop(app: QApplication) -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = _Loop(app)
    asyncio.set_event_loop(loop)
    return loop


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel leftovers, finish async generators, close, and disarm the loop's Qt timers."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    timer = getattr(loop, "_timer", None)
    if isinstance(timer, QObject) and shiboken6.isValid(timer):
        shiboken6.delete(timer)
    asyncio.set_event_loop(None)
