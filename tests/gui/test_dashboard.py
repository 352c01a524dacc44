"""Dashboard: the tiers' health, Back up now / Verify / Retry now, running and recent jobs.

Everything runs for real: a workspace with the fixtures imported, a folder as
the backup target, the in-process service's job queue.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog

from core.config import TargetConfig
from core.models import JobInfo, JobState
from core.service import Service
from core.tier2.drive_target import keep_tokens
from core.tier2.targets import secrets_scope
from core.workspace import Workspace
from gui.dashboard_cards import ArchiveCard, LocalCard, NoTargetCard, TargetCard
from gui.job_summary import summary
from gui.tier_card import Health
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.gui.browser import Browser, visit
from tests.gui.tier2 import Disk, add_folder_target, back_up, fast_client, write_s3_target

pytestmark = pytest.mark.gui


@pytest.fixture
def disk(run, imported_ws: Path, tmp_path: Path) -> Disk:
    return run(add_folder_target(imported_ws, tmp_path / "disk"))


def _dashboard(h):  # type: ignore[no-untyped-def]
    h.window.show_page("dashboard")
    page = h.window.dashboard
    h.wait(lambda: page.loaded)
    return page


def _sessions(h) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.id for s in h.call(h.client.list_sessions())]


def test_without_a_target_the_dashboard_says_how_to_add_one(make_window, tmp_path) -> None:
    h = make_window(tmp_path / "ws")
    page = _dashboard(h)
    kinds = [type(c) for c in page.cards()]
    assert kinds == [LocalCard, NoTargetCard, ArchiveCard]
    local, none, archive = page.cards()
    assert "No sessions yet" in local.text()
    assert none.health() == Health.OFF
    assert "No backup target yet" in none.text()
    assert "tierkeeper target add folder" in none.text()
    assert "Not set up yet" in archive.text()
    assert "tierkeeper target add s3" in archive.text()
    assert page.recent.jobs == [] and page.recent.empty.isVisibleTo(page)
    assert page.running.job_ids() == [] and page.running.empty.isVisibleTo(page)
    button = h.window.backup_button
    assert not button.isEnabled()
    assert "Run set-up wizard" in button.toolTip()


def test_import_on_the_local_card_opens_the_sessions_import(make_window, tmp_path) -> None:
    h = make_window(tmp_path / "ws")
    page = _dashboard(h)
    page.local_card.import_button.click()
    assert h.window.current_page() == "sessions"
    dialogs = [d for d in h.window.findChildren(QFileDialog) if d.isVisible()]
    assert len(dialogs) == 1 and "Import sessions" in dialogs[0].windowTitle()
    dialogs[0].reject()


def test_back_up_now_runs_a_job_and_the_card_follows(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    page = _dashboard(h)
    card = page.target_cards["usb"]
    assert [type(c) for c in page.cards()] == [LocalCard, TargetCard, ArchiveCard]
    assert card.health() == Health.OFF and "No backups yet" in card.text()
    assert not card.verify_button.isEnabled()
    sessions = _sessions(h)
    assert f"{len(sessions)} sessions stored" in page.local_card.text()

    h.call(back_up(h.client, sessions[:1]))  # from elsewhere (the CLI, a hook): events update
    h.wait(lambda: "1 session ·" in card.text())
    assert card.health() == Health.OK and "Backed up" in card.text()
    assert "Last backup just now" in card.text()

    card.backup_button.click()
    h.wait(lambda: f"{len(sessions)} sessions ·" in card.text())
    h.wait(lambda: f"{len(sessions)} sessions · " in (page.recent.lines() or [""])[0])
    newest = page.recent.jobs[0]
    assert newest.kind == "backup" and newest.state == JobState.DONE
    assert page.recent.lines()[0].startswith("✓  Back up")
    assert "→" in page.recent.lines()[0]
    h.wait(lambda: card.backup_button.isEnabled() and card.backup_button.text() == "Back up now")
    assert card.verify_button.isEnabled()
    assert page.running.job_ids() == []


def test_the_header_button_backs_up_to_the_first_target(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    button = h.window.backup_button
    assert button.isEnabled() and "usb" in button.toolTip()
    sessions = _sessions(h)
    button.click()
    h.wait(lambda: h.window.history.row_count() == len(sessions))
    h.wait(lambda: button.isEnabled() and button.text() == "Backup now")
    assert {b.target for b in h.call(h.client.backups())} == {"usb"}


def test_an_unplugged_target_parks_the_job_and_retry_now_finishes_it(
    make_window, run, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    page = _dashboard(h)
    card = page.target_cards["usb"]
    disk.unplug()

    card.backup_button.click()
    h.wait(lambda: card.health() == Health.BUSY and "Unreachable" in card.text())
    assert "1 job waiting" in card.text()
    assert "usb is unreachable" in card.text()  # the reason, as the core words it
    assert card.retry_button.isVisibleTo(card)
    (waiting,) = page.running.job_ids()
    row = page.running.rows[waiting]
    assert "waiting: usb is unreachable" in row.detail.text()
    assert "waiting for a target" in h.window.service_label.text()

    disk.plug_in()
    card.retry_button.click()
    sessions = _sessions(h)
    h.wait(lambda: card.health() == Health.OK and f"{len(sessions)} sessions ·" in card.text())
    assert not card.retry_button.isVisibleTo(card)
    h.wait(lambda: page.running.job_ids() == [])
    h.wait(lambda: page.recent.jobs[0].id == waiting)
    assert page.recent.jobs[0].state == JobState.DONE


def test_a_waiting_job_can_be_cancelled_from_the_running_list(
    make_window, run, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    page = _dashboard(h)
    card = page.target_cards["usb"]
    disk.unplug()
    card.backup_button.click()
    h.wait(lambda: len(page.running.job_ids()) == 1 and card.health() == Health.BUSY)
    (job_id,) = page.running.job_ids()

    page.running.rows[job_id].cancel_button.click()
    h.wait(lambda: page.running.job_ids() == [])
    h.wait(lambda: bool(page.recent.jobs) and page.recent.jobs[0].id == job_id)
    assert page.recent.jobs[0].state == JobState.CANCELLED
    assert page.recent.lines()[0].startswith("⊘")
    h.wait(lambda: card.health() == Health.OFF)  # nothing waits any more, nothing backed up
    assert not card.retry_button.isVisibleTo(card)


def test_a_failed_verify_turns_the_card_red(make_window, imported_ws: Path, disk: Disk) -> None:
    h = make_window(imported_ws)
    page = _dashboard(h)
    card = page.target_cards["usb"]
    h.call(back_up(h.client, _sessions(h)))
    h.wait(lambda: card.health() == Health.OK)
    lost = disk.stored_files()[0]
    lost.unlink()  # the disk lost a file

    card.verify_button.click()
    h.wait(lambda: card.health() == Health.ERROR)
    assert "1 backup failed verification" in card.text()
    h.wait(lambda: bool(page.recent.jobs) and page.recent.jobs[0].kind == "verify")
    lines = page.recent.lines()
    assert "1 failed" in lines[0]
    assert f"{lost.name}: missing from the target" in lines[1]


def test_an_s3_target_is_the_archive_tier_not_a_backup_target(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    write_s3_target(imported_ws, "glacier", "team-archive")  # listed before the folder
    h = make_window(imported_ws)
    page = _dashboard(h)
    assert list(page.target_cards) == ["usb"]
    archive = page.archive_card
    assert archive.health() == Health.OK
    assert "glacier" in archive.text() and "s3://team-archive" in archive.text()
    assert "tierkeeper archive PHASE" in archive.text()
    assert "usb" in h.window.backup_button.toolTip()  # Backup now goes to Tier 2
    h.window.backup_button.click()
    h.wait(lambda: h.window.history.row_count() > 0)
    h.wait(lambda: h.window.backup_button.text() == "Backup now")
    assert {b.target for b in h.call(h.client.backups())} == {"usb"}


def _job(**kw: object) -> JobInfo:
    base = {"id": 1, "kind": "backup", "title": "t", "state": JobState.DONE, "created_at": "x"}
    return JobInfo.model_validate(base | kw)


def test_job_summaries_say_what_a_job_did() -> None:
    backup = _job(result={"sessions": 3, "raw_bytes": 34_000_000, "stored_bytes": 3_100_000,
                          "failed": []})  # fmt: skip
    assert summary(backup) == "3 sessions · 34.0 MB → 3.1 MB"
    partial = _job(result={"sessions": 2, "failed": ["x: gone"]})
    assert summary(partial).endswith("1 failed")
    assert summary(_job(kind="restore", result={"written": ["a", "b"]})) == "2 files restored"
    assert summary(_job(state=JobState.FAILED, error="disk full")) == "disk full"
    assert summary(_job(state=JobState.CANCELLED)) == "cancelled"
    imported = _job(kind="import", result={"files_imported": 4, "files_skipped": 2})
    assert summary(imported) == "4 files imported · 2 unchanged"


@pytest.fixture
def locked_usb(run, imported_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An encrypted folder target on a computer whose keyring lost its key: the passphrase."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    passphrase = "correct horse battery staple"

    async def add() -> None:
        svc = await Service.start(imported_ws)
        try:
            await svc.add_folder_target("usb", str(tmp_path / "disk"), passphrase=passphrase)
        finally:
            await svc.stop()

    run(add())
    shutil.rmtree(tmp_path / "xdg-data")  # a new computer: its keyring has no key
    return passphrase


def test_a_locked_target_is_unlocked_from_its_card_and_the_backup_goes_on(
    make_window, run, imported_ws: Path, locked_usb: str
) -> None:
    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    page = _dashboard(h)
    card = page.target_cards["usb"]
    card.backup_button.click()
    h.wait(lambda: "Locked" in card.text())
    assert card.unlock_button.isVisibleTo(card) and not card.retry_button.isVisibleTo(card)

    card.unlock_button.click()
    dialog = page.unlock_dialog
    assert dialog is not None and dialog.isVisible() and "usb" in dialog.windowTitle()
    assert not dialog.unlock_button.isEnabled()
    dialog.passphrase.setText("not the passphrase")
    dialog.unlock_button.click()
    h.wait(lambda: "does not open" in dialog.message.shown())
    assert dialog.isVisible() and dialog.passphrase.text() == ""  # another try, field cleared
    assert "Locked" in card.text()

    dialog.passphrase.setText(locked_usb)
    dialog.unlock_button.click()
    h.wait(lambda: page.unlock_dialog is None)
    sessions = _sessions(h)
    h.wait(lambda: card.health() == Health.OK and f"{len(sessions)} sessions ·" in card.text())
    assert not card.unlock_button.isVisibleTo(card)
    assert page.recent.jobs[0].state == JobState.DONE


drive = drive_fixture()


def test_a_signed_out_drive_is_signed_in_again_from_its_card(
    make_window, run, imported_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    drive: DriveHarness, browser: Browser,
) -> None:  # fmt: skip
    """Google revoked the access: the backup waits, the card offers Sign in again…, the
    browser opens on Google's page (the test server's), and the job goes on."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    s = drive.server
    gd = TargetConfig(name="gd", kind="drive", client_id=s.client_id, auth_uri=s.auth_uri,
                      token_uri=s.token_uri, api_root=drive.base_url)  # fmt: skip
    workspace = Workspace.at(imported_ws)
    keep_tokens(gd, secrets_scope(workspace.root), drive.credentials().refresh_token,
                s.client_secret)  # fmt: skip
    config = workspace.config()
    config.targets = [gd]
    config.save(workspace.config_path)
    s.tokens.revoke_all()  # the user removed the app's access in their Google account

    h = make_window(imported_ws, client=run(fast_client(imported_ws)))
    page = _dashboard(h)
    card = page.target_cards["gd"]
    card.backup_button.click()
    h.wait(lambda: "Signed out" in card.text())
    assert card.sign_in_button.isVisibleTo(card) and not card.retry_button.isVisibleTo(card)

    card.sign_in_button.click()  # the user walks away: Cancel calls the sign-in off
    h.wait(lambda: len(browser.urls) == 1)
    dialog = page.sign_in_dialog
    assert dialog is not None and dialog.waiting() and "Waiting for the browser" in (
        dialog.busy.label.text())  # fmt: skip
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    h.wait(lambda: page.sign_in_dialog is None)
    assert "Signed out" in card.text()

    card.sign_in_button.click()
    h.wait(lambda: len(browser.urls) == 2)
    assert browser.urls[1].startswith(s.auth_uri)
    assert "signed in" in h.run(asyncio.to_thread(visit, browser.urls[1])).lower()
    h.wait(lambda: page.sign_in_dialog is None)
    sessions = _sessions(h)
    h.wait(lambda: card.health() == Health.OK and f"{len(sessions)} sessions ·" in card.text())
    assert not card.sign_in_button.isVisibleTo(card)
    assert page.recent.jobs[0].state == JobState.DONE
