"""The window a user first sees: opens, says where it is, teaches when empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from gui.main_window import MainWindow
from gui.settings_page import SettingsPage

pytestmark = pytest.mark.gui


def test_window_opens_on_an_empty_workspace(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    w = h.window
    assert w.isVisible()
    assert w.current_page() == "sessions"
    assert str(tmp_path / "ws") in w.workspace_label.toolTip()
    assert "no phase" in w.phase_label.text()
    assert w.service_label.text() == "in-process service · 0 jobs running"
    assert "0 sessions" in w.facts_label.text()


def test_empty_workspace_shows_the_import_empty_state(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    page = h.window.sessions
    assert page.showing_empty_state()
    assert page.empty.isVisible()
    assert "No sessions yet" in page.empty.title.text()
    assert "Import from ~/.claude/projects" in page.empty.text.text()
    assert page.empty.button is not None and page.empty.button.text() == "Import…"
    assert page.empty.button.isEnabled()
    assert page.row_count() == 0


def test_the_settings_page_shows_the_workspace_and_offers_the_wizard(
    make_window, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    h.window.show_page("settings")
    page = h.window.pages.currentWidget()
    assert isinstance(page, SettingsPage)
    assert str(tmp_path / "ws") in page.workspace_label.toolTip()
    assert page.wizard_button.text() == "Run set-up wizard…"


def test_sidebar_switches_pages(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    h.window.nav.setCurrentRow(5)
    assert h.window.current_page() == "search"
    assert h.window.pages.currentWidget() is h.window.search
    h.window.nav.setCurrentRow(4)  # Phase review, between Performance and Search
    assert h.window.pages.currentWidget() is h.window.review_page
    h.window.nav.setCurrentRow(2)
    assert h.window.pages.currentWidget() is h.window.history


def test_geometry_is_remembered(make_window, qtbot, run, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    h.window.resize(700, 520)
    remembered = h.window.size()
    assert remembered.height() == 520  # not the default size
    h.window.close()  # saves to the harness' settings file
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    second = MainWindow(h.client, settings=settings)
    qtbot.addWidget(second)
    assert second.size() == remembered


def test_a_client_error_shows_in_the_banner_and_can_be_dismissed(
    make_window, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    missing = tmp_path / "no-such-folder"
    h.window.runner.spawn(h.window.sessions.import_paths([str(missing)]))
    h.wait(lambda: h.window.banner.message() != "")
    assert "does not exist" in h.window.banner.message()
    assert h.window.banner.isVisible()
    assert h.window.sessions.import_button.isEnabled()  # busy state was undone
    h.window.banner.close_button.click()
    assert not h.window.banner.isVisible()
    assert h.window.banner.message() == ""
