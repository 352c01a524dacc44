"""Sessions: import through the page, the table matches the service, details read well."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.models import JobInfo, JobState
from gui.job_progress import JobProgress, describe
from gui.session_model import ID_ROLE, SORT_ROLE

pytestmark = pytest.mark.gui


def test_import_from_the_empty_state_fills_the_table(
    make_window, claude_fixtures: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    page = h.window.sessions
    assert page.showing_empty_state()
    finished: list[JobInfo] = []
    page.import_finished.connect(finished.append)
    topics: list[str] = []
    h.window.pump.job.connect(lambda topic, _job: topics.append(topic))

    job = h.call(page.import_paths([str(claude_fixtures)]))

    assert job.state == JobState.DONE
    assert finished and finished[0].id == job.id
    sessions = h.call(h.client.list_sessions())
    assert len(sessions) > 10
    assert page.row_count() == len(sessions)
    assert not page.showing_empty_state()
    assert not page.progress.isVisible()
    assert page.import_button.isEnabled()
    assert f"{len(sessions)} sessions" == page.count_label.text()
    h.wait(lambda: "job.finished" in topics)  # the job's life arrived as events
    assert topics[0] in ("job.queued", "job.started")
    # the header catches up with the new totals
    h.wait(lambda: f"{len(sessions)} sessions" in h.window.facts_label.text())


def test_the_table_lists_what_the_service_returns(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    sessions = h.call(h.client.list_sessions())
    assert page.row_count() == len(sessions)
    shown = {page.proxy.index(r, 3).data(Qt.ItemDataRole.ToolTipRole) for r in range(10)}
    assert all(s is not None for s in shown)
    ids = {
        page.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 3) for r in range(page.row_count())
    }
    assert ids == {s.id for s in sessions}


def test_sorting_by_messages_is_numeric(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    page.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)
    counts = [int(page.proxy.index(r, 4).data()) for r in range(page.row_count())]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > 9  # "12" sorts above "9" only when compared as numbers
    sizes = [page.proxy.index(r, 7).data(SORT_ROLE) for r in range(page.row_count())]
    page.table.sortByColumn(7, Qt.SortOrder.AscendingOrder)
    sizes = [page.proxy.index(r, 7).data(SORT_ROLE) for r in range(page.row_count())]
    assert sizes == sorted(sizes)


def test_filter_box_narrows_the_table(make_window, qtbot, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    total = page.row_count()
    target = next(s for s in h.call(h.client.list_sessions()) if s.project)
    qtbot.keyClicks(page.filter_edit, target.id)
    shown = [page.proxy.index(r, 0).data(ID_ROLE) for r in range(page.row_count())]
    assert 1 <= len(shown) < total
    assert target.id in shown
    assert all(target.id.casefold() in sid.casefold() for sid in shown)
    assert page.count_label.text() == f"{len(shown)} of {total} sessions"
    page.filter_edit.clear()
    assert page.row_count() == total


def test_selecting_a_session_shows_its_messages(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    sessions = h.call(h.client.list_sessions())
    richest = max(sessions, key=lambda s: s.message_count)
    detail = h.call(h.client.session(richest.id))
    h.call(page.open_session(richest.id))
    assert page.current_session_id() == richest.id
    text = page.details.toPlainText()
    assert (richest.title or richest.id) in text
    first_text = next(m.text for m in detail.messages if m.text)
    assert first_text.strip().splitlines()[0][:40] in text
    roles = {m.role for m in detail.messages if m.role}
    assert all(role in text for role in roles)


def _first_long(h, pick):
    """(session id, message, its long text) of the first message `pick` finds long."""
    sessions = h.call(h.client.list_sessions())
    for s in sorted(sessions, key=lambda s: -s.message_count):
        for m in h.call(h.client.session(s.id)).messages:
            text = pick(m)
            if text and len(text) > 400:
                return s.id, m, text
    pytest.fail("the fixtures should hold a message with a long folded part")


@pytest.mark.parametrize(
    ("pick", "label"),
    [
        (lambda m: m.tools, "tools"),
        (lambda m: m.text if m.role == "metadata" else None, "details"),  # sidecar JSON
    ],
)
def test_long_payloads_are_folded_until_clicked(
    make_window, imported_ws: Path, pick, label: str
) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    session_id, message, text = _first_long(h, pick)
    h.call(page.open_session(session_id))
    tail = text[300:360]
    assert tail not in page.details.toPlainText()
    page.details.anchorClicked.emit(f"toggle:{message.id}")  # as a click on "▸ {label}"
    assert tail in page.details.toPlainText()


def test_job_progress_follows_its_job_and_offers_cancel(qtbot) -> None:
    widget = JobProgress()
    qtbot.addWidget(widget)
    job = JobInfo(
        id=7, kind="import", title="Import projects", state=JobState.RUNNING,
        bytes_total=4_000_000, bytes_done=1_000_000, items_total=8, items_done=2,
        eta_seconds=12.0, created_at="2025-06-12T10:00:00Z",
    )  # fmt: skip
    widget.watch(job)
    assert widget.bar.maximum() == 1000 and widget.bar.value() == 250
    assert widget.title.text() == "Import projects"
    assert widget.detail.text() == describe(job)
    assert "2 of 8 files" in widget.detail.text() and "12 s left" in widget.detail.text()
    other = job.model_copy(update={"id": 8, "bytes_done": 3_900_000})
    widget.update_job(other)  # another job's events do not move this bar
    assert widget.bar.value() == 250
    widget.update_job(job.model_copy(update={"bytes_done": 3_000_000}))
    assert widget.bar.value() == 750
    with qtbot.waitSignal(widget.cancel_requested) as blocker:
        widget.cancel_button.click()
    assert blocker.args == [7]
    assert not widget.cancel_button.isEnabled()


def test_job_without_a_size_shows_a_busy_bar(qtbot) -> None:
    widget = JobProgress()
    qtbot.addWidget(widget)
    widget.watch(
        JobInfo(id=1, kind="import", title="Import", state=JobState.QUEUED, created_at="now")
    )
    assert (widget.bar.minimum(), widget.bar.maximum()) == (0, 0)
    assert "waiting to start" in widget.detail.text()


def test_a_backup_counts_sessions_not_files() -> None:
    """The running list said "0 of 38 files" for a backup of 38 sessions."""
    job = JobInfo(id=9, kind="backup", title="Back up 38 session(s) to usb",
                  state=JobState.RUNNING, items_total=38, items_done=5,
                  created_at="2025-06-12T10:00:00Z")  # fmt: skip
    assert describe(job).startswith("5 of 38 sessions")
