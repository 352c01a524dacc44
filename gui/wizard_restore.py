"""The wizard's other road: this computer is new (or Tierkeeper was reinstalled), and the
backups are on a disk or a Drive already.

The user points at the folder (or signs in to the Drive); the target is saved as it
is (its encryption, if any, is learned from the backup itself, not chosen here),
what it holds is shown, and the catalog is rebuilt from it as a job. Nothing is
written to the backup; the sessions list as "in backup only" until restored.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from core.client import FolderTargetSpec
from core.errors import TierkeeperError
from gui.event_pump import EventPump
from gui.recover_panel import RecoverPanel
from gui.wizard_common import Busy, FolderRow, Message, note
from gui.wizard_drive import DriveConnect
from gui.wizard_state import SavedTarget, SetupState


class RestorePage(QWizardPage):
    def __init__(self, state: SetupState, pump: EventPump | None = None) -> None:
        super().__init__()
        self._state = state
        self._saved: tuple[str, str] | None = None
        """(name, path) of the folder target this page saved."""
        self.setTitle("Restore from an existing backup")
        self.setSubTitle("A new computer, or Tierkeeper reinstalled: bring back what a backup "
                         "holds.")  # fmt: skip

        self.folder_choice = QRadioButton("A folder: an external disk, a NAS, a synced folder")
        self.drive_choice = QRadioButton("Google Drive")
        group = QButtonGroup(self)
        group.addButton(self.folder_choice)
        group.addButton(self.drive_choice)
        self.folder_choice.setChecked(True)

        self.folder_form = QWidget(self)
        self.name_edit = QLineEdit("backup", self.folder_form)
        self.folder_row = FolderRow("The folder that holds the backups", "", self.folder_form)
        self.open_button = QPushButton("Open this backup", self.folder_form)
        self.open_button.clicked.connect(self.open_folder)
        form = QFormLayout(self.folder_form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name:", self.name_edit)
        form.addRow("Folder:", self.folder_row)
        open_row = QHBoxLayout()
        open_row.addWidget(self.open_button)
        open_row.addStretch(1)
        form.addRow("", open_row)
        self.folder_row.changed.connect(lambda _t: self._update())
        self.name_edit.textChanged.connect(lambda _t: self._update())

        self.drive = DriveConnect(state, self)
        self.drive.connected.connect(self._drive_connected)
        self.drive.hide()
        self.folder_choice.toggled.connect(self._choose)

        self.busy = Busy(self)
        self.message = Message(self)
        self.panel = RecoverPanel(state.client, state.runner, pump, self)
        self.panel.finished.connect(lambda _job: self.completeChanged.emit())
        self.panel.finished.connect(lambda _job: self._lock(True))

        layout = QVBoxLayout(self)
        layout.addWidget(note(
            "Choose where the backups are (the folder that holds <code>Tierkeeper/</code>, "
            "or the Drive account). Nothing is changed there.", self))  # fmt: skip
        layout.addWidget(self.folder_choice)
        layout.addWidget(self.drive_choice)
        layout.addSpacing(6)
        layout.addWidget(self.folder_form)
        layout.addWidget(self.drive)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addSpacing(6)
        layout.addWidget(self.panel)
        layout.addStretch(1)
        self._update()

    def _choose(self, folder: bool) -> None:
        self.folder_form.setVisible(folder)
        self.drive.setVisible(not folder)
        self.message.clear_message()

    def _update(self) -> None:
        ready = bool(self.name_edit.text().strip() and self.folder_row.path())
        self.open_button.setEnabled(ready and self.panel.job is None)

    def _lock(self, done: bool) -> None:
        """Once rebuilt, the target is what the catalog came from: it is not changed here."""
        for w in (self.folder_form, self.folder_choice, self.drive_choice, self.drive):
            w.setEnabled(not (done and self.panel.done()))

    def spec(self) -> FolderTargetSpec:
        return FolderTargetSpec(
            name=self.name_edit.text().strip(),
            path=str(Path(self.folder_row.path()).expanduser()),
        )

    def open_folder(self) -> None:
        self._state.runner.spawn(self.open_backup(), busy=self.open_button)

    async def open_backup(self) -> None:
        """Saves the folder as a target (a real check), then shows what it holds."""
        spec = self.spec()
        client = self._state.client
        self.message.clear_message()
        self.busy.start("Checking the folder…")
        try:
            if self._saved != (spec.name, spec.path):
                if self._saved is not None:  # another folder chosen: replace the one saved here
                    await client.remove_target(self._saved[0])
                    self._state.forget(self._saved[0])
                    self._saved = None
                added = await client.add_target(spec)
                t = added.target
                self._saved = (spec.name, spec.path)
                self._state.remember(SavedTarget(t.name, t.kind, t.where, False))
        except TierkeeperError as exc:
            self.message.error(str(exc))
            return
        finally:
            self.busy.stop()
        await self.panel.look(spec.name)

    def _drive_connected(self) -> None:
        name = self.drive.connected_name
        if name is not None:
            self._state.runner.spawn(self.panel.look(name))

    def isComplete(self) -> bool:
        return self.panel.done()

    def nextId(self) -> int:
        return -1
