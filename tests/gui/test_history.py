"""History: one row per backup, a filter, and a failed verify that shows what failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.models import JobState
from gui.format import DASH
from gui.history_model import SESSION, SIZE, STORED, TARGET, VERIFIED
from tests.gui.tier2 import Disk, add_folder_target, back_up

pytestmark = pytest.mark.gui


@pytest.fixture
def disk(run, imported_ws: Path, tmp_path: Path) -> Disk:
    return run(add_folder_target(imported_ws, tmp_path / "disk"))


def _history(h):  # type: ignore[no-untyped-def]
    h.window.show_page("history")
    return h.window.history


def test_no_backups_shows_how_to_make_one(make_window, imported_ws: Path, disk: Disk) -> None:
    h = make_window(imported_ws)
    page = _history(h)
    assert page.showing_empty_state()
    assert "No backups yet" in page.empty.title.text()
    assert "tierkeeper backup --all" in page.empty.text.text()


def test_every_backup_is_a_row_and_the_filter_narrows_them(
    make_window, qtbot, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    page = _history(h)
    sessions = h.call(h.client.list_sessions())
    h.call(back_up(h.client, [s.id for s in sessions]))
    h.wait(lambda: page.row_count() == len(sessions))  # refreshed by backups.changed
    assert not page.showing_empty_state()
    assert page.count_label.text() == f"{len(sessions)} backups"

    titles = {s.title or s.id for s in sessions}
    shown = {page.cell(r, SESSION) for r in range(page.row_count())}
    assert shown == titles  # titles, not bare ids
    assert {page.cell(r, TARGET) for r in range(page.row_count())} == {"usb"}
    assert all("→" in str(page.cell(r, SIZE)) for r in range(page.row_count()))
    shares = [str(page.cell(r, STORED)) for r in range(page.row_count())]
    assert all(s.endswith("%") or s == DASH for s in shares)  # a dash: nothing to compress
    assert sum(s.endswith("%") for s in shares) > len(shares) // 2
    assert all(str(page.cell(r, VERIFIED)).startswith("✓") for r in range(page.row_count()))

    pick = next(s for s in sessions if s.title and len(s.title) > 12)
    qtbot.keyClicks(page.filter_edit, pick.title[:12])
    assert 1 <= page.row_count() < len(sessions)
    assert pick.title in {page.cell(r, SESSION) for r in range(page.row_count())}
    assert page.count_label.text().endswith(f"of {len(sessions)} backups")
    page.filter_edit.setText("usb")  # the target's name matches every row
    assert page.row_count() == len(sessions)
    page.filter_edit.setText("no-such-thing")
    assert page.row_count() == 0


def test_a_failed_verify_shows_a_cross_and_what_failed(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    page = _history(h)
    sessions = [s.id for s in h.call(h.client.list_sessions())]
    h.call(back_up(h.client, sessions))
    lost = disk.stored_files()[0]
    lost.unlink()
    job = h.call(h.client.start_verify("usb"))
    assert h.call(h.client.wait_job(job.id)).state == JobState.DONE

    def failed_rows() -> list[int]:
        return [r for r in range(page.row_count()) if page.cell(r, VERIFIED) == "✗ failed"]

    h.wait(lambda: len(failed_rows()) == 1)
    (row,) = failed_rows()
    tooltip = str(page.cell(row, VERIFIED, Qt.ItemDataRole.ToolTipRole))
    assert f"{lost.name}: missing from the target" in tooltip
    ok = [r for r in range(page.row_count()) if str(page.cell(r, VERIFIED)).startswith("✓")]
    assert len(ok) == len(sessions) - 1


def test_double_click_opens_the_session(make_window, imported_ws: Path, disk: Disk) -> None:
    h = make_window(imported_ws)
    page = _history(h)
    sessions = [s.id for s in h.call(h.client.list_sessions())]
    h.call(back_up(h.client, sessions[-1:]))
    h.wait(lambda: page.row_count() == 1)
    page.table.doubleClicked.emit(page.proxy.index(0, SESSION))
    assert h.window.current_page() == "sessions"
    h.wait(lambda: h.window.sessions.current_session_id() == sessions[-1])
