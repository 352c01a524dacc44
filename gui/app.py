"""Starts the desktop app: Qt and asyncio on one loop, one client, one window.

qasync runs asyncio on Qt's event loop, so the client's coroutines and the
widgets share the UI thread without either blocking the other. The client is
opened before the window and closed after it, on every way out.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from core.client import Client, open_client
from core.errors import ExitCode, TierkeeperError
from gui.main_window import PAGES, MainWindow
from gui.qt_loop import close_loop, new_loop
from gui.resources import app_icon

APP_NAME = "Tierkeeper"
DIALOGS = ("restore",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierkeeper-gui", description="The Tierkeeper window.")
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the usual)")
    parser.add_argument(
        "--screenshot", metavar="PATH", help="save a PNG of the window once loaded, then quit"
    )
    parser.add_argument("--page", choices=PAGES, default="sessions", help="page to show first")
    parser.add_argument("--query", help="text to search for before the screenshot")
    parser.add_argument(
        "--dialog",
        choices=DIALOGS,
        help="with --screenshot: open this dialog (for the first session) and save it instead",
    )
    return parser


def configure_app(app: QApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("tierkeeper")
    app.setWindowIcon(app_icon())
    app.setStyle("Fusion")  # follows the system palette, light or dark


def main(argv: list[str] | None = None, workspace: str | None = None) -> int:
    """Run the window until it is closed; returns the process exit code.

    Unknown arguments go to Qt (e.g. `-platform offscreen`), so `tierkeeper gui`
    can pass its own argv through.
    """
    args, qt_args = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])
    configure_app(app)
    app.setQuitOnLastWindowClosed(False)  # the coroutine below decides when to stop
    loop = new_loop(app)
    try:
        return int(loop.run_until_complete(_run(workspace or args.workspace, args)))
    finally:
        close_loop(loop)


async def _run(workspace: str | None, args: argparse.Namespace) -> int:
    try:
        client = await open_client(workspace)
    except TierkeeperError as exc:
        _fatal(str(exc), interactive=args.screenshot is None)
        return int(exc.exit_code)
    window: MainWindow | None = None
    restore_signals: Callable[[], None] = lambda: None  # noqa: E731
    scratch = tempfile.TemporaryDirectory(prefix="tierkeeper-gui-")
    try:
        # a screenshot run must not move the user's remembered window geometry
        settings = (
            QSettings()
            if args.screenshot is None
            else QSettings(str(Path(scratch.name) / "gui.ini"), QSettings.Format.IniFormat)
        )
        window = MainWindow(client, settings=settings)
        closed = asyncio.Event()
        window.closed.connect(closed.set)
        window.show_page(args.page)
        restore_signals = _close_on_signals(window)
        window.show()
        try:
            await window.load()
        except TierkeeperError as exc:
            window.banner.show_message(str(exc))
        if args.screenshot is not None:
            return await take_screenshot(
                window, Path(args.screenshot), query=args.query, dialog=args.dialog
            )
        await closed.wait()
        return int(ExitCode.OK)
    finally:
        restore_signals()
        await _close(client, window)
        scratch.cleanup()


async def _close(client: Client, window: MainWindow | None) -> None:
    if window is not None:
        await window.shutdown()
        window.hide()  # Python owns it: it is destroyed with the last reference
    await client.close()


async def take_screenshot(
    window: MainWindow, path: Path, *, query: str | None, dialog: str | None = None
) -> int:
    """Bring the window to the state the picture should show, let it paint, grab it."""
    window.resize(1280, 800)
    if query:
        window.search.query_edit.setText(query)
        task = window.search.search_now()
        if task is not None:
            await task
    if (window.current_page() == "sessions" or dialog) and window.sessions.row_count():
        await window.sessions.open_session(window.sessions.first_session_id() or "")
    target: QWidget = window
    if dialog == "restore":
        await window.sessions.load_backups()
        restore = window.sessions.open_restore()
        if restore is None:
            return int(ExitCode.FAILED)
        await restore.wait_loaded()
        target = restore
    await _settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = target.grab().save(str(path), "PNG")
    return int(ExitCode.OK if ok else ExitCode.FAILED)


async def _settle(rounds: int = 10) -> None:
    """A few turns of the loop so layouts, paints and queued signals have happened."""
    for _ in range(rounds):
        await asyncio.sleep(0.05)
        QApplication.processEvents()


def _close_on_signals(window: MainWindow) -> Callable[[], None]:
    """Ctrl+C or SIGTERM closes the window (and so the client) instead of killing mid-write.

    Python runs signal handlers only when it gets control, so a light timer
    hands it control a few times a second even when the window is idle.
    Returns what puts the previous handlers back.
    """
    previous = {
        sig: signal.signal(sig, lambda _n, _f: window.close())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)

    def restore() -> None:
        timer.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _fatal(message: str, *, interactive: bool) -> None:
    print(f"tierkeeper: {message}", file=sys.stderr)
    if interactive:
        QMessageBox.critical(None, APP_NAME, message)
