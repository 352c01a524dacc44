"""The wizard's first pages: where Tierkeeper keeps things, what it watches, when it works.

Nothing on these pages is saved until Finish (sources and schedule are one
`update_config`), so Back and Cancel cost nothing here.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizardPage,
)

from gui.format import home_relative, plural
from gui.schedule_form import ScheduleForm
from gui.wizard_common import bold, note
from gui.wizard_state import SetupState

FORMATS = {"claude-code": "Claude Code", "roo": "Roo Code", "cline": "Cline"}
PATH_ROLE = Qt.ItemDataRole.UserRole


class WelcomePage(QWizardPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__()
        self._state = state
        self.setTitle("Welcome to Tierkeeper")
        self.setSubTitle("Your coding agents' sessions, kept on three tiers.")
        intro = note(
            "Tierkeeper imports the conversations of your coding agents into a searchable "
            "local store (<b>Tier 1</b>), backs them up to a folder or Google Drive "
            "(<b>Tier 2</b>) and archives finished phases to S3 Glacier for cents a month "
            "(<b>Tier 3</b>).<br><br>The next pages choose what to watch, when to work, "
            "whether to encrypt, and where the copies go. Everything can be changed later "
            "on the Settings page.",
            self,
        )
        intro.setPalette(self.palette())  # the introduction reads as body text, not a hint
        self.workspace_label = QLabel("…", self)
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where = note(
            "The workspace holds the local store, the settings and the logs. Another one is "
            "chosen when Tierkeeper starts: <code>tierkeeper gui --workspace DIR</code>.",
            self,
        )
        self.new_choice = QRadioButton("Set Tierkeeper up on this computer", self)
        self.restore_choice = QRadioButton(
            "Restore from an existing backup (a new computer, a reinstall)", self
        )
        self.restore_choice.setToolTip(
            "Point at the folder or Drive your backups are on: the sessions and their "
            "totals come back from it"
        )
        choice = QButtonGroup(self)
        choice.addButton(self.new_choice)
        choice.addButton(self.restore_choice)
        self.new_choice.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addSpacing(12)
        layout.addWidget(bold("Workspace", self))
        layout.addWidget(self.workspace_label)
        layout.addWidget(where)
        layout.addSpacing(12)
        layout.addWidget(bold("How to start", self))
        layout.addWidget(self.new_choice)
        layout.addWidget(self.restore_choice)
        layout.addStretch(1)
        state.loaded.connect(self._show)

    def restoring(self) -> bool:
        return self.restore_choice.isChecked()

    def _show(self) -> None:
        if self._state.settings is not None:
            path = Path(self._state.settings.workspace)
            self.workspace_label.setText(home_relative(path))
            self.workspace_label.setToolTip(str(path))


class SourcesPage(QWizardPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__()
        self._state = state
        self.setTitle("What to watch")
        self.setSubTitle("Folders where your coding agents keep their history.")
        self.list = QListWidget(self)
        self.list.setAlternatingRowColors(True)
        self.empty_label = note("Looking for agent history on this computer…", self)
        self.add_button = QPushButton("Add folder…", self)
        self.add_button.clicked.connect(self.browse)
        self.dialog: QFileDialog | None = None
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(
            note(
                "Checked folders are imported when set-up finishes (if you keep that choice on "
                "the last page) and whenever you press Import. Nothing is changed in them.",
                self,
            )
        )
        state.loaded.connect(self._show)

    def _show(self) -> None:
        s = self._state
        self.list.clear()
        watched = set(s.settings.sources if s.settings else [])
        first_time = not watched
        for found in s.detected:
            label = f"{FORMATS.get(found.format, found.format)} — {home_relative(Path(found.path))}"
            if found.sessions is not None:
                label += f" · {plural(found.sessions, 'session')}"
                if found.files is not None and found.files != found.sessions:
                    label += f" ({plural(found.files, 'file')})"
            self._add_row(label, found.path, found.watched or first_time)
        detected = {d.path for d in s.detected}
        for path in sorted(watched - detected):
            self._add_row(f"Folder — {home_relative(Path(path))}", path, True)
        if self.list.count():
            self.empty_label.setText(f"Found on this computer ({self.list.count()}):")
        else:
            self.empty_label.setText(
                "No agent history was found in the usual places (~/.claude/projects, "
                "Roo Code and Cline storage). Add a folder, or go on and import later."
            )

    def _add_row(self, label: str, path: str, checked: bool) -> QListWidgetItem:
        item = QListWidgetItem(label)
        item.setData(PATH_ROLE, path)
        item.setToolTip(path)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.addItem(item)
        return item

    def browse(self) -> None:
        dialog = QFileDialog(self, "Watch a folder of agent history", str(Path.home()))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.add_folder)
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()

    def add_folder(self, path: str) -> None:
        """A chosen folder is checked; choosing one already listed just checks it."""
        resolved = str(Path(path).expanduser().resolve())
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(PATH_ROLE) == resolved:
                item.setCheckState(Qt.CheckState.Checked)
                return
        self._add_row(f"Folder — {home_relative(Path(resolved))}", resolved, True)
        self.empty_label.setText(f"Folders to watch ({self.list.count()}):")

    def chosen(self) -> list[str]:
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(PATH_ROLE)))
        return out

    def validatePage(self) -> bool:
        self._state.sources = self.chosen()
        return True


class SchedulePage(QWizardPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__()
        self._state = state
        self.setTitle("When to work")
        self.setSubTitle("Backups and checks run by themselves while Tierkeeper runs.")
        self.form = ScheduleForm(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addSpacing(8)
        layout.addWidget(
            note(
                "Scheduled work runs while the window is open (or in the tray), or all the "
                "time with the background service (<code>tierkeeper daemon</code>). A verify "
                "reads the backups back and compares checksums.",
                self,
            )
        )
        layout.addStretch(1)
        state.loaded.connect(self._show)

    def _show(self) -> None:
        if self._state.settings is not None:
            self.form.show_settings(self._state.settings)

    def validatePage(self) -> bool:
        self._state.schedule = self.form.patch()
        return True
