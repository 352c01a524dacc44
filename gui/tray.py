"""The tray icon: status at a glance, quick actions, and notifications when jobs end.

Backups run for minutes or wait hours for a target or a thaw; the user should
not have to keep the window open to learn how they ended. Where the desktop has
no tray (or under the offscreen platform) the same notices go to the window's
status bar, so nothing is lost and the behaviour can be tested.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QSystemTrayIcon

from core.client import JobInfo
from core.models import JobState
from gui.format import plural
from gui.job_notice import Level, Notice, notice_for
from gui.resources import app_icon

_ICONS = {
    Level.INFO: QSystemTrayIcon.MessageIcon.Information,
    Level.WARNING: QSystemTrayIcon.MessageIcon.Warning,
    Level.ERROR: QSystemTrayIcon.MessageIcon.Critical,
}
_ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING, JobState.PAUSED)
NOTICE_MS = 10_000


class Tray(QObject):
    notified = Signal(object)
    """Every `Notice` shown, in the tray or in the status bar."""

    def __init__(
        self,
        window: QMainWindow,
        *,
        backup_now: Callable[[], None],
        quit_app: Callable[[], None],
        available: bool | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._states: dict[int, JobState] = {}
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if available is None else available

        self.menu = QMenu(window)
        self.status_action = QAction("Idle", self.menu)
        self.status_action.setEnabled(False)
        self.show_action = QAction("Show Tierkeeper", self.menu)
        self.show_action.triggered.connect(self.show_window)
        self.backup_action = QAction("Back up now", self.menu)
        self.backup_action.triggered.connect(backup_now)
        self.quit_action = QAction("Quit", self.menu)
        self.quit_action.triggered.connect(quit_app)
        self.menu.addAction(self.status_action)
        self.menu.addSeparator()
        for action in (self.show_action, self.backup_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)

        self.icon = QSystemTrayIcon(app_icon(), self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.icon.messageClicked.connect(self.show_window)
        self._update_status()
        if self.available:
            self.icon.show()

    # actions ----------------------------------------------------------------
    def show_window(self) -> None:
        w = self._window
        w.setWindowState(w.windowState() & ~Qt.WindowState.WindowMinimized)
        w.show()
        w.raise_()
        w.activateWindow()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if self._window.isVisible() and not self._window.isMinimized():
                self._window.hide()
            else:
                self.show_window()

    def set_backup_enabled(self, enabled: bool, tip: str) -> None:
        self.backup_action.setEnabled(enabled)
        self.backup_action.setToolTip(tip)

    # jobs -------------------------------------------------------------------
    def note_jobs(self, jobs: list[JobInfo]) -> None:
        """Jobs already known when the window opens: their later events compare against these."""
        for job in jobs:
            self._states[job.id] = job.state
        self._update_status()

    def on_job(self, topic: str, job: JobInfo) -> None:
        before = self._states.get(job.id)
        self._states[job.id] = job.state
        notice = notice_for(topic, job, before)
        if job.state not in _ACTIVE:
            self._states.pop(job.id, None)
        self._update_status()
        if notice is not None and (notice.always or not self._in_front()):
            self.notify(notice)

    def _in_front(self) -> bool:
        w = self._window
        return w.isVisible() and not w.isMinimized() and w.isActiveWindow()

    def notify(self, notice: Notice) -> None:
        if self.available and self.icon.isVisible():
            self.icon.showMessage(notice.title, notice.body, _ICONS[notice.level], NOTICE_MS)
        else:
            first = notice.body.splitlines()[0] if notice.body else ""
            self._window.statusBar().showMessage(f"{notice.title} — {first}", NOTICE_MS)
        self.notified.emit(notice)

    def _update_status(self) -> None:
        running = sum(1 for s in self._states.values() if s == JobState.RUNNING)
        waiting = sum(1 for s in self._states.values() if s == JobState.WAITING)
        queued = sum(1 for s in self._states.values() if s == JobState.QUEUED)
        parts = [plural(running, "job") + " running"] if running else []
        if queued:
            parts.append(f"{queued} queued")
        if waiting:
            parts.append(f"{waiting} waiting")
        paused = sum(1 for s in self._states.values() if s == JobState.PAUSED)
        if paused:
            parts.append(f"{paused} paused")
        text = " · ".join(parts) if parts else "Idle"
        self.status_action.setText(text)
        self.icon.setToolTip(f"Tierkeeper — {text}")

    def status_text(self) -> str:
        return self.status_action.text()
