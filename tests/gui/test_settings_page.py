"""The Settings page edits the workspace's real config.toml through the client."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from core.config import Config
from core.setup.models import ConfigPatch, FolderTargetSpec, SchedulePatch
from gui.settings_page import SettingsPage
from gui.setup_wizard import SetupWizard
from tests.gui.conftest import Harness
from tests.gui.tier2 import add_folder_target

pytestmark = pytest.mark.gui


def settings_page(h: Harness) -> SettingsPage:
    h.window.show_page("settings")
    page = h.window.settings_page
    h.wait(lambda: page.settings is not None)
    return page


def test_a_schedule_edit_is_saved_to_the_config(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    page = settings_page(h)
    assert not page.save_button.isEnabled()  # nothing edited yet
    form = page.schedule
    form.backup_box.setCurrentIndex(form.backup_box.findData("daily"))
    form.verify_box.setCurrentIndex(form.verify_box.findData("off"))
    form.quiet_check.click()
    page.keep_local.setValue(5)
    assert page.save_button.isEnabled() and page.revert_button.isEnabled()

    page.save_button.click()
    h.wait(lambda: "Saved" in page.message.shown())
    saved = h.call(h.client.config())
    assert saved.schedule.backup_every == "daily" and saved.schedule.verify_every == "off"
    assert saved.schedule.quiet_hours == "22:00-07:00" and saved.retention.local_sessions == 5
    on_disk = Config.load(tmp_path / "ws" / "config.toml")
    assert on_disk.schedule.backup_every == "daily"
    assert not page.save_button.isEnabled()


def test_a_change_made_elsewhere_shows_and_unsaved_edits_are_kept(
    make_window, tmp_path: Path
) -> None:
    h = make_window(tmp_path / "ws")
    page = settings_page(h)
    h.call(h.client.update_config(ConfigPatch(schedule=SchedulePatch(backup_every="hourly"))))
    h.wait(lambda: page.schedule.backup_box.currentData() == "hourly")  # config.changed

    page.keep_backups.setValue(7)  # an edit not saved yet...
    h.call(h.client.update_config(ConfigPatch(schedule=SchedulePatch(verify_every="daily"))))
    h.call(page.refresh())
    assert page.keep_backups.value() == 7 and page.dirty  # ...survives a reload
    page.revert_button.click()
    assert page.keep_backups.value() == 2 and page.schedule.verify_box.currentData() == "daily"


def test_a_refused_source_is_explained_and_the_edits_stay(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    page = settings_page(h)
    agent = tmp_path / "agent"
    agent.mkdir()
    page.add_source(str(agent))
    page.add_source(str(tmp_path / "gone"))
    page.save_button.click()
    h.wait(lambda: page.message.shown() != "")
    assert "is not a folder" in page.message.shown()
    assert page.sources() == [str(agent), str(tmp_path / "gone")]
    assert h.call(h.client.config()).sources == []

    page.sources_list.setCurrentRow(1)
    page.remove_source_button.click()
    page.save_button.click()
    h.wait(lambda: "Saved" in page.message.shown())
    assert h.call(h.client.config()).sources == [str(agent)]


def test_targets_are_tested_and_removed_from_their_row(make_window, run, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run(add_folder_target(ws, tmp_path / "disk"))
    h = make_window(ws)
    page = settings_page(h)
    row = page.rows["usb"]
    assert str(tmp_path / "disk") in row.where.text()
    assert not row.kit_button.isVisibleTo(row)  # not encrypted: no kit

    row.test_button.click()
    h.wait(lambda: row.test_button.isEnabled() and "Connected" in row.result.shown())
    assert "read back and deleted" in row.result.shown()

    row.remove_button.click()
    box = page.confirm
    assert box is not None and box.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert [t.name for t in h.call(h.client.config()).targets] == ["usb"]

    page.rows["usb"].remove_button.click()
    box = page.confirm
    assert box is not None
    remove = next(b for b in box.buttons() if b.text() == "Remove")
    remove.click()
    h.wait(lambda: "usb" not in page.rows)
    assert h.call(h.client.config()).targets == []
    assert page.no_targets.isVisibleTo(page)
    assert (tmp_path / "disk").is_dir()  # the backups on it are left alone


def test_an_encrypted_target_offers_its_recovery_kit(
    make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    h = make_window(tmp_path / "ws")
    page = settings_page(h)
    spec = FolderTargetSpec.model_validate(
        {"name": "safe", "path": str(tmp_path / "disk"), "passphrase": "a long passphrase here"}
    )
    h.call(h.client.add_target(spec))
    h.wait(lambda: "safe" in page.rows)  # config.changed brought it
    row = page.rows["safe"]
    assert "encrypted" in row.title.text() and row.kit_button.isVisibleTo(row)
    row.kit_button.click()
    dialog = page.saver.dialog
    assert dialog is not None
    dialog.selectFile(str(tmp_path / "kit.txt"))
    dialog.accept()
    h.wait(lambda: "Recovery kit saved" in row.result.shown())
    assert "safe" in (tmp_path / "kit.txt").read_text()


def test_run_set_up_wizard_opens_it_once(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    page = settings_page(h)
    page.wizard_button.click()
    wizard = h.window.wizard
    assert isinstance(wizard, SetupWizard) and wizard.isVisible()
    page.wizard_button.click()
    assert h.window.wizard is wizard
    wizard.reject()
    h.wait(lambda: not wizard.isVisible())
