"""The main window: a sidebar of pages, a header with where and when, a status line.

The window owns the pieces every page shares: one `TaskRunner` (whose errors
land in the banner) and one `EventPump` (the client's events as signals).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, JobInfo, Status, TargetInfo
from core.client_switch import SwitchableClient, served_by
from core.errors import BadInputError, TierkeeperError
from core.models import JobState
from gui.banner import ErrorBanner
from gui.dashboard_page import DashboardPage
from gui.event_pump import EventPump
from gui.format import home_relative, human_ago, human_size, plural, target_where
from gui.history_page import HistoryPage
from gui.job_notice import Level, Notice
from gui.keyboard import install_shortcuts, name_widgets
from gui.palette import set_muted
from gui.reconnect import Reconnector
from gui.recover_banner import RecoverBanner, RecoverDialog, wants_rebuild
from gui.resources import app_icon, themed_icon
from gui.review_page import ReviewPage
from gui.search_page import SearchPage
from gui.service_banner import ServiceBanner
from gui.sessions_page import SessionsPage
from gui.settings_page import SettingsPage
from gui.setup_wizard import SEEN_KEY, Outcome, SetupWizard, wants_first_run
from gui.tasks import TaskRunner
from gui.tray import Tray

if TYPE_CHECKING:
    from gui.performance_page import PerformancePage

PAGES = ("dashboard", "sessions", "history", "performance", "review", "search", "settings")
_LABELS = {
    "dashboard": "Dashboard",
    "sessions": "Sessions",
    "history": "History",
    "performance": "Performance",
    "review": "Phase review",
    "search": "Search",
    "settings": "Settings",
}
_ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING, JobState.PAUSED)


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(
        self, client: Client, *, settings: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        # the pages keep this one client; a lost daemon's replacement is swapped in behind it
        self._switch = client if isinstance(client, SwitchableClient) else SwitchableClient(client)
        client = self._switch
        self.client = client
        self.workspace: str | None = None
        self._settings = settings if settings is not None else QSettings()
        self._jobs: dict[int, JobState] = {}
        self._backup_jobs: set[int] = set()
        self._targets: list[TargetInfo] = []
        self.runner = TaskRunner(self)
        self.pump = EventPump(client, self)

        self.setWindowTitle("Tierkeeper")
        self.setWindowIcon(app_icon())

        self.banner = ErrorBanner(self)
        self.runner.failed.connect(self.banner.show_message)
        self.service_banner = ServiceBanner(self)
        self.reconnector = Reconnector(self._switch, lambda: self.workspace, self._reconnected,
                                       self)  # fmt: skip
        self.pump.ended.connect(self.reconnector.connection_lost)
        self.reconnector.lost.connect(self._service_lost)
        self.reconnector.restored.connect(self._service_back)
        self.reconnector.failed.connect(self.service_banner.show_lost)
        self.service_banner.run_here.connect(self.reconnector.run_here)
        self.recover_banner = RecoverBanner(self)
        self.recover_banner.rebuild_requested.connect(self.open_rebuild)
        self.recover_dialog: RecoverDialog | None = None

        self.sessions = SessionsPage(client, self.runner, self.pump, self)
        self.search = SearchPage(client, self.runner, self)
        self.sessions.sessions_changed.connect(self.search.set_sessions)
        self.sessions.import_finished.connect(lambda _job: self.runner.spawn(self.refresh_status()))
        self.search.open_requested.connect(self.open_hit)
        self.dashboard = DashboardPage(client, self.runner, self.pump, self)
        self.dashboard.import_requested.connect(self._import_from_dashboard)
        self.dashboard.setup_requested.connect(self.open_setup_wizard)
        self.dashboard.targets_changed.connect(self._set_targets)
        self.history = HistoryPage(client, self.runner, self.pump, self)
        self.history.open_requested.connect(self.open_session)
        self.sessions.sessions_changed.connect(self.history.set_sessions)
        # built when first shown: its graphs library costs a third of a second to load
        self._performance: PerformancePage | None = None
        self.pump.job.connect(self._on_job_event)
        self.review_page = ReviewPage(client, self.runner, self.pump, self)
        self.settings_page = SettingsPage(client, self.runner, self.pump, self)
        self.settings_page.wizard_requested.connect(self.open_setup_wizard)
        self.wizard: SetupWizard | None = None
        self._pages: dict[str, QWidget] = {
            "dashboard": self.dashboard,
            "sessions": self.sessions,
            "history": self.history,
            "performance": QWidget(self),
            "review": self.review_page,
            "search": self.search,
            "settings": self.settings_page,
        }

        self.nav = QListWidget(self)
        self.nav.setObjectName("nav")
        self.nav.setFrameShape(QFrame.Shape.NoFrame)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.nav.setStyleSheet(
            "#nav { background: palette(window); } #nav::item { padding: 7px 10px; }"
        )
        self.pages = QStackedWidget(self)
        self.nav.setIconSize(QSize(16, 16))
        pal = self.nav.palette()
        for name in PAGES:
            icon = themed_icon(
                name,
                pal.color(QPalette.ColorRole.WindowText),
                pal.color(QPalette.ColorRole.HighlightedText),
            )
            item = QListWidgetItem(icon, _LABELS[name])
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.nav.addItem(item)
            self.pages.addWidget(self._pages[name])
        self.nav.setFixedWidth(self.nav.sizeHintForColumn(0) + 32)
        self.nav.currentRowChanged.connect(self._switch_to)

        self.title_label = QLabel("Tierkeeper", self)
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.workspace_label = QLabel(self)
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.phase_label = QLabel(self)
        self.facts_label = QLabel(self)
        set_muted(self.facts_label)
        self.backup_button = QPushButton("Backup now", self)
        self.backup_button.clicked.connect(
            lambda: self.runner.spawn(self.backup_now(), busy=self.backup_button)
        )
        self._update_backup_button()
        header = QHBoxLayout()
        header.setContentsMargins(14, 8, 14, 8)
        # a long workspace path may be cut (the tooltip has it whole) rather than widen the window
        self.workspace_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header.addWidget(self.title_label)
        header.addWidget(self.workspace_label, 1)
        header.addWidget(self.phase_label)
        header.addSpacing(16)
        header.addWidget(self.facts_label)
        header.addSpacing(16)
        header.addWidget(self.backup_button)
        header_frame = QFrame(self)
        header_frame.setLayout(header)
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.nav)
        divider = QFrame(self)
        divider.setFrameShape(QFrame.Shape.VLine)
        divider.setFrameShadow(QFrame.Shadow.Sunken)
        body.addWidget(divider)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        banner_row = QHBoxLayout()
        banner_row.setContentsMargins(12, 8, 12, 0)
        banner_row.addWidget(self.banner)
        right.addLayout(banner_row)
        service_row = QHBoxLayout()
        service_row.setContentsMargins(12, 8, 12, 0)
        service_row.addWidget(self.service_banner)
        right.addLayout(service_row)
        recover_row = QHBoxLayout()
        recover_row.setContentsMargins(12, 8, 12, 0)
        recover_row.addWidget(self.recover_banner)
        right.addLayout(recover_row)
        right.addWidget(self.pages, 1)
        body.addLayout(right, 1)

        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(header_frame)
        outer.addWidget(line)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)

        self.service_label = QLabel(self)
        self.service_label.setContentsMargins(8, 0, 0, 0)
        self.statusBar().addWidget(self.service_label)
        self._update_status_line()

        self._quitting = False
        self.tray = Tray(
            self,
            backup_now=self.start_backup,
            quit_app=self.quit_app,
        )
        self.pump.job.connect(self.tray.on_job)
        self._update_backup_button()

        geometry = self._settings.value("main_window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1200, 780)
        self.show_page("sessions")
        self.shortcuts = install_shortcuts(self, PAGES)
        name_widgets(self)

    # pages ------------------------------------------------------------------
    @property
    def performance(self) -> PerformancePage:
        if self._performance is None:
            from gui.performance_page import PerformancePage

            page = PerformancePage(self.client, self.runner, self)
            page.backup_requested.connect(self.start_backup)
            index = PAGES.index("performance")
            stand_in = self._pages["performance"]
            self.pages.insertWidget(index, page)
            self.pages.removeWidget(stand_in)
            stand_in.deleteLater()
            self._pages["performance"] = page
            self._performance = page
        return self._performance

    def _switch_to(self, row: int) -> None:
        if PAGES[row] == "performance":
            _ = self.performance
        self.pages.setCurrentIndex(row)

    def show_page(self, name: str) -> None:
        self.nav.setCurrentRow(PAGES.index(name))

    async def refresh_page(self) -> None:
        """F5: the header's numbers and the page in view, fetched again."""
        page = self._pages[self.current_page()]
        refresh = getattr(page, "refresh", None)
        await asyncio.gather(self.refresh_status(), *([refresh()] if refresh else []))

    def current_page(self) -> str:
        return PAGES[self.pages.currentIndex()]

    def open_hit(self, session_id: str, message_id: int) -> None:
        self.show_page("sessions")
        self.runner.spawn(self.sessions.open_session(session_id, message_id))

    def open_session(self, session_id: str) -> None:
        self.show_page("sessions")
        self.runner.spawn(self.sessions.open_session(session_id))

    def _import_from_dashboard(self) -> None:
        self.show_page("sessions")  # its progress line and list show the import
        self.sessions.choose_import_folder()

    # backup -----------------------------------------------------------------
    def has_targets(self) -> bool:
        return bool(self._targets)

    def _set_targets(self, targets: list[TargetInfo]) -> None:
        self._targets = list(targets)
        self._update_backup_button()

    def start_backup(self) -> None:
        """Back up now, from any button or menu: the header button shows it is busy."""
        self.runner.spawn(self.backup_now(), busy=self.backup_button)

    async def backup_now(self) -> JobInfo:
        """Every session to the first target; the dashboard follows the job."""
        if not self._targets:
            raise BadInputError(
                "There is no backup target yet",
                hint="add one in Settings → Run set-up wizard…",
            )
        return await self.dashboard.start_backup(self._targets[0].name)

    def _update_backup_button(self) -> None:
        self._show_backup_state()
        tray = getattr(self, "tray", None)  # the header button exists before the tray
        if tray is not None:
            tray.set_backup_enabled(self.backup_button.isEnabled(), self.backup_button.toolTip())

    def _show_backup_state(self) -> None:
        if not self._targets:
            self.backup_button.setEnabled(False)
            self.backup_button.setText("Backup now")
            self.backup_button.setToolTip(
                "No backup target yet. Add one in Settings → Run set-up wizard…"
            )
            return
        busy = bool(self._backup_jobs)
        first = self._targets[0]
        self.backup_button.setEnabled(not busy)
        self.backup_button.setText("Backing up…" if busy else "Backup now")
        self.backup_button.setToolTip(
            f"Back up every session to {first.name} ({target_where(first.kind, first.where)})"
        )

    # data -------------------------------------------------------------------
    async def load(self) -> None:
        """Fill the window once: status, the session list, jobs already running."""
        self.pump.start()
        await self.refresh_status()
        active = await self.client.jobs(active_only=True)
        for job in active:
            self._note_job(job)
        self.tray.note_jobs(active)
        self._update_status_line()
        await asyncio.gather(
            self.sessions.refresh(),
            self.dashboard.refresh(),
            self.history.refresh(),
            self.review_page.refresh(),
            self.settings_page.refresh(),
        )
        self.runner.spawn(self.check_catalog())

    # set-up -----------------------------------------------------------------
    def open_setup_wizard(self) -> SetupWizard:
        """One wizard at a time; asking again brings the open one forward."""
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            return self.wizard
        wizard = SetupWizard(self.client, self.runner, self, pump=self.pump)
        wizard.completed.connect(self._after_wizard)
        wizard.finished.connect(self._wizard_closed)
        self.wizard = wizard
        wizard.start()
        return wizard

    def _wizard_closed(self, _result: int) -> None:
        self._settings.setValue(SEEN_KEY, True)  # finished or dismissed: not offered again
        self._settings.sync()
        self.runner.spawn(self.dashboard.refresh())

    def _after_wizard(self, outcome: Outcome) -> None:
        if outcome.restored:
            self._rebuilt()
        if outcome.import_paths:
            self.show_page("sessions")
            self.runner.spawn(self._first_import(outcome))

    async def _first_import(self, outcome: Outcome) -> None:
        """The import shows on the Sessions page; the first backup follows it."""
        await self.sessions.import_paths(outcome.import_paths)
        if outcome.back_up:
            await self.dashboard.refresh()
            await self.backup_now()

    # a lost catalog -----------------------------------------------------------
    async def check_catalog(self) -> bool:
        """Offers the rebuild (a banner) when the catalog is empty or was set aside and a
        backup target holds sessions it lacks: the first, in the configured order, that
        answers (an unplugged disk must not hide the Drive behind it). Returns whether
        it was offered."""
        try:  # an offer, not a task the user asked for: a failure is not shown as an error
            status = await self.client.status()
            if status.sessions and status.db_state == "ok":
                return False
            targets = [t for t in (await self.client.config()).targets if t.kind != "s3"]
        except TierkeeperError:
            return False
        for target in targets:
            try:
                contents = await self.client.backup_contents(target.name)
            except TierkeeperError:
                continue  # away or unreadable: the next one may hold the backups
            if wants_rebuild(status, contents):
                self.recover_banner.offer(status, contents)
                return True
        return False

    def open_rebuild(self, target: str) -> RecoverDialog:
        dialog = RecoverDialog(self.client, self.runner, self.pump, target, self)
        dialog.panel.finished.connect(lambda _job: self._rebuilt())
        dialog.finished.connect(dialog.deleteLater)
        self.recover_dialog = dialog
        dialog.open()
        return dialog

    def _rebuilt(self) -> None:
        """The recovered sessions show on the Sessions page (as in a backup only)."""
        self.recover_banner.hide()
        self.show_page("sessions")
        self.runner.spawn(self.refresh_page())
        self.runner.spawn(self.sessions.refresh())

    async def offer_first_run(self) -> SetupWizard | None:
        """Opens the wizard on a workspace with nothing set up, unless it was turned away."""
        if wants_first_run(await self.client.config(), self._settings):
            return self.open_setup_wizard()
        return None

    async def refresh_status(self) -> None:
        self._show_status(await self.client.status())

    def _show_status(self, status: Status) -> None:
        self.workspace = status.workspace
        workspace = home_relative(Path(status.workspace))
        self.setWindowTitle(f"Tierkeeper — {workspace}")
        self.workspace_label.setText(f"— {workspace}")
        self.workspace_label.setToolTip(status.workspace)
        self.phase_label.setText(
            f"phase: {status.current_phase}" if status.current_phase else "no phase started"
        )
        facts = [
            plural(status.sessions, "session"),
            plural(status.messages, "message"),
            f"DB {human_size(status.db_bytes)}",
        ]
        if status.last_import is not None:
            facts.append(f"last import {human_ago(status.last_import)}")
        self.facts_label.setText(" · ".join(facts))

    def _note_job(self, job: JobInfo) -> None:
        if job.state in _ACTIVE:
            self._jobs[job.id] = job.state
        else:
            self._jobs.pop(job.id, None)
        if job.kind == "backup" and job.state in (JobState.QUEUED, JobState.RUNNING):
            self._backup_jobs.add(job.id)
        else:
            self._backup_jobs.discard(job.id)
        self._update_backup_button()

    def _on_job_event(self, topic: str, job: JobInfo) -> None:
        self._note_job(job)
        self._update_status_line()
        if topic == "job.finished":
            self.runner.spawn(self.refresh_status())

    def jobs_running(self) -> int:
        return sum(1 for s in self._jobs.values() if s == JobState.RUNNING)

    def _update_status_line(self) -> None:
        queued = sum(1 for s in self._jobs.values() if s == JobState.QUEUED)
        if self.reconnector.reconnecting:
            self.service_label.setText("no service — reconnecting…")
            return
        text = f"{served_by(self.client)} · {plural(self.jobs_running(), 'job')} running"
        if queued:
            text += f" · {queued} queued"
        waiting = sum(1 for s in self._jobs.values() if s == JobState.WAITING)
        if waiting:
            text += f" · {waiting} waiting for a target"
        paused = sum(1 for s in self._jobs.values() if s == JobState.PAUSED)
        if paused:
            text += f" · {paused} paused"
        self.service_label.setText(text)

    # a lost service ----------------------------------------------------------
    def _service_lost(self) -> None:
        self.service_banner.show_lost()
        self._update_status_line()

    def _service_back(self, _who: str) -> None:
        self.service_banner.hide()
        self._update_status_line()

    async def _reconnected(self) -> None:
        """A new service: what the window knew of jobs is stale; load it all again."""
        self._jobs.clear()
        self._backup_jobs.clear()
        await self.pump.stop()
        await self.load()

    # lifecycle --------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop listening and cancel what is in flight; the caller closes the client."""
        await self.pump.stop()  # first: closing a service here must not look like a loss
        await self.reconnector.stop()
        await self.runner.shutdown()

    def closes_to_tray(self) -> bool:
        """Closing hides the window while a tray can bring it back, so scheduled work goes on."""
        keep = self._settings.value("tray/close_to_tray", True, type=bool)
        return bool(keep) and self.tray.available and not self._quitting

    def quit_app(self) -> None:
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.closes_to_tray():
            event.ignore()
            self.hide()
            if not self._settings.value("tray/told_about_tray", False, type=bool):
                self._settings.setValue("tray/told_about_tray", True)
                self.tray.notify(Notice(
                    "Tierkeeper is still running",
                    "Backups and scheduled work go on. Quit from the tray icon's menu.",
                    Level.INFO,
                    always=True,
                ))  # fmt: skip
            return
        self._settings.setValue("main_window/geometry", self.saveGeometry())
        self._settings.sync()
        super().closeEvent(event)
        self.closed.emit()
