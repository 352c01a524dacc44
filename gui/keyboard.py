"""The window from the keyboard, and named for a screen reader.

Shortcuts live on the main window with the window's context, so they act only
while it is the active window: in the set-up wizard or the restore dialog,
Esc closes the dialog (QDialog's own rule) and Ctrl+B backs nothing up.
Names are set here, in one place, rather than in each page: they describe the
window's parts as a person would look for them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut

if TYPE_CHECKING:
    from gui.main_window import MainWindow

PAGE_KEYS = 9
"""Ctrl+1 … Ctrl+9 at most: as many as there are pages."""


def install_shortcuts(window: MainWindow, pages: tuple[str, ...]) -> dict[str, QShortcut]:
    """Returns the shortcuts by key text (for the Help text and tests)."""
    made: dict[str, QShortcut] = {}

    def bind(keys: str, slot: Callable[[], object]) -> None:
        shortcut = QShortcut(QKeySequence(keys), window)
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.activated.connect(slot)
        made[keys] = shortcut

    for n, name in enumerate(pages[:PAGE_KEYS], start=1):
        bind(f"Ctrl+{n}", functools.partial(window.show_page, name))
    bind("Ctrl+F", lambda: focus_search(window))
    bind("Ctrl+B", lambda: back_up_if_idle(window))
    bind("F5", lambda: window.runner.spawn(window.refresh_page()))
    bind("Ctrl+Q", window.quit_app)
    return made


def focus_search(window: MainWindow) -> None:
    window.show_page("search")
    edit = window.search.query_edit
    edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
    edit.selectAll()


def back_up_if_idle(window: MainWindow) -> None:
    """Like pressing Backup now: nothing while a backup runs; without a target the
    banner says how to add one (the button, disabled, cannot say it when pressed)."""
    if window.backup_button.isEnabled() or not window.has_targets():
        window.start_backup()


def name_widgets(window: MainWindow) -> None:
    window.nav.setAccessibleName("Pages")
    window.nav.setAccessibleDescription("Ctrl+1 to Ctrl+9 switch pages")
    window.pages.setAccessibleName("Page")
    window.backup_button.setAccessibleName("Back up now")
    window.backup_button.setAccessibleDescription("Ctrl+B")
    window.banner.setAccessibleName("Error message")
    window.search.query_edit.setAccessibleName("Search messages")
    window.search.results.setAccessibleName("Search results")
    window.sessions.filter_edit.setAccessibleName("Filter sessions")
    window.sessions.table.setAccessibleName("Sessions")
    window.sessions.details.setAccessibleName("Session details")
    window.history.filter_edit.setAccessibleName("Filter backups")
    window.history.table.setAccessibleName("Backup history")
    window.dashboard.setAccessibleName("Dashboard")
    window.service_label.setAccessibleName("Service status")
