"""The set-up wizard, clicked through on a real window and a real service.

Targets are real: a folder on disk, the Drive test server signed in to through
its loopback OAuth (the test plays the browser), SeaweedFS for S3. Secrets land
in a keyring file the test chose. The user's home is a temporary one, so the
wizard finds agent history only where the test put it.
"""

from __future__ import annotations

import asyncio
import shutil
import stat
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWizard

from core.client import ConfigPatch, FolderTargetSpec, JobInfo
from core.errors import ExitCode
from core.models import JobState
from gui.app import main
from gui.setup_wizard import SEEN_KEY, SetupWizard, wants_first_run
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.gui.browser import Browser, visit
from tests.gui.conftest import FIXTURES, Harness
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401

pytestmark = pytest.mark.gui
drive = drive_fixture()
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with Claude Code history in its usual place, and a keyring file."""
    home = tmp_path / "home"
    projects = home / ".claude" / "projects"
    shutil.copytree(FIXTURES / "claude-code-log-cases", projects / "-home-dev-cases")
    monkeypatch.setenv("HOME", str(home))
    for var in ("CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "APPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return home


def open_wizard(h: Harness) -> SetupWizard:
    wizard = h.window.open_setup_wizard()
    h.call(wizard.wait_loaded())
    assert wizard.isVisible()
    return wizard


def click_next(h: Harness, wizard: SetupWizard) -> None:
    """Next (or the commit page's button), then wait until the page has changed."""
    before = wizard.currentId()
    for which in (QWizard.WizardButton.CommitButton, QWizard.WizardButton.NextButton):
        button = wizard.button(which)
        if button.isVisible():
            assert button.isEnabled(), f"{which} is disabled on {wizard.page_name()}"
            button.click()
            break
    h.wait(lambda: wizard.currentId() != before)


def go_to(h: Harness, wizard: SetupWizard, page: str) -> None:
    while wizard.page_name() != page:
        click_next(h, wizard)


def choose_folder(wizard: SetupWizard, folder: Path) -> None:
    page = wizard.backup
    page.folder_choice.click()
    page.folder_row.edit.setText(str(folder))


def skip_archive(h: Harness, wizard: SetupWizard) -> None:
    wizard.archive.skip_choice.click()
    click_next(h, wizard)


async def until_backed_up(h: Harness, sessions: int) -> None:
    while len({b.session_id for b in await h.client.backups()}) < sessions:
        await asyncio.sleep(0.05)


async def new_backup_job(h: Harness, before: set[int]) -> JobInfo:
    while True:
        jobs = [j for j in await h.client.jobs() if j.kind == "backup" and j.id not in before]
        if jobs:
            return await h.client.wait_job(jobs[0].id)
        await asyncio.sleep(0.05)


def test_first_run_is_offered_once_on_an_empty_workspace(
    make_window, home: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    settings = h.call(h.client.config())
    remembered = QSettings(str(tmp_path / "first.ini"), QSettings.Format.IniFormat)
    assert wants_first_run(settings, remembered)
    remembered.setValue(SEEN_KEY, True)
    assert not wants_first_run(settings, remembered)

    wizard = h.call(h.window.offer_first_run())
    assert wizard is not None and wizard.isVisible()
    wizard.button(QWizard.WizardButton.CancelButton).click()
    h.wait(lambda: not wizard.isVisible())
    assert h.call(h.window.offer_first_run()) is None  # dismissed: not again


def test_the_default_backup_folder_alone_still_gets_the_wizard(
    make_window, home: Path, tmp_path: Path
) -> None:
    """`make run` adds a local folder target before the first window: not a set-up yet."""
    h = make_window(tmp_path / "ws")
    h.call(h.client.add_target(FolderTargetSpec(name="local", path=str(tmp_path / "backup"))))
    remembered = QSettings(str(tmp_path / "first.ini"), QSettings.Format.IniFormat)
    assert wants_first_run(h.call(h.client.config()), remembered)
    h.call(h.client.update_config(ConfigPatch(sources=[str(tmp_path)])))
    assert not wants_first_run(h.call(h.client.config()), remembered)


def test_a_new_user_finishes_with_a_folder_target_and_backs_up(
    make_window, home: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    assert str(tmp_path / "ws") in wizard.welcome.workspace_label.toolTip()
    click_next(h, wizard)

    projects = str(home / ".claude" / "projects")
    assert wizard.sources.chosen() == [projects]  # detected, and checked on a first run
    assert "Claude Code" in wizard.sources.list.item(0).text()
    click_next(h, wizard)
    form = wizard.schedule.form
    form.backup_box.setCurrentIndex(form.backup_box.findData("hourly"))
    form.quiet_check.click()
    click_next(h, wizard)
    assert wizard.encryption.plain.isChecked()
    click_next(h, wizard)

    disk = tmp_path / "disk"
    choose_folder(wizard, disk)
    click_next(h, wizard)  # a real check: the folder is made and a probe round-trips
    assert wizard.page_name() == "archive" and disk.is_dir()
    assert [t.name for t in h.call(h.client.config()).targets] == ["backup"]
    skip_archive(h, wizard)

    summary = wizard.summary.summary.text()
    assert "backup" in summary and str(disk) in summary
    assert "every hour" in summary and "quiet hours 22:00–07:00" in summary
    assert wizard.summary.import_check.isChecked() and wizard.summary.backup_check.isChecked()
    assert not wizard.summary.kits.isVisibleTo(wizard.summary)  # nothing encrypted
    wizard.button(QWizard.WizardButton.FinishButton).click()
    h.wait(lambda: not wizard.isVisible())

    saved = h.call(h.client.config())
    assert saved.sources == [projects] and saved.schedule.backup_every == "hourly"
    assert saved.schedule.quiet_hours == "22:00-07:00"
    sessions = len(list((home / ".claude" / "projects").rglob("*.jsonl")))
    h.run(until_backed_up(h, sessions), 60)  # the import ran, then the first backup
    assert h.window.current_page() == "sessions" and h.window.sessions.row_count() == sessions

    dashboard = h.window.dashboard
    h.wait(lambda: "backup" in dashboard.target_cards)
    assert not dashboard.no_target_card.isVisibleTo(dashboard)
    h.wait(lambda: h.window.backup_button.isEnabled())
    before = {j.id for j in h.call(h.client.jobs()) if j.kind == "backup"}
    h.window.backup_button.click()  # Backup now works: a job to the new target
    job = h.run(new_backup_job(h, before))
    assert job.state == JobState.DONE and job.resource == "target:backup"


def test_encryption_refuses_a_mismatch_and_the_kit_is_saved_to_a_file(
    make_window, home: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    go_to(h, wizard, "encryption")
    page = wizard.encryption
    page.encrypted.click()
    page.passphrase.setText(PASSPHRASE)
    assert page.strength_label.text() == "Strong"
    page.repeat.setText(PASSPHRASE + "!")
    wizard.button(QWizard.WizardButton.CommitButton).click()
    assert wizard.page_name() == "encryption"  # refused, with the reason by the field
    assert "differ" in page.message.shown()
    assert page.passphrase.text() == PASSPHRASE  # what was typed is kept
    page.passphrase.setText("short")
    assert "Too short" in page.strength_label.text()
    page.passphrase.setText(PASSPHRASE)
    page.repeat.setText(PASSPHRASE)
    click_next(h, wizard)

    assert "encrypted with your passphrase" in wizard.backup.encryption_label.text()
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()  # committed
    choose_folder(wizard, tmp_path / "disk")
    click_next(h, wizard)
    skip_archive(h, wizard)
    (target,) = h.call(h.client.config()).targets
    assert target.encryption is not None

    summary = wizard.summary
    assert summary.kits.isVisibleTo(summary) and summary.unsaved_kits() == ["backup"]
    assert "Not saved yet" in summary.kit_labels["backup"].text()
    summary.kit_buttons["backup"].click()
    dialog = summary.saver.dialog
    assert dialog is not None and dialog.isVisible()
    kit_path = tmp_path / "usb-stick" / "kit.txt"
    kit_path.parent.mkdir()
    dialog.selectFile(str(kit_path))
    dialog.accept()
    h.wait(lambda: summary.unsaved_kits() == [])
    assert summary.saver.saved["backup"] == kit_path
    text = kit_path.read_text()
    assert "backup" in text and PASSPHRASE not in text
    assert stat.S_IMODE(kit_path.stat().st_mode) == 0o600
    assert "Saved to" in summary.kit_labels["backup"].text()
    config = (tmp_path / "ws" / "config.toml").read_text()
    assert PASSPHRASE not in config


def test_a_changed_folder_replaces_the_target_and_a_bad_one_keeps_the_input(
    make_window, home: Path, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    go_to(h, wizard, "backup")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    choose_folder(wizard, blocker / "inside")
    wizard.button(QWizard.WizardButton.NextButton).click()
    h.wait(lambda: wizard.backup.message.shown() != "")
    assert wizard.page_name() == "backup"
    assert wizard.backup.folder_row.path() == str(blocker / "inside")
    assert h.call(h.client.config()).targets == []

    choose_folder(wizard, tmp_path / "first")
    click_next(h, wizard)
    wizard.back()
    choose_folder(wizard, tmp_path / "second")
    click_next(h, wizard)
    (target,) = h.call(h.client.config()).targets
    assert target.path == str(tmp_path / "second")


def test_google_drive_connects_in_the_browser_and_shows_account_and_quota(
    make_window, home: Path, tmp_path: Path, drive: DriveHarness, browser: Browser
) -> None:
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    go_to(h, wizard, "backup")
    page = wizard.backup
    page.drive_choice.click()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()  # not connected
    connect = page.drive
    s = drive.server
    connect.client_id_edit.setText(s.client_id)
    connect.secret_edit.setText(s.client_secret)
    connect.advanced_check.click()
    connect.auth_edit.setText(s.auth_uri)
    connect.token_edit.setText(s.token_uri)
    connect.api_edit.setText(drive.base_url)

    connect.connect_button.click()  # the user walks away: Cancel calls the sign-in off
    h.wait(lambda: len(browser.urls) == 1)
    assert connect.busy.isVisibleTo(connect)
    assert "Waiting for the browser" in connect.busy.label.text()
    connect.cancel_button.click()
    h.wait(lambda: "cancelled" in connect.message.shown())
    assert connect.connect_button.isVisibleTo(connect) and connect.fields.isEnabled()
    assert h.call(h.client.config()).targets == []

    connect.connect_button.click()
    h.wait(lambda: len(browser.urls) == 2)
    assert browser.urls[1].startswith(s.auth_uri)
    assert "signed in" in h.run(asyncio.to_thread(visit, browser.urls[1])).lower()
    h.wait(connect.is_connected)
    shown = connect.message.shown()
    assert "test.user@example.com" in shown and "free of 16.1 GB" in shown
    assert s.client_secret not in shown
    click_next(h, wizard)
    assert wizard.page_name() == "archive"
    (target,) = h.call(h.client.config()).targets
    assert target.kind == "drive" and target.account == "test.user@example.com"
    assert s.client_secret not in (tmp_path / "ws" / "config.toml").read_text()


def test_s3_test_connection_against_seaweedfs_then_the_archive_is_saved(
    make_window,
    home: Path,
    tmp_path: Path,
    seaweed: SeaweedHarness,  # noqa: F811
) -> None:
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    go_to(h, wizard, "backup")
    wizard.backup.skip_choice.click()
    click_next(h, wizard)
    page = wizard.archive
    h.wait(lambda: "a month" in page.cost_label.text())
    assert "100 GB" in page.cost_label.text()  # nothing imported: an example size is priced
    page.endpoint_edit.setText(seaweed.endpoint)
    page.region_edit.setText(seaweed.region)
    page.bucket_edit.setText("tk-no-such-bucket")
    page.access_edit.setText(seaweed.access_key)
    page.secret_edit.setText(seaweed.secret_key)
    page.class_box.setCurrentIndex(page.class_box.findData("STANDARD_IA"))

    page.test_button.click()
    h.wait(lambda: page.test_button.isEnabled() and "Testing" not in page.test_result.shown())
    assert "does not exist" in page.test_result.shown()
    assert page.secret_edit.text() == seaweed.secret_key  # kept for the next try

    page.bucket_edit.setText(seaweed.make_bucket())
    page.test_button.click()
    h.wait(lambda: page.test_button.isEnabled() and "Testing" not in page.test_result.shown())
    assert "Connected" in page.test_result.shown() and "deleted" in page.test_result.shown()
    assert h.call(h.client.config()).targets == []  # a test saves nothing

    click_next(h, wizard)
    assert wizard.page_name() == "summary"
    (target,) = h.call(h.client.config()).targets
    assert target.kind == "s3" and target.storage_class == "STANDARD_IA"
    assert "Archive</b>: archive" in wizard.summary.summary.text()
    config = (tmp_path / "ws" / "config.toml").read_text()
    assert seaweed.secret_key not in config and seaweed.access_key not in config


def test_the_app_saves_a_wizard_page_for_the_docs(qapp, home: Path, tmp_path: Path) -> None:
    png = tmp_path / "wizard.png"
    argv = ["--workspace", str(tmp_path / "ws"), "--screenshot", str(png),
            "--dialog", "wizard", "--wizard-page", "archive"]  # fmt: skip
    assert main(argv) == ExitCode.OK
    image = QImage(str(png))
    assert not image.isNull() and image.width() < 900  # the wizard alone, not the window
