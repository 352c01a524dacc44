"""After a rebuild, sessions "in backup only" come back from the Sessions page.

Real parts: an old workspace backs three fixture sessions up to a folder (encrypted in
one test), a new window rebuilds its catalog from that folder by the wizard's restore
road, then sessions are selected and brought back with the details pane's button or
the table's context menu. What a user relies on is checked: the rows stop being greyed,
the conversation shows, Search finds its words, and the files in the workspace are the
originals byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWizard

from core.client import SearchQuery
from core.models import JobState
from core.service import Service
from gui.session_model import IN_BACKUP_ONLY
from tests.gui.conftest import Harness, Run
from tests.gui.test_recover_window import (
    CASES,
    FILES,
    PASSPHRASE,
    keyring_file,  # noqa: F401
    old_machine,
    open_wizard,
    restore_road,
)

pytestmark = pytest.mark.gui


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rebuilt_by_the_wizard(h: Harness, disk: Path) -> None:
    wizard = open_wizard(h)
    restore_road(h, wizard, disk)
    wizard.restore.panel.rebuild_button.click()
    h.wait(lambda: wizard.restore.panel.done())
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    h.wait(finish.isEnabled)
    finish.click()
    h.wait(lambda: h.window.sessions.row_count() == len(FILES))


def greyed(h: Harness, session_id: str) -> bool:
    model = h.window.sessions.model
    row = model.row_of(session_id)
    return bool(model.session_at(row).in_backup_only) and str(
        model.data(model.index(row, 3))
    ).endswith(IN_BACKUP_ONLY)


def original_of(h: Harness, session_id: str) -> Path:
    """The fixture file a session was imported from (the catalog keeps its name)."""
    detail = h.call(h.client.session(session_id, messages=False))
    names = {Path(s.path).name for s in detail.sources}
    (name,) = names & set(FILES)
    return CASES / name


def a_word_of(h: Harness, session_id: str) -> str:
    detail = h.call(h.client.session(session_id))
    for m in detail.messages:
        for word in re.findall(r"[A-Za-z]{7,}", m.text or ""):
            return word.lower()
    raise AssertionError(f"{session_id} has no word to search for")


def test_a_session_is_brought_back_by_its_button_and_two_by_the_context_menu(
    make_window, run: Run, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    run(old_machine(tmp_path, disk))
    ws = tmp_path / "new-ws"
    h = make_window(ws)
    rebuilt_by_the_wizard(h, disk)
    page = h.window.sessions
    h.window.show_page("sessions")
    ids = [s.id for s in page.model.sessions()]
    assert all(greyed(h, s) for s in ids)

    first = "edge_cases"  # it has words to search for (edit_tool only tool calls)
    ids = [first] + [s for s in ids if s != first]
    page.select_sessions([first])
    h.wait(lambda: "in a backup only" in page.details_html())
    assert page.bring_back_button.isVisible() and page.bring_back_button.text() == "Bring back"
    page.bring_back_button.click()
    h.wait(lambda: page.bring_back.final is not None)
    final = page.bring_back.final
    assert final is not None and final.state == JobState.DONE, final.error
    assert final.title == "Bring back 1 session from backup"
    assert "1 session brought back" in page.bring_back.message.shown()
    h.wait(lambda: not greyed(h, first))
    assert [s for s in ids if greyed(h, s)] == ids[1:]  # only the one asked for
    assert page.bring_back_button.isHidden()  # it is local now: nothing to bring back

    # its conversation shows, and Search finds its words
    detail = h.call(h.client.session(first))
    assert detail.messages and not detail.session.in_backup_only
    h.wait(lambda: "in a backup only" not in page.details_html())
    assert "has no stored messages" not in page.details_html()
    word = a_word_of(h, first)
    h.window.show_page("search")
    search = h.window.search
    search.query_edit.setText(word)
    h.call(search.search_now())  # type: ignore[arg-type]
    assert search.hit_count() > 0
    assert first in {search.hit_at(r)[0] for r in range(search.hit_count())}

    restored = ws / "restored" / first
    source = original_of(h, first)
    assert sha(restored / source.name) == sha(source)

    # the other two at once, from the table's context menu
    h.window.show_page("sessions")
    page.select_sessions(ids[1:])
    assert sorted(page.selected_in_backup_only()) == sorted(ids[1:])
    assert page.bring_back_button.text() == "Bring back 2"
    menu = page.make_context_menu()
    assert menu is not None
    (bring,) = [a for a in menu.actions() if a.text().startswith("Bring back")]
    assert bring.text() == "Bring back 2 sessions" and bring.isEnabled()
    page.bring_back.final = None
    bring.trigger()
    h.wait(lambda: page.bring_back.final is not None)
    assert "2 sessions brought back" in page.bring_back.message.shown()
    h.wait(lambda: not any(greyed(h, s) for s in ids))
    for sid in ids[1:]:
        source = original_of(h, sid)
        assert sha(ws / "restored" / sid / source.name) == sha(source)
    assert h.call(h.client.search(SearchQuery(text=word, limit=50)))


async def rebuilt_elsewhere(ws: Path, disk: Path, secret: str) -> None:
    """The rebuild done (by the CLI, say); only the bring-back is left to the window."""
    svc = await Service.start(ws)
    try:
        await svc.add_folder_target("usb", str(disk))
        await svc.recover(secret=secret)
    finally:
        await svc.stop()


def test_an_encrypted_target_asks_for_its_passphrase_before_bringing_back(
    make_window,
    run: Run,
    tmp_path: Path,
    keyring_file: None,  # noqa: F811
) -> None:
    disk = tmp_path / "disk"
    run(old_machine(tmp_path, disk, PASSPHRASE))
    shutil.rmtree(tmp_path / "xdg-data")  # the keyring went with the old machine
    ws = tmp_path / "new-ws"
    run(rebuilt_elsewhere(ws, disk, PASSPHRASE))
    shutil.rmtree(tmp_path / "xdg-data")  # and this computer's was lost too since
    h = make_window(ws)
    page = h.window.sessions
    h.wait(lambda: page.row_count() == len(FILES))
    sid = page.model.sessions()[0].id
    page.select_sessions([sid])
    h.wait(lambda: page.bring_back_button.isVisible())
    page.bring_back_button.click()
    panel = page.bring_back
    h.wait(panel.needs_passphrase)
    assert "encrypt" in panel.message.shown() and panel.job is None
    assert not panel.unlock_button.isEnabled()
    assert [j for j in h.call(h.client.jobs()) if j.title.startswith("Bring back")] == []

    panel.passphrase.setText("not the passphrase at all")
    panel.unlock_button.click()
    h.wait(lambda: "does not open" in panel.message.shown())
    assert panel.needs_passphrase() and panel.passphrase.text()  # kept, to be corrected

    panel.passphrase.setText(PASSPHRASE)
    panel.unlock_button.click()
    h.wait(lambda: panel.final is not None)
    assert panel.final is not None and panel.final.state == JobState.DONE, panel.final.error
    assert panel.passphrase.text() == "" and not panel.needs_passphrase()
    h.wait(lambda: not greyed(h, sid))
    source = original_of(h, sid)
    assert sha(ws / "restored" / sid / source.name) == sha(source)
