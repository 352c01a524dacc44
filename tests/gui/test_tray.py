"""Tray and notifications: how a job ended reaches a user who looked elsewhere.

The wording is checked on plain job values; the window tests run real jobs
(a backup to a folder, a disk that leaves, a verify that finds a lost file)
and look at what the user would be told.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from core.models import JobInfo, JobState
from gui.job_notice import Level, Notice, notice_for
from gui.main_window import MainWindow
from tests.gui.tier2 import Disk, add_folder_target, back_up, fast_client

pytestmark = pytest.mark.gui


def _job(**kw: object) -> JobInfo:
    base: dict[str, object] = {
        "id": 7,
        "kind": "backup",
        "title": "Back up 3 sessions to usb",
        "state": JobState.DONE,
        "created_at": "2026-11-27T10:00:00+00:00",
    }
    base.update(kw)
    return JobInfo.model_validate(base)


def test_a_failure_always_speaks_and_says_where_to_look() -> None:
    n = notice_for("job.finished", _job(state=JobState.FAILED, error="disk full"), JobState.RUNNING)
    assert n is not None and n.always and n.level == Level.ERROR
    assert n.title == "Backup failed"
    assert "disk full" in n.body and "History" in n.body


def test_a_job_that_ends_well_speaks_only_to_someone_looking_away() -> None:
    done = _job(result={"sessions": ["a", "b", "c"], "raw_bytes": 3_000_000, "stored_bytes": 1_000})
    n = notice_for("job.finished", done, JobState.RUNNING)
    assert n is not None and not n.always and n.level == Level.INFO
    assert n.title == "Backup finished" and n.body.startswith("3 sessions")


def test_partial_success_names_the_first_problem_and_counts_the_rest() -> None:
    job = _job(kind="verify", result={"verified": 3, "failed": [
        {"session": "s1", "problems": ["a.jsonl.zst: missing from the target"]},
        {"session": "s2", "problems": ["b.jsonl.zst: checksum differs"]},
    ]})  # fmt: skip
    n = notice_for("job.finished", job, JobState.RUNNING)
    assert n is not None and n.always and n.level == Level.WARNING
    assert n.title == "Verify finished with problems"
    assert "s1: a.jsonl.zst: missing from the target" in n.body
    assert "and 1 more" in n.body


def test_waiting_speaks_once_and_a_sign_in_always() -> None:
    waiting = _job(state=JobState.WAITING, resource="target:usb", wait_reason="usb is unreachable")
    first = notice_for("job.waiting", waiting, JobState.RUNNING)
    assert first is not None and not first.always
    assert "usb is unreachable" in first.body and "continues" in first.body
    assert notice_for("job.waiting", waiting, JobState.WAITING) is None

    reason = "Drive sign-in expired: run `tierkeeper target reconnect drive`"
    signed_out = _job(
        state=JobState.WAITING, resource="target:drive", needs_user=True, wait_reason=reason
    )
    n = notice_for("job.waiting", signed_out, JobState.RUNNING)
    assert n is not None and n.always and "reconnect" in n.body


def test_a_thaw_says_when_the_archive_is_readable_and_when_sessions_are_back() -> None:
    thawing = _job(kind="archive-restore", state=JobState.WAITING, resource="thaw:s3:phase-1",
                   wait_reason="thawing phase-1 (Bulk, about 48 h)")  # fmt: skip
    n = notice_for("job.waiting", thawing, JobState.RUNNING)
    assert n is not None and "archive" in n.title and "by itself" in n.body

    resumed = _job(kind="archive-restore", state=JobState.RUNNING, title="Restore phase-1")
    n = notice_for("job.started", resumed, JobState.WAITING)
    assert n is not None and n.always and n.title == "The archive is readable"
    assert notice_for("job.started", resumed, JobState.QUEUED) is None

    back = notice_for("job.finished", _job(kind="archive-restore"), JobState.RUNNING)
    assert back is not None and back.always


def test_progress_queueing_and_cancel_stay_quiet() -> None:
    assert notice_for("job.progress", _job(state=JobState.RUNNING), JobState.RUNNING) is None
    assert notice_for("job.queued", _job(state=JobState.QUEUED), None) is None
    cancelled = _job(state=JobState.CANCELLED)
    assert notice_for("job.finished", cancelled, JobState.RUNNING) is None


@pytest.fixture
def disk(run, imported_ws: Path, tmp_path: Path) -> Disk:
    return run(add_folder_target(imported_ws, tmp_path / "disk"))


def _collect(window: MainWindow) -> list[Notice]:
    seen: list[Notice] = []
    window.tray.notified.connect(seen.append)
    return seen


def test_a_failed_verify_notifies_even_with_the_window_in_front(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    seen = _collect(h.window)
    sessions = [s.id for s in h.call(h.client.list_sessions())]
    h.call(back_up(h.client, sessions))
    disk.stored_files()[0].unlink()

    h.call(h.client.start_verify("usb"))
    h.wait(lambda: any(n.title == "Verify finished with problems" for n in seen))
    notice = next(n for n in seen if n.level == Level.WARNING)
    assert "missing from the target" in notice.body
    # no tray under the offscreen platform: the status bar carries it
    assert "Verify finished with problems" in h.window.statusBar().currentMessage()


def test_the_tray_follows_jobs_and_its_menu_backs_up(
    make_window, run, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    tray = h.window.tray
    assert tray.status_text() == "Idle"
    assert tray.backup_action.isEnabled()
    seen = _collect(h.window)
    disk.unplug()

    tray.backup_action.trigger()
    h.wait(lambda: tray.status_text() == "1 waiting")
    h.window.hide()  # looking elsewhere: a waiting job is worth a word now
    h.call(h.client.retry_waiting())
    h.wait(lambda: any(n.title == "Backup is waiting" for n in seen))
    h.wait(lambda: tray.status_text() == "1 waiting")

    disk.plug_in()
    h.call(h.client.retry_waiting())
    h.wait(lambda: any(n.title == "Backup finished" for n in seen))
    h.wait(lambda: tray.status_text() == "Idle")
    tray.show_window()
    assert h.window.isVisible()


def test_closing_hides_to_the_tray_and_quit_really_quits(
    qtbot, run, imported_ws: Path, tmp_path: Path
) -> None:
    from core.client import open_client

    client = run(open_client(imported_ws))
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(client, settings=settings)
    qtbot.addWidget(window)
    try:
        window.tray.available = True  # as on a desktop with a tray
        closed: list[bool] = []
        window.closed.connect(lambda: closed.append(True))
        seen = _collect(window)
        window.show()

        window.close()
        assert not window.isVisible() and closed == []
        assert seen[0].title == "Tierkeeper is still running"
        window.tray.show_window()
        window.close()
        assert len(seen) == 1  # told once, remembered

        window.tray.quit_action.trigger()
        assert closed == [True]
    finally:
        run(window.shutdown())
        run(client.close())
