"""The last page: what was set up, the recovery kits to keep, and what starts on Finish.

A recovery kit can only be saved once its target exists, so it is offered here,
one button per encrypted target, and the page says plainly which are not saved.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from gui.format import home_relative, plural, target_where
from gui.recovery_kit import KitSaver
from gui.schedule_form import describe
from gui.tier_card import COLORS, Health
from gui.wizard_common import Message, bold, note
from gui.wizard_state import SavedTarget, SetupState


class SummaryPage(QWizardPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__()
        self._state = state
        self.setTitle("Ready")
        self.setSubTitle("Check what was chosen; Finish saves it and starts the first import.")
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.kits = QWidget(self)
        self.kit_grid = QGridLayout(self.kits)
        self.kit_grid.setContentsMargins(0, 0, 0, 0)
        self.kit_buttons: dict[str, QPushButton] = {}
        self.kit_labels: dict[str, QLabel] = {}
        self.saver = KitSaver(self, state.client, state.runner, self._kit_saved, self._kit_failed)
        self.import_check = QCheckBox("Import the watched folders now", self)
        self.backup_check = QCheckBox("Then back up every session", self)
        self.import_check.toggled.connect(self._sync_checks)
        self.message = Message(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addSpacing(6)
        layout.addWidget(self.kits)
        layout.addSpacing(6)
        layout.addWidget(self.import_check)
        layout.addWidget(self.backup_check)
        layout.addWidget(self.message)
        layout.addStretch(1)
        state.targets_changed.connect(self._render)

    def initializePage(self) -> None:
        self._render()
        has_sources = bool(self._state.sources)
        self.import_check.setChecked(has_sources)
        self.import_check.setEnabled(has_sources)
        self.backup_check.setChecked(has_sources and self.has_backup_target())
        self._sync_checks()

    def has_backup_target(self) -> bool:
        existing = self._state.settings.targets if self._state.settings else []
        return bool(self._state.backup_targets()) or any(t.kind != "s3" for t in existing)

    def _sync_checks(self) -> None:
        self.backup_check.setEnabled(self.import_check.isChecked() and self.has_backup_target())
        if not self.backup_check.isEnabled():
            self.backup_check.setChecked(False)

    def _render(self) -> None:
        s = self._state
        rows: list[str] = []
        if s.sources:
            folders = ", ".join(html.escape(home_relative(Path(p))) for p in s.sources)
            rows.append(f"<b>Watching</b> {plural(len(s.sources), 'folder')}: {folders}")
        else:
            rows.append("<b>Watching</b> no folder yet: import from the Sessions page any time.")
        if s.schedule is not None:
            rows.append(f"<b>Schedule</b>: {html.escape(describe(s.schedule))}")
        before = [
            SavedTarget(t.name, t.kind, t.where, t.encryption is not None)
            for t in (s.settings.targets if s.settings else [])
            if t.name not in s.saved
        ]
        for label, archive, none in (
            ("Backup", False, "none yet: sessions stay only on this computer"),
            ("Archive", True, "not set up (it can be added later)"),
        ):
            shown = [(t, "") for t in before if t.archive == archive]
            shown += [(t, " · new") for t in s.saved.values() if t.archive == archive]
            for t, new in shown:
                lock = " · encrypted" if t.encrypted else ""
                rows.append(f"<b>{label}</b>: {html.escape(t.name)} → "
                            f"{html.escape(target_where(t.kind, t.where))}{lock}{new}")  # fmt: skip
            if not shown:
                rows.append(f"<b>{label}</b>: {none}")
        self.summary.setText("<br>".join(rows))
        self._render_kits()

    def _render_kits(self) -> None:
        encrypted = [t for t in self._state.saved.values() if t.encrypted]
        for name in list(self.kit_buttons):
            if name not in {t.name for t in encrypted}:
                self.kit_buttons.pop(name).deleteLater()
                self.kit_labels.pop(name).deleteLater()
        while self.kit_grid.count():
            self.kit_grid.takeAt(0)
        if encrypted:
            self.kit_grid.addWidget(bold("Recovery kits", self.kits), 0, 0, 1, 2)
            self.kit_grid.addWidget(
                note("Keep a copy away from this computer: without it (or the passphrase) "
                     "nobody can read these backups.", self.kits), 1, 0, 1, 2)  # fmt: skip
        for row, t in enumerate(encrypted, start=2):
            button = self.kit_buttons.get(t.name)
            if button is None:
                button = QPushButton(f"Save recovery kit of {t.name}…", self.kits)
                button.clicked.connect(lambda _=False, n=t.name: self.saver.ask(n))
                self.kit_buttons[t.name] = button
                label = QLabel(self.kits)
                label.setWordWrap(True)
                self.kit_labels[t.name] = label
                self._kit_state(t.name)
            self.kit_grid.addWidget(button, row, 0)
            self.kit_grid.addWidget(self.kit_labels[t.name], row, 1)
        self.kit_grid.setColumnStretch(1, 1)
        self.kits.setVisible(bool(encrypted))

    def _kit_state(self, name: str, error: str | None = None) -> None:
        label = self.kit_labels[name]
        saved = self.saver.saved.get(name)
        if error is not None:
            label.setStyleSheet(f"color: {COLORS[Health.ERROR].name()};")
            label.setText(error)
        elif saved is not None:
            label.setStyleSheet(f"color: {COLORS[Health.OK].name()};")
            label.setText(f"✓ Saved to {home_relative(saved)}")
        else:
            label.setStyleSheet(f"color: {COLORS[Health.BUSY].name()};")
            label.setText("Not saved yet")

    def _kit_saved(self, name: str, _path: Path) -> None:
        self._kit_state(name)

    def _kit_failed(self, name: str, message: str) -> None:
        self._kit_state(name, message)

    def unsaved_kits(self) -> list[str]:
        return [n for n in self.kit_buttons if n not in self.saver.saved]
