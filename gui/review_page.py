"""Phase review: a phase's end-of-phase report, as the review wrote it, with its charts.

The page renders what the service hands over (`review(phase)`: the Markdown,
chart names, metadata) and never reads the workspace itself. Charts come one
request each (`review_chart`) and are registered as resources of the text
document under the very names the Markdown links to (`charts/<name>`), so the
report shows as it reads on disk or on Drive.

Closed phases come first in the picker: their review is the final one. Writing
(or rewriting) a review is a job, followed by the progress line; a review job
that ends anywhere (the CLI, a `phase close`) reloads the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QImage, QTextDocument
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, Event, JobInfo, PhaseReviewDoc, PhaseSummary
from core.errors import NotFoundError
from core.models import JobState
from gui.empty_state import EmptyState
from gui.event_pump import EventPump
from gui.format import plural
from gui.job_progress import JobProgress
from gui.palette import set_muted
from gui.reloader import Reloader
from gui.tasks import TaskRunner

FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
WATCHED = ("review", "phase-close")


class ReportView(QTextBrowser):
    """The report; its images are the charts the page fetched, never files on disk."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(True)
        self.images: dict[str, QImage] = {}

    def show_report(self, markdown: str, images: dict[str, QImage]) -> None:
        self.images = dict(images)
        self.setMarkdown(markdown)  # clears the document, its resources too
        doc = self.document()
        for name, image in self.images.items():
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)

    def loadResource(self, kind: int, name: QUrl | str) -> object:
        if kind == QTextDocument.ResourceType.ImageResource.value:
            image = self.images.get(name.toString() if isinstance(name, QUrl) else name)
            if image is not None:
                return image
        return super().loadResource(kind, name)


