"""The processes `bench_gui` measures, one per run, each printing one JSON line.

    python -m tests.benchmarks.gui_child bare T0
    python -m tests.benchmarks.gui_child window T0 WORKSPACE
    python -m tests.benchmarks.gui_child stall WORKSPACE TARGET

`T0` is the parent's `time.time()` just before it started this process, so the
first-paint figure includes the interpreter's start and every import, as a user
clicking the icon waits for them. `window` runs the real entry point
(`gui.app.main`), with a filter that notes the first paint of the main window
and quits once the window has loaded and sat idle (then its RSS is read).
`stall` opens the window on the in-process client and backs up every session
while two 10 ms tickers (an asyncio sleep and a Qt timer) record how late they
wake: what a user feels as a frozen window.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK = 0.010
SETTLE_S = 2.0


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _emit(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def bare(t0: float) -> int:
    """The floor: a QApplication and one empty QWidget window, painted once."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication([sys.argv[0]])
    window = QWidget()
    window.resize(1200, 780)
    seen: dict[str, float] = {}

    class Watch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "paint" not in seen:
                seen["paint"] = time.time() - t0
                QTimer.singleShot(int(SETTLE_S * 1000), app.quit)
            return False

    watch = Watch()
    window.installEventFilter(watch)
    window.show()
    app.exec()
    _emit({"first_paint_s": seen["paint"], "rss_mb": rss_mb()})
    return 0


def window(t0: float, workspace: str) -> int:
    """`tierkeeper gui` as a user starts it, on `workspace`."""
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from gui.app import configure_app, main
    from gui.main_window import MainWindow
    from gui.setup_wizard import SEEN_KEY

    app = QApplication([sys.argv[0]])
    configure_app(app)
    QSettings().setValue(SEEN_KEY, True)  # the wizard is not what this measures
    seen: dict[str, float] = {}

    def idle_then_quit(main_window: MainWindow) -> None:
        if not main_window.dashboard.loaded:
            QTimer.singleShot(50, lambda: idle_then_quit(main_window))
            return
        seen["loaded"] = time.time() - t0

        def done() -> None:
            seen["rss"] = rss_mb()
            main_window.quit_app()

        QTimer.singleShot(int(SETTLE_S * 1000), done)

    class Watch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "paint" not in seen:
                top = obj.window() if isinstance(obj, QWidget) else None
                if isinstance(top, MainWindow):
                    seen["paint"] = time.time() - t0
                    QTimer.singleShot(0, lambda: idle_then_quit(top))
            return False

    watch = Watch()
    app.installEventFilter(watch)
    code = main(["--workspace", workspace])
    if code != 0 or "rss" not in seen:
        raise SystemExit(f"the window did not load and quit cleanly (exit {code})")
    _emit({"first_paint_s": seen["paint"], "loaded_s": seen["loaded"], "rss_mb": seen["rss"]})
    return 0


def stall(workspace: str, target: str) -> int:
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from core.client import open_client
    from core.models import JobState
    from gui.app import configure_app
    from gui.main_window import MainWindow
    from gui.qt_loop import close_loop, new_loop

    app = QApplication([sys.argv[0]])
    configure_app(app)
    loop = new_loop(app)
    debug = bool(os.environ.get("BENCH_GUI_DEBUG"))
    if debug:  # names the callbacks that hold the loop (see docs on slow_callback_duration)
        import logging

        logging.basicConfig(format="%(relativeCreated)d ms %(name)s: %(message)s")
        loop.set_debug(True)
        loop.slow_callback_duration = 0.02

    async def measure() -> dict[str, Any]:
        client = await open_client(workspace)
        scratch = tempfile.TemporaryDirectory(prefix="bench-gui-")
        settings = QSettings(str(Path(scratch.name) / "gui.ini"), QSettings.Format.IniFormat)
        win = MainWindow(client, settings=settings)
        try:
            win.show()
            await win.load()
            win.show_page("dashboard")  # the running list: bars and numbers move all along
            await asyncio.sleep(1.0)

            aio_late: list[float] = []
            qt_late: list[float] = []
            running = True

            async def ticker() -> None:
                clock = loop.time
                while running:
                    start = clock()
                    await asyncio.sleep(TICK)
                    aio_late.append(clock() - start - TICK)

            elapsed = QElapsedTimer()
            timer = QTimer()
            timer.setInterval(int(TICK * 1000))

            def on_tick() -> None:
                qt_late.append(elapsed.nsecsElapsed() / 1e9 - TICK)
                elapsed.restart()

            timer.timeout.connect(on_tick)
            tick_task = asyncio.ensure_future(ticker())
            elapsed.start()
            timer.start()
            started = time.perf_counter()
            job = await win.dashboard.start_backup(target)
            final = await client.wait_job(job.id)
            seconds = time.perf_counter() - started
            running = False
            timer.stop()
            await tick_task
            if final.state != JobState.DONE:
                raise RuntimeError(f"the backup ended {final.state}: {final.error}")
            result = final.result or {}
            return {
                "asyncio_late_s": aio_late,
                "qt_late_s": qt_late[1:],  # the first interval includes the job's submit
                "backup_s": seconds,
                "raw_bytes": result.get("raw_bytes", 0),
                "sessions": result.get("sessions", 0),
                "rss_mb": rss_mb(),
            }
        finally:
            await win.shutdown()
            win.hide()
            await client.close()
            scratch.cleanup()

    try:
        data = loop.run_until_complete(measure())
    finally:
        close_loop(loop)
    _emit(data)
    return 0


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "bare":
        raise SystemExit(bare(float(rest[0])))
    if mode == "window":
        raise SystemExit(window(float(rest[0]), rest[1]))
    if mode == "stall":
        raise SystemExit(stall(rest[0], rest[1]))
    raise SystemExit(f"unknown mode {mode!r}")
