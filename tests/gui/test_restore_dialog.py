"""Restore: from the Sessions page, a dialog that restores real bytes from a real target."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.models import JobState
from gui.format import home_relative
from gui.restore_dialog import RestoreDialog, default_destination
from tests.gui.tier2 import Disk, add_folder_target, back_up, fast_client
from tests.support import CLAUDE_FIXTURES

pytestmark = pytest.mark.gui

ONE_SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
ONE_SESSION = "edge_cases"


@pytest.fixture
def disk(run, imported_ws: Path, tmp_path: Path) -> Disk:
    return run(add_folder_target(imported_ws, tmp_path / "disk"))


def _richest(h) -> tuple[str, list[Path]]:  # type: ignore[no-untyped-def]
    """A session with more than one source file, and those files."""
    for s in h.call(h.client.list_sessions()):
        detail = h.call(h.client.session(s.id, messages=False))
        if len(detail.sources) > 1:
            return s.id, [Path(src.path) for src in detail.sources]
    pytest.fail("the fixtures should hold a session with two source files")


def _open(h, session_id: str) -> RestoreDialog:  # type: ignore[no-untyped-def]
    page = h.window.sessions
    h.call(page.open_session(session_id))
    h.wait(lambda: page.restore_button.isEnabled())
    dialog = page.open_restore()
    assert dialog is not None
    h.call(dialog.wait_loaded())
    return dialog


def _restore(h, dialog: RestoreDialog) -> None:  # type: ignore[no-untyped-def]
    finished: list[object] = []
    dialog.job_finished.connect(finished.append)
    dialog.restore_button.click()
    h.wait(lambda: bool(finished))


def test_restore_is_offered_once_a_session_has_a_backup(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    page = h.window.sessions
    session_id, _files = _richest(h)
    h.call(page.open_session(session_id))
    h.wait(lambda: "Not backed up yet" in page.backup_text())
    assert not page.restore_button.isEnabled()
    h.call(back_up(h.client, [session_id]))
    h.wait(lambda: page.restore_button.isEnabled())  # backups.changed reached the page
    assert page.backup_text().startswith("✓ Backed up to usb")
    assert "verified" in page.backup_text()


def test_the_whole_session_comes_back_byte_for_byte(
    make_window, imported_ws: Path, disk: Disk, tmp_path: Path
) -> None:
    h = make_window(imported_ws)
    session_id, files = _richest(h)
    h.call(back_up(h.client, [session_id]))
    dialog = _open(h, session_id)
    assert dialog.isVisible()
    assert dialog.dest_edit.text() == home_relative(default_destination(session_id))
    assert dialog.target_label.text() == "usb" and not dialog.target_box.isVisibleTo(dialog)
    assert "on usb" in dialog.backup_label.text() and "verified" in dialog.backup_label.text()
    assert dialog.keep_both.isChecked() and dialog.whole.isChecked()
    dest = tmp_path / "restored"
    dialog.dest_edit.setText(str(dest))

    _restore(h, dialog)

    for original in files:
        assert (dest / original.name).read_bytes() == original.read_bytes()
    text = dialog.result_text()
    assert f"{len(files)} files restored to" in text
    assert dialog.open_button.isVisibleTo(dialog)
    assert dialog.cancel_button.text() == "Close"
    dialog.cancel_button.click()
    assert not dialog.isVisible()


def test_back_where_it_came_from_puts_a_lost_file_back_in_place(
    make_window, run, tmp_path: Path
) -> None:
    """The session is imported from a copy the test may lose (never the shared fixtures)."""
    from core.service import Service

    mine = tmp_path / "projects" / ONE_SOURCE.name
    mine.parent.mkdir()
    mine.write_bytes(ONE_SOURCE.read_bytes())
    ws = tmp_path / "own-ws"

    async def imported() -> None:
        async with await Service.start(ws) as svc:
            await svc.import_now([str(mine)])

    run(imported())
    run(add_folder_target(ws, tmp_path / "disk"))
    h = make_window(ws)
    h.call(back_up(h.client, [ONE_SESSION]))
    mine.unlink()
    dialog = _open(h, ONE_SESSION)
    assert dialog.into_folder.isChecked()  # a folder of its own stays the default
    dialog.original.setChecked(True)
    assert not dialog.dest_edit.isEnabled() and not dialog.browse_button.isEnabled()
    assert dialog.restore_button.isEnabled()

    _restore(h, dialog)

    assert mine.read_bytes() == ONE_SOURCE.read_bytes()
    text = dialog.result_text()
    assert "1 file restored where they came from" in text and mine.name in text


def test_one_file_keeps_both_copies_unless_told_to_overwrite(
    make_window, imported_ws: Path, disk: Disk, tmp_path: Path
) -> None:
    h = make_window(imported_ws)
    session_id, files = _richest(h)
    h.call(back_up(h.client, [session_id]))
    dest = tmp_path / "restored"
    one = files[0]

    for overwrite in (False, False, True):
        dialog = _open(h, session_id)
        dialog.dest_edit.setText(str(dest))
        dialog.one_file.setChecked(True)
        dialog.file_box.setCurrentText(one.name)
        dialog.overwrite.setChecked(overwrite)
        _restore(h, dialog)
        assert "1 file restored" in dialog.result_text()
        if overwrite:
            assert (dest / one.name).read_bytes() == one.read_bytes()
        (dest / one.name).write_bytes(b"edited since")  # an identical file gets no copy

    restored = sorted(p.name for p in dest.iterdir())
    assert restored == sorted([one.name, f"{one.stem} (restored 1){one.suffix}"])
    assert (dest / f"{one.stem} (restored 1){one.suffix}").read_bytes() == one.read_bytes()
    assert (dest / one.name).read_bytes() == b"edited since"


def test_an_unplugged_disk_is_named_and_try_again_works_once_it_is_back(
    make_window, run, imported_ws: Path, disk: Disk, tmp_path: Path
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    session_id, files = _richest(h)
    h.call(back_up(h.client, [session_id]))
    dialog = _open(h, session_id)
    dest = tmp_path / "restored"
    dialog.dest_edit.setText(str(dest))
    disk.unplug()

    _restore(h, dialog)
    assert "The restore failed:" in dialog.result_text()
    assert "is not available" in dialog.result_text()  # the core's words: which folder, why
    assert "is the disk connected?" in dialog.result_text()
    assert not dest.exists() or not any(dest.iterdir())

    disk.plug_in()
    assert dialog.restore_button.text() == "Try again"
    _restore(h, dialog)
    assert f"{len(files)} files restored" in dialog.result_text()
    assert sorted(p.name for p in dest.iterdir()) == sorted(f.name for f in files)


def test_cancel_stops_a_queued_restore_and_closes_the_dialog(
    make_window, run, imported_ws: Path, disk: Disk, tmp_path: Path
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    session_id, _files = _richest(h)
    h.call(back_up(h.client, [session_id]))
    disk.unplug()
    # a session not backed up yet (an unchanged one would be skipped without the disk)
    other = next(s.id for s in h.call(h.client.list_sessions()) if s.id != session_id)
    parked = h.call(h.client.start_backup([other], "usb"))
    assert h.call(h.client.wait_job(parked.id)).state == JobState.WAITING
    dialog = _open(h, session_id)
    dialog.dest_edit.setText(str(tmp_path / "restored"))

    dialog.restore_button.click()  # queued behind the parked backup on the same disk
    h.wait(lambda: dialog.job is not None and dialog.progress.isVisibleTo(dialog))
    job = dialog.job
    assert job is not None
    assert "waiting to start" in dialog.progress.detail.text()
    assert not dialog.form_widget.isEnabled()

    dialog.cancel_button.click()
    h.wait(lambda: not dialog.isVisible())
    jobs = {j.id: j for j in h.call(h.client.jobs())}
    assert jobs[job.id].state == JobState.CANCELLED
    assert jobs[parked.id].state == JobState.WAITING  # only the restore was cancelled


def test_a_failed_restore_says_why_and_can_be_tried_again(
    make_window, imported_ws: Path, disk: Disk, tmp_path: Path
) -> None:
    h = make_window(imported_ws)
    session_id, _files = _richest(h)
    h.call(back_up(h.client, [session_id]))
    dialog = _open(h, session_id)
    dialog.dest_edit.setText(str(tmp_path / "restored"))
    for stored in disk.stored_files():
        stored.write_bytes(b"damaged")  # the disk returns other bytes than were stored

    _restore(h, dialog)

    assert "The restore failed:" in dialog.result_text()
    assert dialog.restore_button.text() == "Try again" and dialog.restore_button.isEnabled()
    assert dialog.form_widget.isEnabled()
    assert not dialog.open_button.isVisibleTo(dialog)
