"""One running job as a line: what it is, a progress bar, numbers, and Cancel.

Fed by `job.*` events for the job it watches; the owner decides what to do
when the job ends (the widget only shows it). Pause/Resume is there only where
the owner asks for it (`allow_pause`): a dialog that follows one restore closes
with its job, so a paused job there would be out of reach.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from core.models import JobInfo, JobState
from gui.format import first_part, human_duration, human_size
from gui.palette import set_muted


def progress_of(job: JobInfo) -> tuple[int, int]:
    """(done, total) on the finest scale the job reports; total 0 means unknown."""
    if job.bytes_total:
        return job.bytes_done, job.bytes_total
    if job.items_total:
        return job.items_done, job.items_total
    if job.steps_total:
        return job.steps_done, job.steps_total
    return 0, 0


ITEMS = {"import": "files", "restore": "files"}
"""What a job's items are; the rest (backup, recovery, closing a phase) count sessions."""


def describe(job: JobInfo) -> str:
    """ "12 of 81 sessions · 3.1 MB/s · 4.0 s left"; only the parts the job knows."""
    parts: list[str] = []
    items = ITEMS.get(job.kind, "sessions")
    if job.items_total:
        parts.append(f"{job.items_done} of {job.items_total} {items}")
    elif job.items_done:
        parts.append(f"{job.items_done} {items}")
    if job.bytes_total:
        parts.append(f"{human_size(job.bytes_done)} of {human_size(job.bytes_total)}")
    if job.rate and job.bytes_total:
        parts.append(f"{human_size(job.rate)}/s")
    if job.eta_seconds is not None and job.state == JobState.RUNNING:
        parts.append(f"{human_duration(job.eta_seconds)} left")
    if job.state == JobState.QUEUED:
        parts.append("waiting to start")
    if job.state == JobState.WAITING:
        parts.append(f"waiting: {first_part(job.wait_reason) or 'the target is unreachable'}")
    if job.state == JobState.PAUSED:
        parts.append("paused — Resume goes on where it stopped")
    return " · ".join(parts)


class JobProgress(QWidget):
    cancel_requested = Signal(int)
    pause_requested = Signal(int)
    resume_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job: JobInfo | None = None
        self.title = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.bar.setMinimumWidth(160)
        self.detail = QLabel(self)
        set_muted(self.detail)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._cancel)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.pause_button.hide()
        self._allow_pause = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.cancel_button)
        self.hide()

    def allow_pause(self) -> None:
        self._allow_pause = True
        if self.job is not None:
            self._show_pause(self.job)

    def watch(self, job: JobInfo) -> None:
        self.job = job
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.pause_button.setEnabled(True)
        self.update_job(job)
        self.show()

    def update_job(self, job: JobInfo) -> None:
        if self.job is None or job.id != self.job.id:
            return
        self.job = job
        self.title.setText(job.title)
        done, total = progress_of(job)
        if total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(min(1000, round(1000 * done / total)))
        else:
            self.bar.setRange(0, 0)  # busy indicator until the job knows its size
        self.detail.setText(describe(job))
        self.bar.setEnabled(job.state != JobState.PAUSED)  # a greyed bar reads as "stopped"
        self.title.setAccessibleName(f"{job.title}, {job.state.value}")
        self.cancel_button.setAccessibleName(f"Cancel {job.title}")
        self._show_pause(job)

    def _show_pause(self, job: JobInfo) -> None:
        button = self.pause_button
        button.setVisible(self._allow_pause)
        if not self._allow_pause:
            return
        paused = job.state == JobState.PAUSED
        wanted = "Resume" if paused else "Pause"
        if button.isEnabled():  # else a request is in flight and says so ("Pausing…")
            button.setText(wanted)
        button.setToolTip(
            "Put it back in the queue; it goes on where it stopped"
            if paused
            else "Stop it for now, keeping what is done; Resume goes on from there"
        )
        button.setAccessibleName(f"{wanted} {job.title}")

    def request_done(self) -> None:
        """The pause or resume asked for has been answered (or failed): offer the button
        again, labelled for the state the job is known to be in."""
        self.pause_button.setEnabled(True)
        if self.job is not None:
            self._show_pause(self.job)

    def finish(self) -> None:
        self.job = None
        self.hide()

    def _cancel(self) -> None:
        if self.job is not None:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            self.cancel_requested.emit(self.job.id)

    def _pause_or_resume(self) -> None:
        if self.job is None:
            return
        self.pause_button.setEnabled(False)  # until the owner's `request_done`
        if self.job.state == JobState.PAUSED:
            self.pause_button.setText("Resuming…")
            self.resume_requested.emit(self.job.id)
        else:
            self.pause_button.setText("Pausing…")
            self.pause_requested.emit(self.job.id)
