"""The dashboard: each tier's health at a glance, the jobs running, the jobs just done.

It reloads from the client when something it shows changes (`backups.changed`,
`sessions.changed`, a job finishing or parking) and moves the progress bars
from the live `job.*` events in between. Every button starts a job through the
client and never waits for it here: the running list and the cards follow the
job's events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, Event, JobInfo, Status, TargetInfo
from gui.dashboard_cards import (
    ArchiveCard,
    LocalCard,
    NoTargetCard,
    TargetCard,
    is_archive,
    paused_backup,
)
from gui.event_pump import EventPump
from gui.recent_jobs import RecentJobs
from gui.reloader import Reloader
from gui.running_jobs import ACTIVE, RunningJobs
from gui.sign_in_again import SignInAgainDialog
from gui.tasks import TaskRunner
from gui.tier_card import TierCard
from gui.unlock_dialog import UnlockDialog

RELOAD_TOPICS = frozenset({"job.finished", "job.waiting", "job.paused"})
OTHER_TOPICS = frozenset({"backups.changed", "sessions.changed", "config.changed"})
CLOCK_MS = 30_000
"""How often "2 min ago" is recomputed; nothing is fetched for it."""


def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    label.setFont(font)
    return label


class DashboardPage(QWidget):
    import_requested = Signal()
    setup_requested = Signal()
    """A card's Set up… (no backup target, no archive): the window opens the wizard."""
    targets_changed = Signal(list)
    """The backup (Tier 2) targets, list[TargetInfo], after every reload (for Backup now)."""

    def __init__(
        self, client: Client, runner: TaskRunner, pump: EventPump, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.reload = Reloader(self._load)
        self._status: Status | None = None
        self._targets: list[TargetInfo] = []
        self._archives: list[TargetInfo] = []
        self._active: dict[int, JobInfo] = {}
        self.loaded = False

        content = QWidget(self)
        self.local_card = LocalCard(content)
        self.local_card.import_button.clicked.connect(self.import_requested)
        self.archive_card = ArchiveCard(content)
        self.no_target_card = NoTargetCard(content)
        self.no_target_card.setup_button.clicked.connect(self.setup_requested)
        self.archive_card.setup_button.clicked.connect(self.setup_requested)
        self.target_cards: dict[str, TargetCard] = {}
        self.unlock_dialog: UnlockDialog | None = None
        self.sign_in_dialog: SignInAgainDialog | None = None
        self.cards_row = QHBoxLayout()
        self.cards_row.setSpacing(12)
        self.cards_row.addWidget(self.local_card, 1)
        self.cards_row.addWidget(self.no_target_card, 1)
        self.cards_row.addWidget(self.archive_card, 1)

        self.running = RunningJobs(content)
        self.running.cancel_requested.connect(self._cancel)
        self.running.pause_requested.connect(
            lambda job_id: self._runner.spawn(self._ask(job_id, self._client.pause_job))
        )
        self.running.resume_requested.connect(
            lambda job_id: self._runner.spawn(self._ask(job_id, self._client.resume_job))
        )
        self.recent = RecentJobs(content)

        column = QVBoxLayout(content)
        column.setContentsMargins(12, 10, 12, 10)
        column.setSpacing(8)
        column.addLayout(self.cards_row)
        column.addSpacing(14)
        column.addWidget(_heading("Running", content))
        column.addWidget(self.running)
        column.addSpacing(14)
        column.addWidget(_heading("Recent", content))
        column.addWidget(self.recent)
        column.addStretch(1)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

        pump.job.connect(self._on_job_event)
        pump.other.connect(self._on_event)
        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_MS)
        self._clock.timeout.connect(self._render)
        self._clock.start()

    # data -------------------------------------------------------------------
    async def refresh(self) -> None:
        """Reload everything the page shows; concurrent asks share one reload."""
        await self.reload()

    async def _load(self) -> None:
        status, targets, jobs = await asyncio.gather(
            self._client.status(), self._client.targets(), self._client.jobs()
        )
        self._status = status
        self._targets = [t for t in targets if not is_archive(t)]
        self._archives = [t for t in targets if is_archive(t)]
        self._active = {j.id: j for j in jobs if j.state in ACTIVE}
        self.running.set_jobs(list(self._active.values()))
        self.recent.set_jobs(jobs)
        self._render()
        self.loaded = True
        self.targets_changed.emit(list(self._targets))

    def _render(self) -> None:
        active = list(self._active.values())
        if self._status is not None:
            self.local_card.show_status(self._status, active)
        self._sync_target_cards()
        for info in self._targets:
            self.target_cards[info.name].show_target(info, active)
        self.archive_card.show_archives(self._archives, active)
        self.recent.refresh_times()

    def _sync_target_cards(self) -> None:
        names = [t.name for t in self._targets]
        for name in list(self.target_cards):
            if name not in names:
                card = self.target_cards.pop(name)
                self.cards_row.removeWidget(card)
                card.deleteLater()
        for name in names:
            if name not in self.target_cards:
                card = TargetCard(name, self.local_card.parentWidget())
                card.backup_button.clicked.connect(
                    lambda _=False, n=name, c=card: self._spawn(self.start_backup(n),
                                                                c.backup_button)
                )  # fmt: skip
                card.verify_button.clicked.connect(
                    lambda _=False, n=name, c=card: self._spawn(self.start_verify(n),
                                                                c.verify_button)
                )  # fmt: skip
                card.retry_button.clicked.connect(
                    lambda _=False, c=card: self._spawn(self.retry_waiting(), c.retry_button)
                )
                card.unlock_button.clicked.connect(lambda _=False, c=card: self.open_unlock(c))
                card.sign_in_button.clicked.connect(lambda _=False, c=card: self.open_sign_in(c))
                self.cards_row.insertWidget(self.cards_row.indexOf(self.archive_card), card, 1)
                self.target_cards[name] = card
        self.no_target_card.setVisible(not names)

    def cards(self) -> list[TierCard]:
        """The visible cards, left to right."""
        out: list[TierCard] = []
        for i in range(self.cards_row.count()):
            item = self.cards_row.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, TierCard) and not widget.isHidden():
                out.append(widget)
        return out

    # actions ----------------------------------------------------------------
    def open_sign_in(self, card: TargetCard) -> SignInAgainDialog:
        """The browser opens at once: the button said what it would do."""
        if self.sign_in_dialog is not None:
            self.sign_in_dialog.reject()
        dialog = SignInAgainDialog(
            self._client, self._runner, card.name, card.signed_out_reason, self
        )
        dialog.signed_in.connect(lambda _name: self._runner.spawn(self.refresh()))
        dialog.finished.connect(lambda *_: setattr(self, "sign_in_dialog", None))
        self.sign_in_dialog = dialog
        dialog.open()
        dialog.start()
        return dialog

    def open_unlock(self, card: TargetCard) -> UnlockDialog:
        """Not modal: the window goes on showing the jobs while the passphrase is typed."""
        if self.unlock_dialog is not None:
            self.unlock_dialog.close()
        dialog = UnlockDialog(self._client, self._runner, card.name, card.locked_reason, self)
        dialog.unlocked.connect(lambda _name: self._runner.spawn(self.refresh()))
        dialog.destroyed.connect(lambda *_: setattr(self, "unlock_dialog", None))
        self.unlock_dialog = dialog
        dialog.open()
        return dialog

    def _spawn(self, coro: Coroutine[Any, Any, Any], button: QPushButton) -> None:
        self._runner.spawn(coro, busy=button)

    # The job's own events (job.queued first) put it in the running list and turn
    # the card busy: tracking the JobInfo returned here could re-add a job whose
    # job.finished was already handled while this call was returning.
    async def start_backup(self, target: str) -> JobInfo:
        """Every session to `target`; a paused backup there is resumed instead."""
        paused = paused_backup(target, list(self._active.values()))
        if paused is not None:
            return await self._client.resume_job(paused.id)
        return await self._client.start_backup([], target)

    async def start_verify(self, target: str) -> JobInfo:
        return await self._client.start_verify(target)

    async def retry_waiting(self) -> int:
        count = await self._client.retry_waiting()
        await self.refresh()
        return count

    async def _ask(self, job_id: int, call: Callable[[int], Awaitable[JobInfo]]) -> None:
        """Pause or resume; the job's own events move the line, as for every other change."""
        try:
            await call(job_id)
        finally:
            self.running.request_done(job_id)

    def _cancel(self, job_id: int) -> None:
        self._runner.spawn(self._client.cancel_job(job_id))

    # events -----------------------------------------------------------------
    def _track(self, job: JobInfo) -> None:
        before = self._active.get(job.id)
        if job.state in ACTIVE:
            self._active[job.id] = job
        else:
            self._active.pop(job.id, None)
        self.running.update_job(job)
        if before is None or before.state != job.state:
            self._render()  # a card may turn busy or idle

    def _on_job_event(self, topic: str, job: JobInfo) -> None:
        self._track(job)
        if topic in RELOAD_TOPICS:
            self._runner.spawn(self.refresh())

    def _on_event(self, event: Event) -> None:
        if event.topic in OTHER_TOPICS:
            self._runner.spawn(self.refresh())
