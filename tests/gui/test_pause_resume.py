"""Pause and Resume in the dashboard's running list, on a backup of many sessions.

The person's promise: pausing keeps what is done, the line and the card say it is
paused, and Resume finishes the rest without backing up a session a second time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.client import open_client
from core.models import JobInfo, JobState
from gui.tier_card import Health
from tests.gui.tier2 import add_folder_target

pytestmark = pytest.mark.gui

SESSIONS = 100
SOURCE = (
    Path(__file__).resolve().parents[3]
    / "shared" / "fixtures" / "claude-code" / "claude-code-log-cases" / "edge_cases.jsonl"
)  # fmt: skip
PAUSE_AFTER = 4
"""Sessions done when Pause is pressed: mid-way, far from both ends."""


@pytest.fixture(scope="module")
def many_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with SESSIONS small sessions imported (each a copy of a fixture
    with its own id), and a folder target, built once for the module."""
    root = tmp_path_factory.mktemp("many")
    src, ws = root / "src", root / "ws"
    src.mkdir()
    data = SOURCE.read_bytes()
    for n in range(SESSIONS):
        (src / f"session-{n:03d}.jsonl").write_bytes(data)

    async def build() -> None:
        client = await open_client(ws)
        try:
            job = await client.start_import([str(src)])
            done = await client.wait_job(job.id)
            assert done.state == JobState.DONE and done.result is not None
            assert done.result["files_imported"] == SESSIONS
        finally:
            await client.close()

    asyncio.run(build())
    return ws


def _state(job: JobInfo | None) -> JobState | None:
    return None if job is None else job.state


def test_a_backup_paused_mid_way_resumes_and_finishes_without_redoing_sessions(
    make_window, run, many_template: Path, tmp_path: Path, qtbot
) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(many_template, ws)
    run(add_folder_target(ws, tmp_path / "disk"))
    h = make_window(ws)
    h.window.show_page("dashboard")
    page = h.window.dashboard
    h.wait(lambda: page.loaded and "usb" in page.target_cards)
    card = page.target_cards["usb"]

    card.backup_button.click()
    h.wait(lambda: len(page.running.rows) == 1)
    ((job_id, row),) = page.running.rows.items()
    assert row.pause_button.isVisibleTo(row) and row.pause_button.text() == "Pause"
    h.wait(lambda: row.job is not None and row.job.items_done >= PAUSE_AFTER, timeout=30)
    qtbot.mouseClick(row.pause_button, Qt.MouseButton.LeftButton)

    h.wait(lambda: _state(row.job) == JobState.PAUSED)
    assert row.job is not None
    done_at_pause = row.job.items_done
    assert PAUSE_AFTER <= done_at_pause < SESSIONS
    h.wait(lambda: row.pause_button.isEnabled() and row.pause_button.text() == "Resume")
    assert "paused" in row.detail.text() and not row.bar.isEnabled()
    h.wait(lambda: card.state.text() == "Backup paused")
    assert f"{done_at_pause} of {SESSIONS} sessions backed up" in card.text()
    assert card.backup_button.text() == "Resume backup"
    assert "1 paused" in h.window.service_label.text()
    stored = h.call(h.client.backups(target="usb"))
    assert len(stored) == done_at_pause  # each finished session is on the disk, once

    qtbot.mouseClick(row.pause_button, Qt.MouseButton.LeftButton)  # now "Resume"
    h.wait(lambda: page.running.job_ids() == [], timeout=60)
    h.wait(lambda: bool(page.recent.jobs) and page.recent.jobs[0].id == job_id)
    final = page.recent.jobs[0]
    assert final.state == JobState.DONE and final.result is not None
    assert final.result["sessions"] == SESSIONS and final.result["failed"] == []
    assert final.result["unchanged"] == 0  # a redone session would count as unchanged
    assert len(h.call(h.client.backups(target="usb"))) == SESSIONS
    h.wait(lambda: card.health() == Health.OK and card.backup_button.text() == "Back up now")
    assert "paused" not in h.window.service_label.text()
