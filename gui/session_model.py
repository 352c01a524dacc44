"""The sessions table as a Qt model: display text for people, raw values for sorting.

Sorting by the display text would put "9.5 MB" after "10 kB"; the proxy sorts
on `SORT_ROLE`, which carries the number or the ISO timestamp.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from core.models import SessionSummary
from gui.filter_table import FILTER_ROLE, SORT_ROLE
from gui.format import DASH, human_cost, human_count, human_size, human_time

ID_ROLE = Qt.ItemDataRole.UserRole + 3

IN_BACKUP_ONLY = "· in backup only"
"""After a title: the session is known from a backup's catalog, its files are not here."""
COLUMNS = ("Started", "Project", "Agent", "Title", "Messages", "Tokens", "Cost", "Size")
NUMERIC = frozenset({4, 5, 6, 7})

_Index = QModelIndex | QPersistentModelIndex


def total_tokens(s: SessionSummary) -> int:
    """Tokens the model read and wrote; cache reads are counted apart (see tooltip)."""
    return s.input_tokens + s.output_tokens + s.cache_write_tokens


def agent_label(s: SessionSummary) -> str:
    agent = s.agent or s.source
    return f"{agent} (subagent)" if s.is_subagent and "subagent" not in agent else agent


def title_of(s: SessionSummary) -> str:
    return s.title or s.id


class SessionTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._rows: list[SessionSummary] = []

    def set_sessions(self, sessions: list[SessionSummary]) -> None:
        self.beginResetModel()
        self._rows = list(sessions)
        self.endResetModel()

    def sessions(self) -> list[SessionSummary]:
        return list(self._rows)

    def row_of(self, session_id: str) -> int:
        for i, s in enumerate(self._rows):
            if s.id == session_id:
                return i
        return -1

    def session_at(self, row: int) -> SessionSummary:
        return self._rows[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in NUMERIC:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(s, col)
        if role == SORT_ROLE:
            return self._sort_key(s, col)
        if role == ID_ROLE:
            return s.id
        if role == FILTER_ROLE:
            return " ".join(
                x for x in (s.id, s.project, s.agent, s.source, s.title, s.model, s.phase) if x
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and col in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(s, col)
        if role == Qt.ItemDataRole.ForegroundRole and s.in_backup_only:
            return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)
        return None

    @staticmethod
    def _display(s: SessionSummary, col: int) -> str:
        match col:
            case 0:
                return human_time(s.started_at)
            case 1:
                return s.project or DASH
            case 2:
                return agent_label(s)
            case 3:
                return title_of(s) + (f"  {IN_BACKUP_ONLY}" if s.in_backup_only else "")
            case 4:
                return str(s.message_count)
            case 5:
                return human_count(total_tokens(s)) if total_tokens(s) else DASH
            case 6:
                return human_cost(s.cost_usd)
            case _:
                return human_size(s.raw_bytes)

    @staticmethod
    def _sort_key(s: SessionSummary, col: int) -> Any:
        match col:
            case 0:
                return s.started_at or ""
            case 1:
                return (s.project or "").casefold()
            case 2:
                return agent_label(s).casefold()
            case 3:
                return title_of(s).casefold()
            case 4:
                return s.message_count
            case 5:
                return total_tokens(s)
            case 6:
                return s.cost_usd
            case _:
                return s.raw_bytes

    @staticmethod
    def _tooltip(s: SessionSummary, col: int) -> str | None:
        if col == 5:
            return (
                f"input {s.input_tokens:,} · output {s.output_tokens:,} · "
                f"cache write {s.cache_write_tokens:,} · cache read {s.cache_read_tokens:,}"
            )
        if col == 3:
            tip = f"{title_of(s)}\n{s.id}" + (f"\nmodel {s.model}" if s.model else "")
            if s.in_backup_only:
                tip += "\nIn a backup only (rebuilt from it): restore it to read it here"
            return tip
        if col == 0:
            return s.started_at
        return None
