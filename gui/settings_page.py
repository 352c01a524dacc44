"""Settings: what is watched, where copies go, when work runs, how much is kept.

The page edits a copy: Save sends only the sources, schedule, retention and phases in
one `update_config` (the service validates and announces `config.changed`), and
Revert shows what is saved again. Targets change at once, each by its own
button (Test, Recovery kit…, Remove) or through the wizard. A `config.changed`
from elsewhere (the CLI, the daemon, the wizard) reloads the page, except for
edits not saved yet, which are kept.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, ConfigPatch, Event, PhasesPatch, RetentionPatch, Settings
from core.errors import TierkeeperError
from gui.event_pump import EventPump
from gui.format import home_relative, target_where
from gui.recovery_kit import KitSaver
from gui.schedule_form import ScheduleForm
from gui.tasks import TaskRunner
from gui.wizard_archive import probe_lines
from gui.wizard_common import Message, note
from gui.wizard_drive import quota_text

MAX_WIDTH = 860
KINDS = {"folder": "Folder", "drive": "Google Drive", "s3": "S3 archive"}


ARCHIVE_ON_CLOSE = (
    ("ask", "Ask (leave it for me to start)"),
    ("always", "Always"),
    ("never", "Never"),
)
"""`[phases] archive_on_close`: its values and how the page names them."""


def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    label.setFont(font)
    return label


class TargetRow(QWidget):
    """One target: what and where, and its buttons; results show under it."""

    def __init__(self, name: str, kind: str, where: str, encrypted: bool,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.name = name
        lock = " · encrypted" if encrypted else ""
        self.title = QLabel(f"<b>{name}</b> — {KINDS.get(kind, kind)}{lock}", self)
        self.where = QLabel(where, self)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_button = QPushButton("Test", self)
        self.test_button.setToolTip("Write, read back and delete a probe")
        self.kit_button = QPushButton("Recovery kit…", self)
        self.kit_button.setVisible(encrypted)
        self.remove_button = QPushButton("Remove…", self)
        self.remove_button.setToolTip("Forget the target; the backups on it are left alone")
        self.result = Message(self)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 4, 0, 4)
        grid.addWidget(self.title, 0, 0)
        grid.addWidget(self.where, 1, 0)
        buttons = QHBoxLayout()
        for b in (self.test_button, self.kit_button, self.remove_button):
            buttons.addWidget(b)
        grid.addLayout(buttons, 0, 1, 2, 1, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.result, 2, 0, 1, 2)
        grid.setColumnStretch(0, 1)


class SettingsPage(QWidget):
    wizard_requested = Signal()

    def __init__(
        self, client: Client, runner: TaskRunner, pump: EventPump, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.settings: Settings | None = None
        self.dirty = False
        self.rows: dict[str, TargetRow] = {}
        self.confirm: QMessageBox | None = None
        self.dialog: QFileDialog | None = None
        self.saver = KitSaver(self, client, runner, self._kit_saved, self._kit_failed)

        content = QWidget(self)
        self.workspace_label = QLabel(content)
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.wizard_button = QPushButton("Run set-up wizard…", content)
        self.wizard_button.clicked.connect(self.wizard_requested)
        top = QHBoxLayout()
        top.addWidget(self.workspace_label, 1)
        top.addWidget(self.wizard_button)

        self.sources_list = QListWidget(content)
        self.sources_list.setMaximumHeight(120)
        self.no_sources = note(
            "No folder is watched yet. Add the folders your agents write their history to "
            "(Claude Code: ~/.claude/projects); the set-up wizard finds them for you.",
            content,
        )
        self.add_source_button = QPushButton("Add folder…", content)
        self.add_source_button.clicked.connect(self.browse_source)
        self.remove_source_button = QPushButton("Remove", content)
        self.remove_source_button.clicked.connect(self.remove_selected_source)
        source_buttons = QHBoxLayout()
        source_buttons.addWidget(self.add_source_button)
        source_buttons.addWidget(self.remove_source_button)
        source_buttons.addStretch(1)

        self.targets_box = QVBoxLayout()
        self.targets_box.setSpacing(2)
        self.no_targets = note(
            "No targets yet: run the set-up wizard to add a folder, Google Drive or S3.",
            content,
        )

        self.schedule = ScheduleForm(content)
        self.schedule.edited.connect(self._edited)
        self.keep_local = QSpinBox(content)
        self.keep_local.setRange(1, 100_000)
        self.keep_local.setSuffix(" sessions")
        self.keep_backups = QSpinBox(content)
        self.keep_backups.setRange(1, 1000)
        self.keep_backups.setSuffix(" phases")
        for spin in (self.keep_local, self.keep_backups):
            spin.valueChanged.connect(lambda _v: self._edited())
        retention = QFormLayout()
        retention.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        retention.addRow("Raw files on this computer, newest:", self.keep_local)
        retention.addRow("On the backup target after archiving:", self.keep_backups)
        keep_note = note(
            "Older raw files are removed only once a verified backup holds them; the "
            "conversations stay searchable.",
            content,
        )

        self.archive_on_close = QComboBox(content)
        for value, label in ARCHIVE_ON_CLOSE:
            self.archive_on_close.addItem(label, value)
        self.archive_on_close.currentIndexChanged.connect(lambda _i: self._edited())
        phases = QFormLayout()
        phases.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        phases.addRow("When a phase is closed, archive it to Tier 3:", self.archive_on_close)
        phases_note = note(
            "Closing a phase backs it up and writes its review first; the archive (S3 "
            "Glacier) is the last step. Ask: the close ends by saying the archive waits "
            "for you.",
            content,
        )

        self.message = Message(content)
        self.save_button = QPushButton("Save", content)
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(lambda: self._runner.spawn(self.save()))
        self.revert_button = QPushButton("Revert", content)
        self.revert_button.clicked.connect(self.revert)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addStretch(0)
        bottom.addWidget(self.revert_button)
        bottom.addWidget(self.save_button)

        content.setMaximumWidth(MAX_WIDTH)  # a form this wide is hard to read
        column = QVBoxLayout(content)
        column.setContentsMargins(16, 12, 16, 12)
        column.setSpacing(6)
        column.addLayout(top)
        sections: tuple[tuple[str, list[QWidget | QLayout]], ...] = (
            ("Watched folders", [self.sources_list, self.no_sources, source_buttons]),
            ("Targets", [self.targets_box, self.no_targets]),
            ("Schedule", [self.schedule]),
            ("Keep", [retention, keep_note]),
            ("Phases", [phases, phases_note]),
        )
        for title, parts in sections:
            column.addSpacing(10)
            column.addWidget(_heading(title, content))
            for part in parts:
                if isinstance(part, QLayout):
                    column.addLayout(part)
                else:
                    column.addWidget(part)
        column.addStretch(1)
        column.addLayout(bottom)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        holder = QWidget(self)
        centre = QHBoxLayout(holder)
        centre.setContentsMargins(0, 0, 0, 0)
        centre.addWidget(content, 1)
        centre.addStretch(0)
        scroll.setWidget(holder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._content = content
        self._set_dirty(False)
        pump.other.connect(self._on_event)

    # loading ----------------------------------------------------------------
    async def refresh(self) -> None:
        settings = await self._client.config()
        self.settings = settings
        self._show_targets(settings)
        if not self.dirty:
            self._show_form(settings)

    def _show_form(self, s: Settings) -> None:
        self.workspace_label.setText(f"Workspace: {home_relative(Path(s.workspace))}")
        self.workspace_label.setToolTip(s.workspace)
        self.sources_list.clear()
        for path in s.sources:
            self._add_source_item(path)
        self._show_sources_hint()
        self.schedule.show_settings(s)
        for spin, value in ((self.keep_local, s.retention.local_sessions),
                            (self.keep_backups, s.retention.backup_phases)):  # fmt: skip
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.archive_on_close.blockSignals(True)
        self.archive_on_close.setCurrentIndex(
            max(0, self.archive_on_close.findData(s.phases.archive_on_close))
        )
        self.archive_on_close.blockSignals(False)
        self._set_dirty(False)

    def _show_targets(self, s: Settings) -> None:
        for row in self.rows.values():
            self.targets_box.removeWidget(row)
            row.deleteLater()
        self.rows = {}
        for t in s.targets:
            row = TargetRow(t.name, t.kind, target_where(t.kind, t.where),
                            t.encryption is not None, self._content)  # fmt: skip
            row.test_button.clicked.connect(
                lambda _=False, r=row: self._runner.spawn(self.test(r.name), busy=r.test_button)
            )
            row.kit_button.clicked.connect(lambda _=False, n=t.name: self.saver.ask(n))
            row.remove_button.clicked.connect(lambda _=False, n=t.name: self.ask_remove(n))
            self.targets_box.addWidget(row)
            self.rows[t.name] = row
        self.no_targets.setVisible(not s.targets)

    def _on_event(self, event: Event) -> None:
        if event.topic == "config.changed":
            self._runner.spawn(self.refresh())

    # editing ----------------------------------------------------------------
    def _edited(self) -> None:
        self._set_dirty(True)

    def _set_dirty(self, dirty: bool) -> None:
        self.dirty = dirty
        self.save_button.setEnabled(dirty)
        self.revert_button.setEnabled(dirty)
        if dirty:
            self.message.clear_message()

    def _add_source_item(self, path: str) -> None:
        item = QListWidgetItem(home_relative(Path(path)))
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        self.sources_list.addItem(item)
        self._show_sources_hint()

    def _show_sources_hint(self) -> None:
        empty = self.sources_list.count() == 0
        self.sources_list.setVisible(not empty)
        self.no_sources.setVisible(empty)

    def sources(self) -> list[str]:
        return [
            str(self.sources_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.sources_list.count())
        ]

    def browse_source(self) -> None:
        dialog = QFileDialog(self, "Watch a folder of agent history", str(Path.home()))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.add_source)
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()

    def add_source(self, path: str) -> None:
        if path not in self.sources():
            self._add_source_item(path)
            self._edited()

    def remove_selected_source(self) -> None:
        for item in self.sources_list.selectedItems():
            self.sources_list.takeItem(self.sources_list.row(item))
            self._edited()
        self._show_sources_hint()

    def patch(self) -> ConfigPatch:
        return ConfigPatch(
            sources=self.sources(),
            schedule=self.schedule.patch(),
            retention=RetentionPatch(
                local_sessions=self.keep_local.value(), backup_phases=self.keep_backups.value()
            ),
            phases=PhasesPatch(archive_on_close=self.archive_on_close.currentData()),
        )

    async def save(self) -> None:
        """A refused value keeps every edit on screen and says which field and why."""
        self.save_button.setEnabled(False)
        try:
            saved = await self._client.update_config(self.patch())
        except TierkeeperError as exc:
            self.save_button.setEnabled(True)
            self.message.error(str(exc))
            return
        self.settings = saved
        self._show_form(saved)
        self.message.ok("Saved.")

    def revert(self) -> None:
        if self.settings is not None:
            self._show_form(self.settings)

    # targets ----------------------------------------------------------------
    async def test(self, name: str) -> None:
        row = self.rows.get(name)
        if row is None:
            return
        row.result.info("Testing…")
        try:
            result = await self._client.test_target(name)
        except TierkeeperError as exc:
            row.result.error(str(exc))
            return
        text = probe_lines(result)
        if result.account:
            text += f"\nSigned in as {result.account}"
            if result.quota_used is not None:
                text += f" — {quota_text(result.quota_used, result.quota_limit)}"
        row.result.ok(text)

    def ask_remove(self, name: str) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Remove target",
            f"Stop using {name}? Its sign-in or keys are forgotten; the backups already on it "
            "stay where they are.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda b: self._runner.spawn(self.remove(name)) if b is remove else None
        )
        box.finished.connect(box.deleteLater)
        self.confirm = box
        box.open()
        return box

    async def remove(self, name: str) -> None:
        try:
            await self._client.remove_target(name)
        except TierkeeperError as exc:
            row = self.rows.get(name)
            if row is not None:
                row.result.error(str(exc))
            return
        await self.refresh()

    def _kit_saved(self, name: str, path: Path) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.result.ok(f"Recovery kit saved to {home_relative(path)}")

    def _kit_failed(self, name: str, message: str) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.result.error(message)
