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
from gui.first_paint import report, time_to_first_paint
from gui.main_window import PAGES, MainWindow
from gui.qt_loop import close_loop, new_loop
from gui.resources import app_icon
from gui.setup_wizard import PAGE_NAMES, SetupWizard
from gui.theme import SCHEMES, apply_scheme

APP_NAME = "Tierkeeper"
DIALOGS = ("restore", "wizard", "unlock")
BATCH = 8
"""Sessions per backup when the Performance screenshot makes its own."""


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
        help="with --screenshot: open this dialog (for the first session, or the first "
        "locked target) and save it instead",
    )
    parser.add_argument(
        "--wizard-page",
        choices=PAGE_NAMES,
        default=PAGE_NAMES[0],
        help="with --dialog wizard: the set-up wizard's page to show",
    )
    parser.add_argument(
        "--restore-from",
        metavar="DIR",
        help="with --dialog wizard --wizard-page restore: open this backup folder on the page",
    )
    parser.add_argument(
        "--color-scheme",
        choices=SCHEMES,
        default="system",
        help="light or dark colours where the desktop does not choose (default: the system's)",
    )
    parser.add_argument(
        "--time-to-window",
        action="store_true",
        help="print the seconds from process start to the window's first paint, then quit",
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
    apply_scheme(app, args.color_scheme)
    app.setQuitOnLastWindowClosed(False)  # the coroutine below decides when to stop
    loop = new_loop(app)
    try:
        return int(loop.run_until_complete(_run(workspace or args.workspace, args)))
    finally:
        close_loop(loop)


async def _run(workspace: str | None, args: argparse.Namespace) -> int:
    try:
        # an unreadable DB is moved aside, not fatal: the window then offers the rebuild
        client = await open_client(workspace, set_aside_damaged=True)
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
        if args.time_to_window:
            print(report(*await time_to_first_paint(window)), flush=True)
            return int(ExitCode.OK)
        try:
            await window.load()
            if args.screenshot is None:
                await window.offer_first_run()
        except TierkeeperError as exc:
            window.banner.show_message(str(exc))
        if args.screenshot is not None:
            return await take_screenshot(
                window, Path(args.screenshot), query=args.query, dialog=args.dialog,
                wizard_page=args.wizard_page, restore_from=args.restore_from,
            )  # fmt: skip
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
    window: MainWindow, path: Path, *, query: str | None, dialog: str | None = None,
    wizard_page: str = PAGE_NAMES[0], restore_from: str | None = None,
) -> int:  # fmt: skip
    """Bring the window to the state the picture should show, let it paint, grab it."""
    window.resize(1280, 800)
    await window.check_catalog()  # the banner a lost catalog gets, before the picture
    if query:
        window.search.query_edit.setText(query)
        task = window.search.search_now()
        if task is not None:
            await task
    if (window.current_page() == "sessions" or dialog == "restore") and window.sessions.row_count():
        await window.sessions.open_session(window.sessions.first_session_id() or "")
    if window.current_page() == "performance":
        await _back_up_to_watch(window)
    target: QWidget = window
    if dialog == "restore":
        await window.sessions.load_backups()
        restore = window.sessions.open_restore()
        if restore is None:
            return int(ExitCode.FAILED)
        await restore.wait_loaded()
        target = restore
    elif dialog == "unlock":
        window.show_page("dashboard")
        await window.dashboard.refresh()
        locked = [c for c in window.dashboard.target_cards.values() if c.locked_reason]
        if not locked:
            return int(ExitCode.FAILED)
        target = window.dashboard.open_unlock(locked[0])
    elif dialog == "wizard":
        target = await _wizard_at(window, wizard_page)
        if wizard_page == "restore" and restore_from and isinstance(target, SetupWizard):
            target.restore.folder_row.set_path(restore_from)
            await target.restore.open_backup()
    await _settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = target.grab().save(str(path), "PNG")
    return int(ExitCode.OK if ok else ExitCode.FAILED)


async def _wizard_at(window: MainWindow, page: str) -> SetupWizard:
    """The set-up wizard opened straight on `page`, for its picture in the docs."""
    wizard = window.open_setup_wizard()
    await wizard.wait_loaded()
    wizard.setStartId(PAGE_NAMES.index(page))
    wizard.restart()
    return wizard


async def _back_up_to_watch(window: MainWindow) -> None:
    """The Performance page draws what this process timed, so the picture needs a backup
    made here: every session to the default target, in batches a moment apart (as the
    after-each-session hook makes them), so the live graphs have more than one second."""
    page = window.performance
    await page.refresh()
    if not page.showing_empty_state():
        return
    ids = [s.id for s in await window.client.list_sessions()]
    for start in range(0, len(ids), BATCH):
        job = await window.client.start_backup(ids[start : start + BATCH])
        await window.client.wait_job(job.id)
        await asyncio.sleep(0.4)
    await asyncio.sleep(1.5)  # the live stream's last points


async def _settle(rounds: int = 10) -> None:
    """A few turns of the loop so layouts, paints and queued signals have happened."""
    # Sleeping is enough: qasync's loop is Qt's, so posted events run meanwhile. Calling
    # processEvents from inside a task would resume other tasks re-entrantly; asyncio
    # refuses that and their wake-ups are lost (the live metrics feed then never ends).
    for _ in range(rounds):
        await asyncio.sleep(0.05)


def _close_on_signals(window: MainWindow) -> Callable[[], None]:
    """Ctrl+C or SIGTERM closes the window (and so the client) instead of killing mid-write.

    Python runs signal handlers only when it gets control, so a light timer
    hands it control a few times a second even when the window is idle.
    Returns what puts the previous handlers back.
    """
    previous = {
        sig: signal.signal(sig, lambda _n, _f: window.quit_app())
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
