"""The last finished jobs: ✓ or ✗, what it was, what it did, when.

A failure shows its error right under it (in words a person can act on: the
core's errors say what to do next); a job that finished with some parts
failed lists those parts, so "done" never hides a session left out.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from core.models import JobInfo, JobState
from gui.format import human_ago, human_duration, human_time
from gui.job_summary import PARTIAL, duration, mark, problems, summary
from gui.palette import set_muted
from gui.tier_card import COLORS, Health

LIMIT = 8
MAX_PROBLEMS = 3
_MARK_COLORS = {JobState.DONE: COLORS[Health.OK], JobState.FAILED: COLORS[Health.ERROR]}


def _colored(label: QLabel, color: QColor) -> QLabel:
    pal = label.palette()
    pal.setColor(QPalette.ColorRole.WindowText, color)
    label.setPalette(pal)
    return label


class RecentJobs(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs: list[JobInfo] = []
        self._lines: list[str] = []
        self.empty = QLabel("No jobs yet: imports, backups and restores show here.", self)
        set_muted(self.empty)
        self._grid_host = QWidget(self)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.empty)
        self._layout.addWidget(self._grid_host)

    def set_jobs(self, jobs: list[JobInfo]) -> None:
        """Any jobs; the newest finished ones are shown."""
        finished = [j for j in jobs if j.state in (JobState.DONE, JobState.FAILED,
                                                   JobState.CANCELLED)]  # fmt: skip
        finished.sort(key=lambda j: (j.finished_at or "", j.id), reverse=True)
        self.jobs = finished[:LIMIT]
        self._render()

    def refresh_times(self) -> None:
        self._render()

    def _render(self) -> None:
        host = QWidget(self)
        grid = QGridLayout(host)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(5, 1)  # the columns stay together at the left
        self._lines = []
        row = 0
        for job in self.jobs:
            took = duration(job)
            cells = [
                mark(job),
                job.title,
                summary(job) if job.state != JobState.FAILED else "failed",
                human_duration(took) if took is not None else "",
                human_ago(job.finished_at),
            ]
            for col, text in enumerate(cells):
                label = QLabel(text, host)
                label.setTextFormat(Qt.TextFormat.PlainText)
                if col == 0 and text == PARTIAL:
                    _colored(label, COLORS[Health.BUSY])
                elif col == 0 and job.state in _MARK_COLORS:
                    _colored(label, _MARK_COLORS[job.state])
                elif col >= 2:
                    set_muted(label)
                if col == 4:
                    label.setToolTip(human_time(job.finished_at))
                    label.setAlignment(Qt.AlignmentFlag.AlignRight)
                if col == 3:
                    label.setAlignment(Qt.AlignmentFlag.AlignRight)
                grid.addWidget(label, row, col)
            self._lines.append("  ".join(c for c in cells if c))
            row += 1
            details = [job.error or "no reason given"] if job.state == JobState.FAILED else []
            found = problems(job)
            details += found[:MAX_PROBLEMS]
            if len(found) > MAX_PROBLEMS:
                details.append(f"and {len(found) - MAX_PROBLEMS} more")
            for text in details:
                label = QLabel(text, host)
                label.setTextFormat(Qt.TextFormat.PlainText)
                label.setWordWrap(True)
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                color = COLORS[Health.ERROR if job.state == JobState.FAILED else Health.BUSY]
                grid.addWidget(_colored(label, color), row, 1, 1, 5)
                self._lines.append(f"    {text}")
                row += 1
        self._layout.replaceWidget(self._grid_host, host)
        self._grid_host.deleteLater()
        self._grid_host = host
        self.empty.setVisible(not self.jobs)

    def lines(self) -> list[str]:
        """What the list says, a line per row (tests read this)."""
        return list(self._lines)
