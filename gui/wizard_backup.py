"""Tier 2, the backup target: a folder, Google Drive, or not now.

A folder target is saved when the page is left, after the service's real check
(the folder is created, a probe written, read back and deleted); Drive is saved
when its sign-in ends. Coming back and changing the folder replaces the target
this page saved, so the wizard never leaves a half-chosen one behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.client import FolderTargetSpec
from gui.format import home_relative
from gui.wizard_common import CheckedPage, FolderRow, note
from gui.wizard_drive import DriveConnect
from gui.wizard_state import SavedTarget, SetupState

DEFAULT_FOLDER = Path.home() / "Tierkeeper backup"


def default_folder() -> Path:
    """A mounted removable disk when there is one (what a backup should be on), else home."""
    media = Path("/media") / Path.home().name
    try:
        disks = sorted(p for p in media.iterdir() if p.is_dir())
    except OSError:
        disks = []
    return disks[0] / "Tierkeeper backup" if disks else DEFAULT_FOLDER


class BackupPage(CheckedPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__(state.runner)
        self._state = state
        self._saved_name: str | None = None
        self._defaulted = False
        self.setTitle("Backup target (Tier 2)")
        self.setSubTitle("Where a copy of every session goes, as soon as it ends.")

        self.folder_choice = QRadioButton("A folder: an external disk, a NAS, a synced folder")
        self.drive_choice = QRadioButton("Google Drive")
        self.skip_choice = QRadioButton("Not now (sessions stay only on this computer)")
        group = QButtonGroup(self)
        for b in (self.folder_choice, self.drive_choice, self.skip_choice):
            group.addButton(b)
        self.folder_choice.setChecked(True)

        self.folder_form = QWidget(self)
        self.name_edit = QLineEdit("backup", self.folder_form)
        self.folder_row = FolderRow("Back up into a folder", home_relative(default_folder()),
                                    self.folder_form)  # fmt: skip
        form = QFormLayout(self.folder_form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name:", self.name_edit)
        form.addRow("Folder:", self.folder_row)
        self.folder_note = note("On this computer's own disk, a backup dies with the disk: "
                                "prefer another drive.", self)  # fmt: skip
        self.drive = DriveConnect(state, self)
        self.drive.connected.connect(self.completeChanged)
        self.drive.hide()
        for i, b in enumerate((self.folder_choice, self.drive_choice, self.skip_choice)):
            b.toggled.connect(lambda on, i=i: self._choose(i) if on else None)
        self.name_edit.textChanged.connect(self.completeChanged)
        self.folder_row.changed.connect(self.completeChanged)
        self.encryption_label = note("", self)

        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_choice)
        layout.addWidget(self.drive_choice)
        layout.addWidget(self.skip_choice)
        layout.addWidget(self.encryption_label)
        layout.addSpacing(6)
        layout.addWidget(self.folder_form)
        layout.addWidget(self.folder_note)
        layout.addWidget(self.drive)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addStretch(1)

    def initializePage(self) -> None:
        settings = self._state.settings
        have = [t.name for t in settings.targets if t.kind != "s3"] if settings else []
        if have and not self._defaulted:  # a re-run: adding another is the exception
            self.skip_choice.setChecked(True)
            self.message.info(f"Already set up: {', '.join(have)}. Choose Not now to keep it.")
        self._defaulted = True
        self.encryption_label.setText(
            "Backups here are encrypted with your passphrase."
            if self._state.passphrase is not None
            else "Backups here are not encrypted (your choice on the previous page)."
        )

    def _choose(self, index: int) -> None:
        self.folder_form.setVisible(index == 0)
        self.folder_note.setVisible(index == 0)
        self.drive.setVisible(index == 1)
        self.message.clear_message()
        self.completeChanged.emit()

    def inputs(self) -> list[QWidget]:
        return [self.folder_form, self.folder_choice, self.drive_choice, self.skip_choice]

    def ready(self) -> bool:
        if self.drive.waiting():
            return False
        if self.drive_choice.isChecked():
            return self.drive.is_connected()
        if self.folder_choice.isChecked():
            return bool(self.name_edit.text().strip() and self.folder_row.path())
        return True

    def folder_spec(self) -> FolderTargetSpec:
        return FolderTargetSpec(
            name=self.name_edit.text().strip(),
            path=str(Path(self.folder_row.path()).expanduser()),
            passphrase=self._state.passphrase,
        )

    def check_key(self) -> Any:
        return self.folder_spec() if self.folder_choice.isChecked() else None

    def busy_text(self) -> str:
        return "Checking the folder: writing, reading back and deleting a probe…"

    async def check(self, key: Any) -> None:
        assert isinstance(key, FolderTargetSpec)
        client = self._state.client
        if self._saved_name is not None:  # replaced: it was saved by this page a moment ago
            await client.remove_target(self._saved_name)
            self._state.forget(self._saved_name)
            self._saved_name = None
        added = await client.add_target(key)
        t = added.target
        self._saved_name = t.name
        self._state.remember(SavedTarget(t.name, t.kind, t.where, t.encryption is not None))
