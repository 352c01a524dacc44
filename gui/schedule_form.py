"""When the service works by itself: the same form in the wizard and on the Settings page.

It speaks in the user's terms ("after each session ends") and hands back a
`SchedulePatch`, so the service stays the one place that validates settings.
Quiet hours are two clock fields, so a malformed "22:00-07:00" cannot be typed.
"""

from __future__ import annotations

from PySide6.QtCore import QTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from core.client import SchedulePatch, Settings

BACKUP_EVERY = (
    ("After each session ends", "session-end"),
    ("Every hour", "hourly"),
    ("Once a day", "daily"),
    ("Off: only when I press Backup now", "off"),
)
VERIFY_EVERY = (("Once a week", "weekly"), ("Once a day", "daily"), ("Off", "off"))
DEFAULT_QUIET = ("22:00", "07:00")


def _combo(items: tuple[tuple[str, str], ...], parent: QWidget) -> QComboBox:
    box = QComboBox(parent)
    for label, value in items:
        box.addItem(label, value)
    return box


def _select(box: QComboBox, value: str) -> None:
    index = box.findData(value)
    if index >= 0:
        box.setCurrentIndex(index)


def describe(patch: SchedulePatch) -> str:
    """One line for a summary: "after each session ends; verified once a week; quiet 22–07"."""
    backup = dict((v, k) for k, v in BACKUP_EVERY).get(patch.backup_every or "", "")
    verify = dict((v, k) for k, v in VERIFY_EVERY).get(patch.verify_every or "", "")
    parts = [f"back up: {backup.lower()}", f"verify: {verify.lower()}"]
    if patch.quiet_hours:
        parts.append(f"quiet hours {patch.quiet_hours.replace('-', '–')}")
    return "; ".join(parts)


class ScheduleForm(QWidget):
    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backup_box = _combo(BACKUP_EVERY, self)
        self.verify_box = _combo(VERIFY_EVERY, self)
        self.quiet_check = QCheckBox("Quiet hours, from", self)
        self.quiet_from = QTimeEdit(QTime.fromString(DEFAULT_QUIET[0], "HH:mm"), self)
        self.quiet_to = QTimeEdit(QTime.fromString(DEFAULT_QUIET[1], "HH:mm"), self)
        for edit in (self.quiet_from, self.quiet_to):
            edit.setDisplayFormat("HH:mm")
            edit.setEnabled(False)
        self.quiet_check.toggled.connect(self.quiet_from.setEnabled)
        self.quiet_check.toggled.connect(self.quiet_to.setEnabled)
        quiet = QHBoxLayout()
        quiet.setContentsMargins(0, 0, 0, 0)
        quiet.addWidget(self.quiet_check)
        quiet.addWidget(self.quiet_from)
        quiet.addWidget(QLabel("to", self))
        quiet.addWidget(self.quiet_to)
        quiet.addStretch(1)
        self.battery_check = QCheckBox("Not on battery power", self)
        self.metered_check = QCheckBox("Not on a metered connection", self)
        skip = QVBoxLayout()
        skip.setSpacing(2)
        skip.addWidget(self.battery_check)
        skip.addWidget(self.metered_check)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Back up:", self.backup_box)
        form.addRow("Verify backups:", self.verify_box)
        form.addRow("Wait during:", quiet)
        form.addRow("Scheduled work:", skip)

        for box in (self.backup_box, self.verify_box):
            box.currentIndexChanged.connect(lambda _i: self.edited.emit())
        for check in (self.quiet_check, self.battery_check, self.metered_check):
            check.toggled.connect(lambda _c: self.edited.emit())
        for edit in (self.quiet_from, self.quiet_to):
            edit.timeChanged.connect(lambda _t: self.edited.emit())

    def show_settings(self, settings: Settings) -> None:
        """Shows what is saved; does not count as an edit."""
        s = settings.schedule
        self.blockSignals(True)
        try:
            _select(self.backup_box, s.backup_every)
            _select(self.verify_box, s.verify_every)
            start, end = (s.quiet_hours or "-".join(DEFAULT_QUIET)).split("-")
            self.quiet_from.setTime(QTime.fromString(start, "HH:mm"))
            self.quiet_to.setTime(QTime.fromString(end, "HH:mm"))
            self.quiet_check.setChecked(s.quiet_hours is not None)
            self.battery_check.setChecked(s.skip_on_battery)
            self.metered_check.setChecked(s.skip_on_metered)
        finally:
            self.blockSignals(False)

    def patch(self) -> SchedulePatch:
        quiet = None
        if self.quiet_check.isChecked():
            start, end = (e.time().toString("HH:mm") for e in (self.quiet_from, self.quiet_to))
            quiet = f"{start}-{end}"
        return SchedulePatch(
            backup_every=self.backup_box.currentData(),
            verify_every=self.verify_box.currentData(),
            quiet_hours=quiet,
            skip_on_battery=self.battery_check.isChecked(),
            skip_on_metered=self.metered_check.isChecked(),
        )
