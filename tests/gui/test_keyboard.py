"""The window from the keyboard: page keys, search, backup, refresh, quit, Esc, Tab;
and the dashboard's Set up… buttons that replace "run this in a terminal"."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QWidget

from core.client import open_client
from gui.main_window import PAGES, MainWindow
from gui.setup_wizard import SetupWizard
from tests.gui.conftest import until
from tests.gui.tier2 import add_folder_target

pytestmark = pytest.mark.gui

CTRL = Qt.KeyboardModifier.ControlModifier


def _activate(run, window: QWidget) -> None:  # type: ignore[no-untyped-def]
    """Keys reach the active window; the loop turns (inside `run`) until it is."""
    window.activateWindow()
    run(until(lambda: QApplication.activeWindow() is window))


def test_page_keys_search_key_and_refresh(make_window, run, qtbot, tmp_path) -> None:
    h = make_window(tmp_path / "ws")
    w = h.window
    _activate(run, w)
    for n, name in enumerate(PAGES, start=1):
        qtbot.keyClick(w, Qt.Key(Qt.Key.Key_0 + n), CTRL)
        assert w.current_page() == name
    qtbot.keyClick(w, Qt.Key.Key_1, CTRL)
    assert w.current_page() == "dashboard"

    qtbot.keyClick(w, Qt.Key.Key_F, CTRL)
    assert w.current_page() == "search"
    assert QApplication.focusWidget() is w.search.query_edit
    qtbot.keyClicks(w.search.query_edit, "decorators")
    assert w.search.query_edit.text() == "decorators"

    qtbot.keyClick(w, Qt.Key.Key_1, CTRL)
    reloads: list[object] = []
    w.dashboard.targets_changed.connect(reloads.append)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    h.wait(lambda: len(reloads) == 1)  # the page in view loaded again


def test_ctrl_b_backs_up_or_says_why_it_cannot(
    make_window, run, qtbot, imported_ws: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "empty")
    _activate(run, h.window)
    qtbot.keyClick(h.window, Qt.Key.Key_B, CTRL)
    h.wait(lambda: "no backup target yet" in h.window.banner.message().lower())

    run(add_folder_target(imported_ws, tmp_path / "disk"))
    h = make_window(imported_ws)
    w = h.window
    w.show_page("dashboard")
    h.wait(lambda: w.backup_button.isEnabled())
    _activate(run, w)
    sessions = h.call(h.client.list_sessions())
    qtbot.keyClick(w, Qt.Key.Key_B, CTRL)
    h.wait(lambda: w.history.row_count() == len(sessions))


def test_ctrl_q_quits_even_where_closing_hides_to_the_tray(qtbot, run, tmp_path: Path) -> None:
    client = run(open_client(tmp_path / "ws"))
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(client, settings=settings)
    qtbot.addWidget(window)
    try:
        window.tray.available = True  # a desktop with a tray: the close box only hides
        closed: list[bool] = []
        window.closed.connect(lambda: closed.append(True))
        window.show()
        _activate(run, window)
        qtbot.keyClick(window, Qt.Key.Key_Q, CTRL)
        assert closed == [True] and not window.isVisible()
    finally:
        run(window.shutdown())
        run(client.close())


def _open_wizard(h, button) -> SetupWizard:  # type: ignore[no-untyped-def]
    button.click()
    wizard = h.window.wizard
    assert isinstance(wizard, SetupWizard)
    h.wait(lambda: wizard.isVisible())
    h.run(wizard.wait_loaded())
    return wizard


def test_set_up_buttons_open_the_wizard_and_esc_closes_it(
    make_window, run, qtbot, tmp_path
) -> None:
    h = make_window(tmp_path / "ws")
    h.window.show_page("dashboard")
    page = h.window.dashboard
    h.wait(lambda: page.loaded)
    none, archive = page.no_target_card, page.archive_card
    assert none.setup_button.isVisibleTo(none) and archive.setup_button.isVisibleTo(archive)
    assert "tierkeeper target add folder" in none.text()  # the terminal way, still said

    for button in (none.setup_button, archive.setup_button):
        wizard = _open_wizard(h, button)
        _activate(run, wizard)
        qtbot.keyClick(wizard, Qt.Key.Key_2, CTRL)  # the window's keys stay with the window
        assert h.window.current_page() == "dashboard"
        qtbot.keyClick(wizard, Qt.Key.Key_Escape)
        h.wait(lambda wizard=wizard: not wizard.isVisible())


def test_tab_reaches_the_sidebar_and_the_table(make_window, run, qtbot, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    w = h.window
    w.show_page("sessions")
    h.wait(lambda: w.sessions.table.model().rowCount() > 0)
    _activate(run, w)
    w.nav.setFocus(Qt.FocusReason.OtherFocusReason)
    seen: list[QWidget | None] = [QApplication.focusWidget()]
    for _ in range(12):
        focused = QApplication.focusWidget()
        assert focused is not None
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    assert w.nav in seen and w.sessions.table in seen and w.sessions.filter_edit in seen
    assert w.nav.accessibleName() == "Pages"
    assert w.sessions.table.accessibleName() == "Sessions"
    assert w.search.query_edit.accessibleName() == "Search messages"