class ReviewPage(QWidget):
    def __init__(
        self, client: Client, runner: TaskRunner, pump: EventPump, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.reload = Reloader(self._load)
        self.phases: list[PhaseSummary] = []
        self.doc: PhaseReviewDoc | None = None
        self._job: int | None = None

        self.phase_box = QComboBox(self)
        self.phase_box.setMinimumContentsLength(18)
        self.phase_box.currentIndexChanged.connect(self._phase_chosen)
        self.facts = QLabel(self)
        set_muted(self.facts)
        self.write_button = QPushButton("Write review", self)
        self.write_button.clicked.connect(self.write_review)
        self.html_button = QPushButton("Open HTML", self)
        self.html_button.setToolTip("The report as one self-contained web page")
        self.html_button.clicked.connect(self.open_html)
        self.html_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Phase", self))
        top.addWidget(self.phase_box)
        top.addWidget(self.facts, 1)
        top.addWidget(self.write_button)
        top.addWidget(self.html_button)

        self.progress = JobProgress(self)
        self.progress.cancel_requested.connect(
            lambda job_id: self._runner.spawn(self._client.cancel_job(job_id))
        )
        self.report = ReportView(self)
        self.no_review = EmptyState(
            "No review yet",
            "The review sums the phase up: latency, errors, tool use, agents, token cost, "
            "with charts and advice. Closing a phase writes it; you can write one now too.",
            action="Write review",
        )
        assert self.no_review.button is not None
        self.no_review.button.clicked.connect(self.write_review)
        self.body = QStackedWidget(self)
        self.body.addWidget(self.report)
        self.body.addWidget(self.no_review)

        self.main = QWidget(self)
        inner = QVBoxLayout(self.main)
        inner.setContentsMargins(12, 10, 12, 10)
        inner.addLayout(top)
        inner.addWidget(self.progress)
        inner.addWidget(self.body, 1)

        self.empty = EmptyState(
            "No closed phase yet",
            "Close one with `tierkeeper phase close` or the button: its sessions are backed "
            "up, its review is written, and it shows here.",
            action="Close the current phase",
        )
        assert self.empty.button is not None
        self.empty.button.clicked.connect(self._close_current)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.main)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        pump.job.connect(self._on_job)
        pump.other.connect(self._on_event)

    # what is shown ----------------------------------------------------------------------
    def showing_empty_state(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def current_phase(self) -> str | None:
        data = self.phase_box.currentData()
        return str(data) if data else None

    async def refresh(self) -> None:
        await self.reload()

    async def _load(self) -> None:
        phases = await self._client.phases()
        self.phases = phases
        chosen = self.current_phase()
        if not any(p.status == "closed" or p.reviewed_at for p in phases):
            self._show_empty(phases)
            return
        self.stack.setCurrentWidget(self.main)
        self.phase_box.blockSignals(True)
        self.phase_box.clear()
        for p in phases:
            self.phase_box.addItem(_label(p), p.name)
        names = [p.name for p in phases]
        self.phase_box.setCurrentIndex(names.index(chosen) if chosen in names else 0)
        self.phase_box.blockSignals(False)
        await self._load_review()

    def _show_empty(self, phases: list[PhaseSummary]) -> None:
        current = next((p for p in phases if p.current), None)
        assert self.empty.button is not None
        self.empty.button.setVisible(current is not None)
        if current is not None:
            self.empty.button.setText(f"Close phase {current.name}")
        else:
            self.empty.text.setText(
                "Phases group sessions into milestones: start one with `tierkeeper phase new "
                "NAME`. Close it with `tierkeeper phase close` when it ends: its sessions are "
                "backed up, its review is written, and it shows here."
            )
        self.stack.setCurrentWidget(self.empty)

    async def _load_review(self) -> None:
        phase = self.current_phase()
        summary = next((p for p in self.phases if p.name == phase), None)
        if phase is None or summary is None:
            return
        self.facts.setText(_facts(summary))
        try:
            doc = await self._client.review(phase)
        except NotFoundError:
            self.doc = None
            self.report.clear()
            self.no_review.title.setText(f"No review of {phase} yet")
            self.body.setCurrentWidget(self.no_review)
            self._update_buttons()
            return
        names = doc.charts
        pngs = await asyncio.gather(*(self._client.review_chart(phase, n) for n in names))
        images = {}
        for name, png in zip(names, pngs, strict=True):
            image = QImage.fromData(png)
            if not image.isNull():
                images[f"charts/{name}"] = image
        if self.current_phase() != phase:
            return  # another phase was chosen meanwhile; its load shows it
        self.doc = doc
        self.report.show_report(doc.markdown, images)
        self.body.setCurrentWidget(self.report)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self._job is not None
        self.write_button.setText("Refresh" if self.doc is not None else "Write review")
        self.write_button.setToolTip("Write the review again from the analytics DB")
        self.write_button.setEnabled(not busy and self.current_phase() is not None)
        if self.no_review.button is not None:
            self.no_review.button.setEnabled(not busy)
        self.html_button.setEnabled(self.doc is not None and self.doc.html_path is not None)

    def _phase_chosen(self, _index: int) -> None:
        self._runner.spawn(self._load_review())

    # actions ----------------------------------------------------------------------------
    def write_review(self) -> None:
        phase = self.current_phase()
        if phase is not None:
            self._runner.spawn(self._start(self._client.start_review(phase, html=True)))

    def _close_current(self) -> None:
        current = next((p for p in self.phases if p.current), None)
        if current is not None:
            self._runner.spawn(self._start(self._client.start_phase_close(current.name)))

    async def _start(self, starting: Awaitable[JobInfo]) -> JobInfo:
        job = await starting
        self._job = job.id
        self.stack.setCurrentWidget(self.main)
        self.progress.watch(job)
        self._update_buttons()
        return job

    def open_html(self) -> None:
        if self.doc is not None and self.doc.html_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.doc.html_path))

    # events -----------------------------------------------------------------------------
    def _on_job(self, topic: str, job: JobInfo) -> None:
        if job.id == self._job:
            self.progress.update_job(job)
            if job.state in FINISHED or job.state == JobState.WAITING:
                self._job = None
                if job.state != JobState.WAITING:
                    self.progress.finish()
                self._update_buttons()
        if topic == "job.finished" and job.kind in WATCHED:
            self._runner.spawn(self.reload())

    def _on_event(self, event: Event) -> None:
        if event.topic in ("review.changed", "phases.changed"):
            self._runner.spawn(self.reload())


def _label(p: PhaseSummary) -> str:
    return p.name if p.status == "closed" else f"{p.name} (open)"


def _facts(p: PhaseSummary) -> str:
    parts = [plural(p.sessions, "session")]
    if p.closed_at:
        parts.append(f"closed {p.closed_at[:10]}")
    elif p.created_at:
        parts.append(f"open since {p.created_at[:10]}")
    if p.reviewed_at:
        parts.append(f"reviewed {p.reviewed_at[:16].replace('T', ' ')}")
    return " · ".join(parts)
