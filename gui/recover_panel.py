"""What a backup holds, and the rebuild of the catalog from it, followed as a job.

Shared by the wizard's "Restore from an existing backup" page and the dialog the
empty-catalog banner opens: the user sees the target's sessions and phases first
(is it the right disk?), gives the passphrase when the backups are encrypted and
this computer has no key for them, then the rebuild runs as a job with its
progress here. The passphrase is checked by `start_recover` before any job exists,
so a wrong one is said next to its field.
"""

from __future__ import annotations

import html

from pydantic import SecretStr
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.client import BackupContents, Client, JobInfo
from core.errors import TierkeeperError
from core.models import JobState
from gui.event_pump import EventPump
from gui.format import human_ago, plural
from gui.job_progress import JobProgress
from gui.passphrase_row import PassphraseRow
from gui.tasks import TaskRunner
from gui.wizard_common import Message


def contents_text(c: BackupContents) -> str:
    """The backup in a few lines: how much, which phases, how old, whether it is locked."""
    if not c.sessions and not c.archived_phases:
        return f"{c.target} holds no Tierkeeper backups."
    lines = [f"<b>{plural(c.sessions, 'session')}</b> backed up on {html.escape(c.target)}"]
    if c.phases:
        parts = []
        for p in c.phases:
            state = f", {p.status}" if p.status else ""
            parts.append(f"{html.escape(p.name)} ({p.sessions}{state})")
        lines.append("Phases: " + ", ".join(parts))
    if c.archived_phases:
        lines.append("Archived phases: " + ", ".join(html.escape(p) for p in c.archived_phases))
    if c.written_at:
        by = f" by Tierkeeper {html.escape(c.written_by)}" if c.written_by else ""
        lines.append(f"Last written {human_ago(c.written_at)}{by}")
    elif c.index != "ok":
        lines.append(f"Its index: {html.escape(c.index)} (the sessions are found by listing)")
    if c.known_here:
        lines.append(f"{c.known_here} of them this workspace knows already (left as they are)")
    if c.encrypted:
        lines.append(
            "Encrypted: this computer has its key."
            if c.unlocked
            else "Encrypted: give its passphrase or recovery code to read it."
        )
    return "<br>".join(lines)


def result_text(job: JobInfo) -> str:
    result = job.result or {}
    added = int(result.get("sessions_added") or 0)
    text = (
        f"{plural(added, 'session')} added. They list as “in backup only” until restored "
        "(Sessions → Bring back); their totals and tool statistics show now."
    )
    problems = list(result.get("problems") or [])
    if problems:
        text += f"\n{plural(len(problems), 'problem')}: " + "; ".join(problems[:3])
    return text


class RecoverPanel(QWidget):
    finished = Signal(object)
    """The rebuild job's final JobInfo (done, failed or cancelled)."""
    contents_shown = Signal(object)
    """The BackupContents just read."""

    def __init__(
        self,
        client: Client,
        runner: TaskRunner,
        pump: EventPump | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.target: str | None = None
        self.contents: BackupContents | None = None
        self.job: JobInfo | None = None
        self.final: JobInfo | None = None
        self.contents_label = QLabel("", self)
        self.contents_label.setWordWrap(True)
        self.contents_label.setTextFormat(Qt.TextFormat.RichText)
        self.contents_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.passphrase_row = PassphraseRow(self)
        self.passphrase = self.passphrase_row.edit
        self.passphrase.textChanged.connect(lambda _t: self._update())
        self.rebuild_button = QPushButton("Rebuild the catalog from this backup", self)
        self.rebuild_button.setToolTip(
            "Reads the backups' manifests and catalogs (no session data), adds what they "
            "describe to this workspace; nothing is written to the backup"
        )
        self.rebuild_button.clicked.connect(self.start)
        self.rebuild_button.setEnabled(False)
        self.progress = JobProgress(self)
        self.progress.cancel_requested.connect(
            lambda job_id: self._runner.spawn(self._client.cancel_job(job_id))
        )
        self.message = Message(self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rebuild_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.contents_label)
        layout.addWidget(self.passphrase_row)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        if pump is not None:
            pump.job.connect(lambda _topic, job: self.progress.update_job(job))

    # what the target holds ------------------------------------------------------------
    async def look(self, target: str) -> BackupContents | None:
        self.target = target
        self.message.clear_message()
        self.contents_label.setText(f"Looking at {html.escape(target)}…")
        try:
            contents = await self._client.backup_contents(target)
        except TierkeeperError as exc:
            self.contents = None
            self.contents_label.setText("")
            self.message.error(str(exc))
            self._update()
            return None
        self.show_contents(contents)
        return contents

    def show_contents(self, contents: BackupContents) -> None:
        self.contents = contents
        self.contents_label.setText(contents_text(contents))
        self.passphrase_row.setVisible(contents.encrypted and not contents.unlocked)
        self._update()
        self.contents_shown.emit(contents)

    def needs_passphrase(self) -> bool:
        return self.passphrase_row.isVisibleTo(self)

    def _update(self) -> None:
        c = self.contents
        ready = c is not None and (c.sessions > 0 or bool(c.archived_phases))
        if self.needs_passphrase() and not self.passphrase.text():
            ready = False
        self.rebuild_button.setEnabled(ready and self.job is None and not self.done())

    def done(self) -> bool:
        return self.final is not None and self.final.state == JobState.DONE

    # the rebuild -------------------------------------------------------------------------
    def start(self) -> None:
        if self.rebuild_button.isEnabled():
            self._runner.spawn(self.rebuild())

    async def rebuild(self) -> JobInfo | None:
        if self.target is None:
            return None
        secret = SecretStr(self.passphrase.text()) if self.needs_passphrase() else None
        self.rebuild_button.setEnabled(False)
        self.message.clear_message()
        try:
            job = await self._client.start_recover([self.target], secret=secret)
        except TierkeeperError as exc:
            self.message.error(str(exc))
            self._update()
            return None
        self.passphrase.clear()
        self.job = job
        self.progress.watch(job)
        try:
            final = await self._client.wait_job(job.id)
        finally:
            self.job = None
            self.progress.finish()
        self.final = final
        if final.state == JobState.DONE:
            self.message.ok(result_text(final))
            self.rebuild_button.setText("Rebuilt")
        elif final.state == JobState.CANCELLED:
            self.message.info("The rebuild was cancelled; what it added stays.")
        elif final.state in (JobState.WAITING, JobState.PAUSED):
            self.message.info(
                f"The rebuild waits: {final.wait_reason or 'the target does not answer'}. "
                "It goes on by itself once the target is back."
            )
        else:
            self.message.error(final.error or f"The rebuild {final.state.value}")
        self._update()
        self.finished.emit(final)
        return final
