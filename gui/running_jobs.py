"""The jobs in flight, one `JobProgress` line each, with Pause/Resume and Cancel.

Fed two ways: live `job.*` events move the bars, and a full list from the
client (on every dashboard reload) adds what was missed and drops what ended,
so a lost event cannot leave a finished job on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.models import JobInfo, JobState
from gui.job_progress import JobProgress
from gui.palette import set_muted

ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING, JobState.PAUSED)


class RunningJobs(QWidget):
    cancel_requested = Signal(int)
    pause_requested = Signal(int)
    resume_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[int, JobProgress] = {}
        self.setAccessibleName("Running jobs")
        self.empty = QLabel("Nothing running.", self)
        set_muted(self.empty)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._layout.addWidget(self.empty)

    def update_job(self, job: JobInfo) -> None:
        if job.state not in ACTIVE:
            self.remove(job.id)
            return
        row = self.rows.get(job.id)
        if row is None:
            row = JobProgress(self)
            row.title.setMinimumWidth(260)
            # a long reason ("waiting: the folder … is not available …") wraps
            # instead of widening the page
            row.detail.setWordWrap(True)
            row.detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            layout = row.layout()
            if isinstance(layout, QHBoxLayout):
                layout.setStretchFactor(row.bar, 1)
                layout.setStretchFactor(row.detail, 2)
            row.cancel_requested.connect(self.cancel_requested)
            row.pause_requested.connect(self.pause_requested)
            row.resume_requested.connect(self.resume_requested)
            row.allow_pause()
            # oldest first, as the queue runs them
            later = [i for i in self.rows if i > job.id]
            at = self._layout.indexOf(self.rows[min(later)]) if later else self._layout.count()
            self._layout.insertWidget(at, row)
            self.rows[job.id] = row
            row.watch(job)
        else:
            row.update_job(job)
        self.empty.setVisible(not self.rows)

    def set_jobs(self, jobs: list[JobInfo]) -> None:
        """The complete list of active jobs, as the client reports it now."""
        current = {j.id for j in jobs if j.state in ACTIVE}
        for job_id in list(self.rows):
            if job_id not in current:
                self.remove(job_id)
        for job in sorted(jobs, key=lambda j: j.id):
            self.update_job(job)

    def remove(self, job_id: int) -> None:
        row = self.rows.pop(job_id, None)
        if row is not None:
            row.finish()
            self._layout.removeWidget(row)
            row.deleteLater()
        self.empty.setVisible(not self.rows)

    def request_done(self, job_id: int) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            row.request_done()

    def job_ids(self) -> list[int]:
        return sorted(self.rows)
