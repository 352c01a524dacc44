"""`--time-to-window`: how long from launching the program until the window has pixels.

What a user waits for starts when they launch the program, before Python (or a
frozen bundle's loader) has run a line, so the clock starts at the process's
creation as the kernel recorded it. Where that is unknown (no /proc), it starts
at this module's import and the figure is an underestimate, said so.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

_IMPORTED = time.monotonic()


def seconds_since_start() -> tuple[float, bool]:
    """(seconds since the process started, whether that start is the real one)."""
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        # fields after the command's closing parenthesis start at field 3; starttime is 22
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        started = start_ticks / os.sysconf("SC_CLK_TCK")
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started, True
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED, False


class _FirstPaint(QObject):
    """Resolves `done` once a widget of `window` has been painted for the first time."""

    def __init__(self, window: QWidget, done: asyncio.Future[tuple[float, bool]]) -> None:
        super().__init__(window)
        self._window = window
        self._done = done

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Paint
            and isinstance(watched, QWidget)
            and watched.window() is self._window
            and not self._done.done()
        ):
            # measured just after this paint has run and reached the backing store
            QTimer.singleShot(0, self._finish)
        return False

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(seconds_since_start())


async def time_to_first_paint(window: QWidget) -> tuple[float, bool]:
    """Waits for the window's first paint; returns (seconds since start, start is exact)."""
    app = QApplication.instance()
    assert app is not None
    done: asyncio.Future[tuple[float, bool]] = asyncio.get_running_loop().create_future()
    watcher = _FirstPaint(window, done)
    app.installEventFilter(watcher)
    try:
        return await done
    finally:
        app.removeEventFilter(watcher)


def report(seconds: float, exact: bool) -> str:
    """The line `--time-to-window` prints; benchmarks parse its second word."""
    where = "process start" if exact else "gui import (process start unknown here)"
    return f"time-to-window {seconds:.3f} s from {where}"
