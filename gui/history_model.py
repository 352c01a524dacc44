"""Backups as a table model: one row per backup of one session on one target.

Display text is for people ("6.1 kB → 1.2 kB", "✓ 2 h ago"); `SORT_ROLE`
carries the number or ISO time so sorting is by value, and `FILTER_ROLE`
joins what a person might type to find a row (id, title, target, phase).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from core.models import BackupInfo
from gui.filter_table import FILTER_ROLE, SORT_ROLE
from gui.format import DASH, human_ago, human_size, human_time

ID_ROLE = Qt.ItemDataRole.UserRole + 3
"""The session id of the row."""

COLUMNS = ("When", "Session", "Target", "Size", "Stored", "Verified")
WHEN, SESSION, TARGET, SIZE, STORED, VERIFIED = range(len(COLUMNS))
NUMERIC = frozenset({SIZE, STORED})
FAILED_COLOR = QColor("#d0453a")
OK_COLOR = QColor("#2e9d6a")

_Index = QModelIndex | QPersistentModelIndex


def stored_share(b: BackupInfo) -> float | None:
    """Stored bytes as a share of the original (lower is better compression)."""
    return b.stored_bytes / b.raw_bytes if b.raw_bytes else None


def verify_text(b: BackupInfo) -> str:
    if b.verify_status == "failed":
        return "✗ failed"
    if b.verify_status == "ok":
        return f"✓ {human_ago(b.verified_at)}"
    return DASH


class HistoryModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._rows: list[BackupInfo] = []
        self._titles: dict[str, str] = {}

    def set_backups(self, backups: list[BackupInfo]) -> None:
        self.beginResetModel()
        self._rows = list(backups)
        self.endResetModel()

    def set_titles(self, titles: dict[str, str]) -> None:
        self._titles = dict(titles)
        if self._rows:
            self.dataChanged.emit(self.index(0, SESSION), self.index(len(self._rows) - 1, SESSION))

    def backup_at(self, row: int) -> BackupInfo:
        return self._rows[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and section == STORED:
            return "Stored size as a share of the original (compressed, with its manifest)"
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        b = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(b, col)
        if role == SORT_ROLE:
            return self._sort_key(b, col)
        if role == FILTER_ROLE:
            title = self._titles.get(b.session_id, "")
            return " ".join(x for x in (b.session_id, title, b.target, b.phase or "") if x)
        if role == ID_ROLE:
            return b.session_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(b, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == VERIFIED:
            if b.verify_status == "failed":
                return FAILED_COLOR
            if b.verify_status == "ok":
                return OK_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole and col in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, b: BackupInfo, col: int) -> str:
        if col == WHEN:
            return human_time(b.created_at)
        if col == SESSION:
            return self._titles.get(b.session_id) or b.session_id
        if col == TARGET:
            return b.target
        if col == SIZE:
            return f"{human_size(b.raw_bytes)} → {human_size(b.stored_bytes)}"
        if col == STORED:
            share = stored_share(b)
            return DASH if share is None else f"{share:.0%}"
        return verify_text(b)

    def _sort_key(self, b: BackupInfo, col: int) -> Any:
        if col == WHEN:
            return b.created_at
        if col == SIZE:
            return b.raw_bytes
        if col == STORED:
            return stored_share(b) or 0.0
        if col == VERIFIED:
            return f"{b.verify_status or ''} {b.verified_at or ''}"
        return self._display(b, col).casefold()

    def _tooltip(self, b: BackupInfo, col: int) -> str | None:
        if col == WHEN:
            return human_ago(b.created_at)
        if col == SESSION:
            phase = f"\nphase {b.phase}" if b.phase else ""
            return f"{b.session_id}{phase}"
        if col == VERIFIED:
            if b.verify_status == "failed":
                return f"Verified {human_time(b.verified_at)}: {b.verify_error or 'failed'}"
            if b.verified_at:
                return f"Verified {human_time(b.verified_at)}"
        return None
