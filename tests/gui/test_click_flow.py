"""The whole way a user goes, by clicks and keys only: import, Backup now, search, open,
restore into a folder, and the restored files are the originals, byte for byte.

Real widgets, the in-process client on a temporary workspace, a folder target (a
"USB disk" in tmp). The fixtures are copied first (the shared ones are read-only).
The API is only read to check what the clicks did.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QListWidget

from core.models import JobState
from gui.main_window import PAGES
from tests.gui.conftest import FIXTURES, Harness, Run
from tests.gui.tier2 import add_folder_target

pytestmark = pytest.mark.gui
WORD = "pygments"
"""A word of the fixtures' tool-use transcripts."""
ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING, JobState.PAUSED)


async def backups_finished(h: Harness) -> None:
    """Until the backup the click started has ended (it is read, not waited for)."""
    while True:
        jobs = [j for j in await h.client.jobs() if j.kind == "backup"]
        if jobs and all(j.state not in ACTIVE for j in jobs):
            assert all(j.state == JobState.DONE for j in jobs), jobs
            return
        await asyncio.sleep(0.05)


def click_nav(qtbot: Any, h: Harness, page: str) -> None:
    nav = h.window.nav
    item = nav.item(PAGES.index(page))
    qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton,
                     pos=nav.visualItemRect(item).center())  # fmt: skip
    h.wait(lambda: h.window.current_page() == page)


def click_row(qtbot: Any, view: QListWidget, row: int) -> None:
    rect = view.visualItemRect(view.item(row))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_import_back_up_search_open_and_restore_by_clicks(
    make_window, run: Run, qtbot: Any, tmp_path: Path
) -> None:
    source = tmp_path / "history"
    shutil.copytree(FIXTURES, source)
    ws = tmp_path / "ws"
    run(add_folder_target(ws, tmp_path / "usb-disk"))
    h = make_window(ws)
    w = h.window
    assert w.sessions.row_count() == 0

    # Import…: the folder dialog, the folder typed in, Enter
    qtbot.mouseClick(w.sessions.import_button, Qt.MouseButton.LeftButton)
    dialog = w.sessions.findChild(QFileDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.selectFile(str(source))
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    h.wait(lambda: w.sessions.row_count() > 0 and w.sessions.import_button.isEnabled(), 60)
    imported = w.sessions.row_count()

    # Backup now (the header button), until the job is done
    h.wait(w.backup_button.isEnabled)
    qtbot.mouseClick(w.backup_button, Qt.MouseButton.LeftButton)
    h.call(backups_finished(h))
    h.wait(lambda: w.backup_button.text() == "Backup now" and w.backup_button.isEnabled())
    assert len({b.session_id for b in h.call(h.client.backups())}) == imported

    # Search: the word typed, Enter; the hit clicked and opened with Enter
    click_nav(qtbot, h, "search")
    qtbot.keyClicks(w.search.query_edit, WORD)
    qtbot.keyClick(w.search.query_edit, Qt.Key.Key_Return)
    h.wait(lambda: w.search.hit_count() > 0)
    session_id, _ = w.search.hit_at(0)
    click_row(qtbot, w.search.results, 0)
    qtbot.keyClick(w.search.results, Qt.Key.Key_Return)
    h.wait(lambda: w.current_page() == "sessions" and w.sessions.current_session_id() == session_id)
    h.wait(lambda: w.sessions.restore_button.isEnabled())

    # Restore…: a folder typed in, Restore, until the dialog says it is done
    qtbot.mouseClick(w.sessions.restore_button, Qt.MouseButton.LeftButton)
    restore = w.sessions.restore_dialog
    assert restore is not None
    h.wait(restore.restore_button.isEnabled)
    dest = tmp_path / "restored here"
    restore.dest_edit.clear()
    qtbot.keyClicks(restore.dest_edit, str(dest))
    qtbot.mouseClick(restore.restore_button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    h.wait(lambda: restore.job is None and restore.result_text() != "", 30)
    assert restore.open_button.isVisible(), restore.result_text()

    sources = [Path(s.path) for s in h.call(h.client.session(session_id, messages=False)).sources]
    assert sources and all(p.is_relative_to(source) for p in sources)
    written = {p.name: p for p in dest.rglob("*") if p.is_file()}
    for original in sources:
        assert written[original.name].read_bytes() == original.read_bytes()
