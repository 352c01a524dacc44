"""Sessions: the sortable, filterable list, one session's conversation, Import, Restore…
and Bring back (for sessions a rebuild left "in backup only").

Every client call runs as a task (the page never blocks); the import is a job
whose progress arrives as events and whose end is awaited with `wait_job`, so
a missed event cannot leave the page stuck showing a finished import.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.client import BackupInfo, Client, Event, JobInfo, SessionDetail, SessionSummary
from core.errors import TierkeeperError
from core.models import JobState
from gui.bring_back import BringBackPanel
from gui.conversation import TOGGLE, Colors, message_anchor, render_conversation
from gui.empty_state import EmptyState
from gui.event_pump import EventPump
from gui.filter_table import filter_box, filter_proxy
from gui.format import home_relative, human_ago, plural
from gui.job_progress import JobProgress
from gui.palette import set_muted
from gui.restore_dialog import RestoreDialog
from gui.session_model import ID_ROLE, SessionTableModel
from gui.tasks import TaskRunner

CLAUDE_PROJECTS = Path.home() / ".claude" / "projects"


class SessionsPage(QWidget):
    sessions_changed = Signal(list)
    """The full list after every refresh (list[SessionSummary])."""
    import_finished = Signal(object)
    """The final JobInfo of an import this page started."""

    def __init__(
        self,
        client: Client,
        runner: TaskRunner,
        pump: EventPump,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self._pump = pump
        self._loaded_once = False
        self._refresh_task: asyncio.Task[None] | None = None
        self._refresh_again = False
        self._detail: SessionDetail | None = None
        self._detail_generation = 0
        self._detail_task: asyncio.Task[None] | None = None
        self._expanded: set[int] = set()
        self._focus: tuple[str, int | None] | None = None
        """(session id, message id) that `open_session` asked to show."""
        self._import_job: JobInfo | None = None
        self._backups: list[BackupInfo] = []
        self._backups_generation = 0
        self.restore_dialog: RestoreDialog | None = None

        self.model = SessionTableModel()
        self.proxy = filter_proxy(self.model, self)

        self.filter_edit = filter_box(
            "Filter by project, agent, title or id", self, self._apply_filter
        )
        self.count_label = QLabel(self)
        set_muted(self.count_label)
        self.import_button = QPushButton("Import…", self)
        self.import_button.setToolTip("Import Claude Code transcripts from a folder")
        self.import_button.clicked.connect(self.choose_import_folder)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(lambda: self._runner.spawn(self.refresh()))
        self.bar = QWidget(self)
        bar = QHBoxLayout(self.bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.count_label)
        bar.addSpacing(12)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.import_button)

        self.progress = JobProgress(self)
        self.progress.cancel_requested.connect(self._cancel_job)
        pump.job.connect(self._on_job_event)
        pump.other.connect(self._on_event)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # several at once: "Bring back" takes every in-backup-only session selected
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.context_menu: QMenu | None = None
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
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        self.details = QTextBrowser(self)
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._on_anchor)
        self._details_hint()

        # where copies of the selected session live, and the way to get one back
        self.backup_label = QLabel(self)
        set_muted(self.backup_label)
        self.restore_button = QPushButton("Restore…", self)
        self.restore_button.clicked.connect(self.open_restore)
        self.restore_button.setEnabled(False)
        self.actions_bar = QWidget(self)
        actions = QHBoxLayout(self.actions_bar)
        actions.setContentsMargins(0, 6, 0, 2)
        self.bring_back_button = QPushButton("Bring back", self)
        self.bring_back_button.setToolTip(
            "Fetch the session's files from its backup, check them and import them again: "
            "its conversation is then readable and searchable here"
        )
        self.bring_back_button.clicked.connect(self.start_bring_back)
        self.bring_back_button.hide()
        actions.addWidget(self.backup_label, 1)
        actions.addWidget(self.bring_back_button)
        actions.addWidget(self.restore_button)
        self._show_backups(None)
        self.bring_back = BringBackPanel(client, runner, pump, self)
        self.bring_back.finished.connect(lambda _job: self._runner.spawn(self._brought_back()))
        details_pane = QWidget(self)
        pane = QVBoxLayout(details_pane)
        pane.setContentsMargins(0, 0, 0, 0)
        pane.setSpacing(4)
        pane.addWidget(self.actions_bar)
        pane.addWidget(self.bring_back)
        pane.addWidget(self.details, 1)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(details_pane)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)

        self.empty = EmptyState(
            "No sessions yet",
            f"Import from {home_relative(CLAUDE_PROJECTS)} — Claude Code keeps one "
            "transcript per session there. Tierkeeper copies them into its database, "
            "where they can be searched and backed up; the originals stay untouched.",
            action="Import…",
            parent=self,
        )
        assert self.empty.button is not None
        self.empty.button.clicked.connect(self.choose_import_folder)
        self.loading = EmptyState("Loading sessions…", "", parent=self)

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.loading)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.splitter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addWidget(self.bar)
        layout.addWidget(self.progress)
        layout.addWidget(self.stack, 1)

    # list -------------------------------------------------------------------
    async def refresh(self) -> None:
        """Reload the list. A call made while one runs waits for a fresh run, so whoever
        awaits this sees data at least as new as the moment they asked."""
        task = self._refresh_task
        if task is not None and not task.done():
            self._refresh_again = True
            await task
            return
        self._refresh_task = asyncio.get_event_loop().create_task(self._refresh_loop())
        await self._refresh_task

    async def _refresh_loop(self) -> None:
        self.refresh_button.setEnabled(False)
        try:
            while True:
                self._refresh_again = False
                sessions = await self._client.list_sessions()
                self._show_sessions(sessions)
                if not self._refresh_again:
                    break
        finally:
            self.refresh_button.setEnabled(True)

    def _show_sessions(self, sessions: list[SessionSummary]) -> None:
        selected = self.current_session_id()
        self.model.set_sessions(sessions)
        if not self._loaded_once and sessions:
            self.table.resizeColumnsToContents()
            for col in (1, 2):  # long project paths should not squeeze the title away
                self.table.setColumnWidth(col, min(self.table.columnWidth(col), 260))
        first_fill = not self._loaded_once and bool(sessions)
        self._loaded_once = self._loaded_once or bool(sessions)
        self.stack.setCurrentWidget(self.splitter if sessions else self.empty)
        self.bar.setVisible(bool(sessions))  # the empty state has its own Import button
        self._update_count()
        if selected and not self._select(selected):
            self._detail = None
            self._details_hint()
            self._show_backups(None)
        elif first_fill and selected is None and self._focus is None:
            self._select(self.first_session_id() or "")  # something to read at once
        self.sessions_changed.emit(sessions)

    def _apply_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._update_count()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        self.count_label.setText(
            plural(total, "session") if shown == total else f"{shown} of {plural(total, 'session')}"
        )

    def row_count(self) -> int:
        """Rows the table shows (after the filter)."""
        return self.proxy.rowCount()

    def first_session_id(self) -> str | None:
        """The id in the table's top row, as sorted and filtered now."""
        index = self.proxy.index(0, 0)
        return str(index.data(ID_ROLE)) if index.isValid() else None

    def showing_empty_state(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def current_session_id(self) -> str | None:
        """The session the details pane shows: the current row when it is selected."""
        current = self.table.currentIndex()
        selection = self.table.selectionModel()
        if current.isValid() and selection.isRowSelected(current.row(), QModelIndex()):
            return str(current.data(ID_ROLE))
        rows = selection.selectedRows()
        return str(rows[0].data(ID_ROLE)) if rows else None

    def selected_session_ids(self) -> list[str]:
        """Every selected session, top to bottom as the table shows them."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [str(i.data(ID_ROLE)) for i in rows]

    def selected_in_backup_only(self) -> list[str]:
        out = []
        for sid in self.selected_session_ids():
            row = self.model.row_of(sid)
            if row >= 0 and self.model.session_at(row).in_backup_only:
                out.append(sid)
        return out

    def select_sessions(self, session_ids: list[str]) -> None:
        """Select these rows (as ctrl-clicks would), the first one current."""
        selection = self.table.selectionModel()
        selection.clearSelection()
        first = True
        for sid in session_ids:
            row = self.model.row_of(sid)
            index = self.proxy.mapFromSource(self.model.index(row, 0)) if row >= 0 else None
            if index is None or not index.isValid():
                continue
            flags = (
                QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
            )
            if first:
                selection.setCurrentIndex(index, flags)
                first = False
            else:
                selection.select(index, flags)

    def _select(self, session_id: str) -> bool:
        row = self.model.row_of(session_id)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)
        return True

    # details ----------------------------------------------------------------
    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_bring_back()
        session_id = self.current_session_id()
        if session_id is None:
            return
        if self._detail is not None and self._detail.session.id == session_id:
            self._render(scroll_to=self._focus_message())
            return
        self._detail_generation += 1
        self._detail_task = self._runner.spawn(
            self._load_details(session_id, self._detail_generation)
        )
        self._runner.spawn(self.load_backups())

    async def _load_details(self, session_id: str, generation: int) -> None:
        self.details.setHtml("<p>Loading…</p>")
        detail = await self._client.session(session_id)
        if generation != self._detail_generation:
            return  # the selection moved on while we waited
        self._detail = detail
        self._expanded.clear()
        self._render(scroll_to=self._focus_message())

    def _focus_message(self) -> int | None:
        if self._focus and self._detail and self._focus[0] == self._detail.session.id:
            return self._focus[1]
        return None

    def _render(self, *, scroll_to: int | None = None, keep_scroll: bool = False) -> None:
        if self._detail is None:
            return
        bar = self.details.verticalScrollBar()
        position = bar.value()
        colors = Colors.from_palette(self.details.palette())
        self.details.setHtml(
            render_conversation(self._detail, self._expanded, colors, self._focus_message())
        )
        if scroll_to is not None:
            self.details.scrollToAnchor(message_anchor(scroll_to))
        elif keep_scroll:
            bar.setValue(position)

    def _on_anchor(self, url: QUrl) -> None:
        target = url.toString()
        if target.startswith(TOGGLE):
            message_id = int(target.removeprefix(TOGGLE))
            self._expanded ^= {message_id}
            self._render(keep_scroll=True)

    def _details_hint(self) -> None:
        self.details.setHtml("<p style='color:gray'>Select a session to read its conversation.</p>")

    def details_html(self) -> str:
        return self.details.toHtml()

    # backups ----------------------------------------------------------------
    async def load_backups(self) -> None:
        """The selected session's backups, for the indicator and Restore…."""
        session_id = self.current_session_id()
        self._backups_generation += 1
        generation = self._backups_generation
        if session_id is None:
            self._show_backups(None)
            return
        backups = await self._client.backups(session_id=session_id)
        if generation == self._backups_generation:  # else the selection moved on
            self._show_backups(backups)

    def _show_backups(self, backups: list[BackupInfo] | None) -> None:
        self._backups = backups or []
        self.actions_bar.setVisible(backups is not None)
        self.restore_button.setEnabled(bool(self._backups))
        if not self._backups:
            self.backup_label.setText("Not backed up yet: only this computer has it")
            self.restore_button.setToolTip("Back this session up first (Dashboard → Back up now)")
            return
        newest = self._backups[0]  # the client lists newest first
        targets = sorted({b.target for b in self._backups})
        text = f"Backed up to {', '.join(targets)} {human_ago(newest.created_at)}"
        if newest.verify_status == "ok":
            text = "✓ " + text + " · verified"
        elif newest.verify_status == "failed":
            text = "✗ " + text + f" · verify failed: {newest.verify_error or 'see History'}"
        self.backup_label.setText(text)
        self.restore_button.setToolTip("Restore this session's files from its latest backup")

    # bring back -----------------------------------------------------------------------------
    def _update_bring_back(self) -> None:
        waiting = self.selected_in_backup_only()
        button = self.bring_back_button
        button.setVisible(bool(waiting))
        button.setText("Bring back" if len(waiting) < 2 else f"Bring back {len(waiting)}")
        button.setEnabled(bool(waiting) and not self.bring_back.busy())

    def start_bring_back(self) -> None:
        if self.selected_in_backup_only() and not self.bring_back.busy():
            self._runner.spawn(self.bring_back_selected())

    async def bring_back_selected(self) -> JobInfo | None:
        """The selected in-backup-only sessions into the workspace, from the targets
        their backups are on."""
        waiting = self.selected_in_backup_only()
        if not waiting:
            return None
        self.bring_back_button.setEnabled(False)
        try:
            found = await asyncio.gather(*(self._client.backups(session_id=s) for s in waiting))
            targets = sorted({b.target for backups in found for b in backups})
            return await self.bring_back.bring_back(waiting, targets)
        finally:
            self._update_bring_back()

    async def _brought_back(self) -> None:
        """The list greys no more, and the shown conversation is read again: its
        messages are local now."""
        self._detail = None  # else the re-selection below keeps the old, empty one
        await self.refresh()
        self._update_bring_back()
        session_id = self.current_session_id()
        task = self._detail_task
        if session_id is not None and self._detail is None and (task is None or task.done()):
            self._detail_generation += 1
            self._detail_task = self._runner.spawn(
                self._load_details(session_id, self._detail_generation)
            )

    def _show_context_menu(self, pos: QPoint) -> None:
        menu = self.make_context_menu()
        if menu is not None:
            menu.popup(self.table.viewport().mapToGlobal(pos))  # not exec(): see the import

    def make_context_menu(self) -> QMenu | None:
        """The actions on the selected rows (None: nothing selected)."""
        if not self.selected_session_ids():
            return None
        old = self.context_menu
        if old is not None:
            old.deleteLater()
        menu = QMenu(self)
        waiting = self.selected_in_backup_only()
        label = "Bring back" if len(waiting) < 2 else f"Bring back {len(waiting)} sessions"
        bring = menu.addAction(label)
        bring.setEnabled(bool(waiting) and not self.bring_back.busy())
        bring.triggered.connect(self.start_bring_back)
        restore = menu.addAction("Restore…")
        restore.setEnabled(len(self.selected_session_ids()) == 1 and bool(self._backups))
        restore.triggered.connect(self.open_restore)
        self.context_menu = menu
        return menu

    def backup_text(self) -> str:
        return self.backup_label.text() if self.actions_bar.isVisibleTo(self) else ""

    def open_restore(self) -> RestoreDialog | None:
        """The Restore dialog for the selected session (it loads itself)."""
        session_id = self.current_session_id()
        if session_id is None:
            return None
        old = self.restore_dialog
        if old is not None and old.job is not None:  # one restore at a time: show it again
            old.raise_()
            old.activateWindow()
            return old
        if old is not None:
            old.close()
            old.deleteLater()
        row = self.model.row_of(session_id)
        title = self.model.session_at(row).title if row >= 0 else None
        dialog = RestoreDialog(self._client, self._runner, self._pump, session_id, title, self)
        self.restore_dialog = dialog
        dialog.load_soon()
        dialog.open()
        return dialog

    async def open_session(self, session_id: str, message_id: int | None = None) -> None:
        """Select `session_id` and show its conversation scrolled to `message_id`."""
        self._focus = (session_id, message_id)
        if self.model.row_of(session_id) < 0:
            await self.refresh()
        if self.model.row_of(session_id) >= 0 and not self._select(session_id):
            self.filter_edit.clear()  # the filter hid it
            self._select(session_id)
        if self._detail is not None and self._detail.session.id == session_id:
            self._render(scroll_to=message_id)  # already shown: the selection did not change
        task = self._detail_task
        if task is not None and not task.done():
            await asyncio.shield(task)

    # import -----------------------------------------------------------------
    def choose_import_folder(self) -> None:
        start = CLAUDE_PROJECTS if CLAUDE_PROJECTS.is_dir() else Path.home()
        dialog = QFileDialog(self, "Import sessions from a folder", str(start))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(
            lambda path: self._runner.spawn(self.import_paths([path]), busy=self.import_button)
        )
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # not exec(): a nested event loop would stall the asyncio tasks

    async def import_paths(self, paths: list[str]) -> JobInfo:
        """Start an import job, show its progress, and refresh when it ends."""
        self.import_button.setEnabled(False)
        if self.empty.button is not None:
            self.empty.button.setEnabled(False)
        try:
            job = await self._client.start_import(paths)
            self._import_job = job
            self.progress.watch(job)
            final = await self._client.wait_job(job.id)
        finally:
            self._import_job = None
            self.progress.finish()
            self.import_button.setEnabled(True)
            if self.empty.button is not None:
                self.empty.button.setEnabled(True)
        await self.refresh()
        self.import_finished.emit(final)
        if final.state == JobState.FAILED:
            raise TierkeeperError(
                f"The import failed: {final.error or 'no reason given'}",
                hint="check the folder and try again",
            )
        return final

    def _cancel_job(self, job_id: int) -> None:
        self._runner.spawn(self._client.cancel_job(job_id))

    def _on_job_event(self, _topic: str, job: JobInfo) -> None:
        self.progress.update_job(job)

    def _on_event(self, event: Event) -> None:
        if event.topic == "sessions.changed":
            self._runner.spawn(self.refresh())  # also catches imports started elsewhere
        elif event.topic == "backups.changed":
            self._runner.spawn(self.load_backups())
