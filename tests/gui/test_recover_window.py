"""A new computer, a lost catalog: the window brings the sessions back from a backup.

Real parts: an "old machine" workspace backs a few fixture sessions up to a folder
(optionally encrypted, with a keyring file the test chose), then the window opens a
new workspace and is clicked through the wizard's restore road or the banner that
an empty (or damaged) catalog gets. Also the Settings page's phases choice and the
counts the wizard shows next to the agent folders it found.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWizard

from core.client import open_client
from core.config import Config
from core.models import JobState
from core.service import Service
from gui.session_model import IN_BACKUP_ONLY
from gui.setup_wizard import SetupWizard
from tests.gui.conftest import FIXTURES, Harness, Run

pytestmark = pytest.mark.gui
CASES = FIXTURES / "claude-code-log-cases"
FILES = ("edge_cases.jsonl", "edit_tool.jsonl", "dag_simple.jsonl")
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


async def old_machine(tmp: Path, disk: Path, passphrase: str | None = None) -> Path:
    """A workspace that backed three sessions up to `disk`; returned so a test can lose it."""
    ws = tmp / "old-ws"
    svc = await Service.start(ws)
    try:
        await svc.add_folder_target("usb", str(disk), passphrase=passphrase)
        await svc.import_now([str(CASES / name) for name in FILES])
        info = await svc.jobs.wait((await svc.start_backup([], "usb")).id)
        assert info.state == JobState.DONE, info.error
    finally:
        await svc.stop()
    return ws


def titles(h: Harness) -> list[str]:
    model = h.window.sessions.model
    return [model.data(model.index(r, 3)) for r in range(model.rowCount())]


def open_wizard(h: Harness) -> SetupWizard:
    wizard = h.window.open_setup_wizard()
    h.call(wizard.wait_loaded())
    return wizard


def to_restore_page(h: Harness, wizard: SetupWizard) -> None:
    """Welcome → "Restore from an existing backup" → Next."""
    wizard.welcome.restore_choice.click()
    wizard.button(QWizard.WizardButton.NextButton).click()
    h.wait(lambda: wizard.page_name() == "restore")


def open_backup(h: Harness, wizard: SetupWizard, disk: Path) -> None:
    page = wizard.restore
    page.folder_row.set_path(str(disk))
    page.open_button.click()
    h.wait(lambda: page.panel.contents is not None or page.message.shown() != "")


def restore_road(h: Harness, wizard: SetupWizard, disk: Path) -> None:
    """Welcome → "Restore from an existing backup" → Next → the folder → Open."""
    to_restore_page(h, wizard)
    open_backup(h, wizard, disk)


def lost_catalog(run: Run, tmp_path: Path, disk: Path) -> Path:
    """The old machine's workspace after the disk with its DB died (config.toml, with its
    targets, survived)."""
    ws = run(old_machine(tmp_path, disk))
    for part in (ws / "analytics").glob("agent_metrics.db*"):
        part.unlink()
    return ws


def test_the_wizard_restores_from_a_folder_and_the_sessions_show_in_backup_only(
    make_window, run: Run, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    run(old_machine(tmp_path, disk))
    h = make_window(tmp_path / "new-ws")
    wizard = open_wizard(h)
    restore_road(h, wizard, disk)
    page, panel = wizard.restore, wizard.restore.panel
    assert panel.contents is not None and panel.contents.sessions == len(FILES)
    assert "3 sessions" in panel.contents_label.text()
    assert not panel.needs_passphrase() and panel.rebuild_button.isEnabled()
    assert not wizard.button(QWizard.WizardButton.FinishButton).isEnabled()

    panel.rebuild_button.click()
    h.wait(lambda: panel.done())
    assert "3 sessions added" in panel.message.shown()
    assert not page.folder_form.isEnabled()  # the catalog came from it: not changed now
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    h.wait(finish.isEnabled)
    finish.click()
    h.wait(lambda: not wizard.isVisible())
    assert wizard.outcome is not None and wizard.outcome.restored
    h.wait(lambda: h.window.sessions.row_count() == len(FILES))
    assert h.window.current_page() == "sessions"
    assert all(t.endswith(IN_BACKUP_ONLY) for t in titles(h))
    assert h.window.recover_banner.message() == ""


def test_an_encrypted_backup_asks_for_its_passphrase_and_says_when_it_is_wrong(
    make_window, run: Run, tmp_path: Path, keyring_file: None
) -> None:
    disk = tmp_path / "disk"
    run(old_machine(tmp_path, disk, PASSPHRASE))
    shutil.rmtree(tmp_path / "xdg-data")  # the keyring went with the old machine
    h = make_window(tmp_path / "new-ws")
    wizard = open_wizard(h)
    restore_road(h, wizard, disk)
    panel = wizard.restore.panel
    assert panel.contents is not None and panel.contents.encrypted
    assert panel.needs_passphrase() and not panel.rebuild_button.isEnabled()

    panel.passphrase.setText("not the passphrase at all")
    panel.rebuild_button.click()
    h.wait(lambda: "does not open" in panel.message.shown())
    assert panel.job is None and h.call(h.client.jobs()) == []
    assert panel.passphrase.text()  # kept, to be corrected

    panel.passphrase.setText(PASSPHRASE)
    panel.rebuild_button.click()
    h.wait(lambda: panel.done())
    assert panel.passphrase.text() == ""
    h.wait(lambda: h.window.sessions.row_count() == len(FILES))


def test_a_lost_catalog_gets_a_banner_whose_button_rebuilds_it(
    make_window, run: Run, tmp_path: Path
) -> None:
    ws = lost_catalog(run, tmp_path, tmp_path / "disk")
    h = make_window(ws)
    w = h.window
    h.wait(lambda: w.recover_banner.message() != "")
    assert "catalog is empty" in w.recover_banner.message()
    assert "3 backed-up sessions" in w.recover_banner.message()
    assert w.sessions.row_count() == 0

    w.recover_banner.button.click()
    dialog = w.recover_dialog
    assert dialog is not None and dialog.isVisible()
    h.call(dialog.wait_loaded())
    dialog.panel.rebuild_button.click()
    h.wait(lambda: dialog.panel.done())
    h.wait(lambda: w.sessions.row_count() == len(FILES))
    assert w.recover_banner.message() == ""


def test_a_damaged_catalog_is_set_aside_and_the_banner_says_where(
    make_window, run: Run, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    ws = run(old_machine(tmp_path, disk))
    for part in (ws / "analytics").glob("agent_metrics.db-*"):
        part.unlink()
    db = ws / "analytics" / "agent_metrics.db"
    db.write_bytes(b"this is not a database" * 100)
    h = make_window(ws, client=run(open_client(ws, set_aside_damaged=True)))
    w = h.window
    h.wait(lambda: w.recover_banner.message() != "")
    assert "moved aside" in w.recover_banner.message()
    (aside,) = (ws / "analytics").glob("agent_metrics.db.damaged-*")
    assert aside.read_bytes() == b"this is not a database" * 100  # untouched
    assert aside.name in w.recover_banner.message()


def test_a_new_workspace_with_an_empty_target_gets_no_banner(
    make_window, run: Run, tmp_path: Path
) -> None:
    from tests.gui.tier2 import add_folder_target

    ws = tmp_path / "ws"
    run(add_folder_target(ws, tmp_path / "disk"))
    h = make_window(ws)
    assert not h.call(h.window.check_catalog())
    assert h.window.recover_banner.message() == ""


def test_archive_on_close_is_saved_from_settings(make_window, tmp_path: Path) -> None:
    h = make_window(tmp_path / "ws")
    page = h.window.settings_page
    h.window.show_page("settings")
    assert page.archive_on_close.currentData() == "ask"
    page.archive_on_close.setCurrentIndex(page.archive_on_close.findData("always"))
    assert page.save_button.isEnabled()
    page.save_button.click()
    h.wait(lambda: not page.dirty)
    assert h.call(h.client.config()).phases.archive_on_close == "always"
    assert 'archive_on_close = "always"' in (tmp_path / "ws" / "config.toml").read_text()


def test_the_wizard_counts_the_sessions_in_each_agent_folder_found(
    make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    project = home / ".claude" / "projects" / "-home-dev-cases"
    project.mkdir(parents=True)
    for name in FILES:
        shutil.copy(CASES / name, project / name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    h = make_window(tmp_path / "ws")
    wizard = open_wizard(h)
    (found,) = wizard.state.detected
    assert (found.sessions, found.files) == (3, 3)
    assert wizard.sources.list.item(0).text().endswith("· 3 sessions")


def test_a_backup_folder_under_home_reads_as_tilde_and_still_opens(
    make_window, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder picked (or given) under home shows as `~/…`, as paths do everywhere in the
    window (and no user name lands in a screenshot); what is opened is the real folder."""
    disk = tmp_path / "disk"
    run(old_machine(tmp_path, disk))
    monkeypatch.setenv("HOME", str(tmp_path))
    h = make_window(tmp_path / "new-ws")
    wizard = open_wizard(h)
    to_restore_page(h, wizard)
    page = wizard.restore

    page.folder_row.set_path(str(disk))
    assert page.folder_row.edit.text() == "~/disk"
    page.folder_row.set_path("/not/under/home")
    assert page.folder_row.edit.text() == "/not/under/home"
    open_backup(h, wizard, disk)

    assert page.panel.contents is not None and page.panel.contents.sessions == len(FILES)
    (target,) = h.call(h.client.config()).targets
    assert target.path == str(disk)


def test_the_banner_offers_the_target_that_answers_when_the_first_is_unplugged(
    make_window, run: Run, tmp_path: Path
) -> None:
    from tests.gui.tier2 import add_folder_target

    ws = lost_catalog(run, tmp_path, tmp_path / "disk")
    gone = tmp_path / "unplugged"
    run(add_folder_target(ws, gone, name="away"))
    config = Config.load(ws / "config.toml")  # the unplugged disk first, as if added first
    config.targets.reverse()
    config.save(ws / "config.toml")
    assert [t.name for t in Config.load(ws / "config.toml").targets] == ["away", "usb"]
    shutil.rmtree(gone)

    h = make_window(ws)

    h.wait(lambda: h.window.recover_banner.message() != "")
    assert "usb holds 3 backed-up sessions" in h.window.recover_banner.message()
    assert h.window.recover_banner.target == "usb"
