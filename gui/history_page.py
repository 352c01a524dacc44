"""History: every backup the workspace knows, newest first, with its verify result.

One row per backup of one session on one target. A failed verify shows ✗ in
red, with what the check found in the row's tooltip; a double-click opens the
session on the Sessions page.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.client import BackupInfo, Client, Event, SessionSummary
from gui.empty_state import EmptyState
from gui.event_pump import EventPump
from gui.filter_table import filter_box, filter_proxy
from gui.format import plural
from gui.history_model import ID_ROLE, SESSION, WHEN, HistoryModel
from gui.palette import set_muted
from gui.reloader import Reloader
from gui.session_model import title_of
from gui.tasks import TaskRunner


class HistoryPage(QWidget):
    open_requested = Signal(str)
    """The session id of a double-clicked row."""

    def __init__(
        self, client: Client, runner: TaskRunner, pump: EventPump, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.reload = Reloader(self._load)
        self.loaded = False

        self.model = HistoryModel()
        self.proxy = filter_proxy(self.model, self)

        self.filter_edit = filter_box(
            "Filter by session, title or target", self, self._apply_filter
        )
        self.count_label = QLabel(self)
        set_muted(self.count_label)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(
            lambda: self._runner.spawn(self.refresh(), busy=self.refresh_button)
        )
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.count_label)
        bar.addSpacing(12)
        bar.addWidget(self.refresh_button)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(WHEN, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        # Fitting columns reads 100 rows, not Qt's default 1000: on a big workspace that
        # is a tenth of a second the window would otherwise freeze (bench_gui's stall).
        header.setResizeContentsPrecision(100)
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(SESSION, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self._open)

        self.empty = EmptyState(
            "No backups yet",
            "Back up from the Dashboard (Back up now), or from a terminal: "
            "tierkeeper backup --all. Each backup of each session shows here, with "
            "its size and whether it was verified.",
            parent=self,
        )
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        pump.other.connect(self._on_event)

    async def refresh(self) -> None:
        await self.reload()

    async def _load(self) -> None:
        self._show(await self._client.backups())

    def _show(self, backups: list[BackupInfo]) -> None:
        first = not self.loaded and bool(backups)
        self.model.set_backups(backups)
        self.loaded = self.loaded or bool(backups)
        self.stack.setCurrentWidget(self.table if backups else self.empty)
        if first:
            self.table.resizeColumnsToContents()
        self._update_count()

    def set_sessions(self, sessions: list[SessionSummary]) -> None:
        """Titles to show instead of bare ids (the Sessions page sends its list)."""
        self.model.set_titles({s.id: title_of(s) for s in sessions})

    def _apply_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.count_label.setText(
            plural(total, "backup") if shown == total else f"{shown} of {plural(total, 'backup')}"
        )

    def row_count(self) -> int:
        return self.proxy.rowCount()

    def showing_empty_state(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def cell(self, row: int, column: int, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return self.proxy.index(row, column).data(role)

    def _open(self, index: QModelIndex) -> None:
        session_id = index.data(ID_ROLE)
        if session_id:
            self.open_requested.emit(str(session_id))

    def _on_event(self, event: Event) -> None:
        if event.topic == "backups.changed":
            self._runner.spawn(self.refresh())
