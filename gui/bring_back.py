"""Bringing "in backup only" sessions back into the workspace, from the Sessions page.

After a rebuild the catalog knows a session (its totals, its tools) but its files
and messages stay on the target. `start_recover(restore=True, sessions=…)` fetches
them, checks them against their manifest and re-imports them; this panel runs that
job with its progress and Cancel, and asks for the passphrase when the target is
encrypted and this computer has no key for it, with the field the rebuild uses. The
passphrase is checked before any job exists, so a wrong one is said next to the
field and stays there to be corrected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from core.client import Client, JobInfo
from core.errors import ExitCode, TierkeeperError
from core.models import JobState
from gui.event_pump import EventPump
from gui.format import plural
from gui.job_progress import JobProgress
from gui.passphrase_row import PassphraseRow
from gui.tasks import TaskRunner
from gui.wizard_common import Message


def outcome_text(job: JobInfo) -> tuple[bool, str]:
    """(all went well, what to tell): the restore part of the recover job's result."""
    restore: dict[str, Any] = dict((job.result or {}).get("restore") or {})
    restored = list(restore.get("restored") or [])
    failed = [str(f) for f in restore.get("failed") or []]
    archived: dict[str, list[str]] = dict(restore.get("archived") or {})
    parts = []
    if restored:
        parts.append(
            f"{plural(len(restored), 'session')} brought back: readable and searchable here again"
        )
    for phase, ids in sorted(archived.items()):
        parts.append(
            f"{plural(len(ids), 'session')} of phase {phase} only its archive holds: "
            f"bring them back with `tierkeeper archive-restore {phase}`"
        )
    if failed:
        parts.append(f"{plural(len(failed), 'problem')}: " + "; ".join(failed[:3]))
    if not parts:
        parts.append("Nothing was waiting to be brought back")
    return not failed and not archived, "\n".join(parts)


class BringBackPanel(QWidget):
    finished = Signal(object)
    """The job's final JobInfo (done, failed or cancelled)."""

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
        self.job: JobInfo | None = None
        self.final: JobInfo | None = None
        self._pending: tuple[list[str], list[str]] | None = None
        """(sessions, targets) waiting for the passphrase."""

        self.passphrase_row = PassphraseRow(self)
        self.passphrase = self.passphrase_row.edit
        self.passphrase.returnPressed.connect(self.retry)
        self.unlock_button = QPushButton("Unlock and bring back", self.passphrase_row)
        self.unlock_button.clicked.connect(self.retry)
        self.unlock_button.setEnabled(False)
        self.passphrase.textChanged.connect(
            lambda text: self.unlock_button.setEnabled(bool(text) and self.job is None)
        )
        self.passphrase_row.form.addRow("", self.unlock_button)
        self.progress = JobProgress(self)
        self.progress.cancel_requested.connect(
            lambda job_id: self._runner.spawn(self._client.cancel_job(job_id))
        )
        self.message = Message(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        row = QHBoxLayout()
        row.addWidget(self.passphrase_row)
        row.addStretch(1)
        layout.addLayout(row)
        if pump is not None:
            pump.job.connect(lambda _topic, job: self.progress.update_job(job))

    def busy(self) -> bool:
        return self.job is not None

    def needs_passphrase(self) -> bool:
        return self.passphrase_row.isVisibleTo(self)

    def retry(self) -> None:
        """The passphrase was given: start again what asked for it."""
        if self._pending is not None and self.passphrase.text() and not self.busy():
            sessions, targets = self._pending
            self._runner.spawn(self.bring_back(sessions, targets))

    async def bring_back(
        self, sessions: Sequence[str], targets: Sequence[str] = ()
    ) -> JobInfo | None:
        """Runs the job for `sessions`, read from `targets` (every target when empty).
        None when it could not start (the reason is shown here)."""
        if self.busy() or not sessions:
            return None
        secret = (
            SecretStr(self.passphrase.text())
            if self.needs_passphrase() and self.passphrase.text()
            else None
        )
        self.message.clear_message()
        self.unlock_button.setEnabled(False)
        try:
            job = await self._client.start_recover(
                list(targets) or None, secret=secret, restore=True, sessions=list(sessions)
            )
        except TierkeeperError as exc:
            self._pending = (list(sessions), list(targets))
            if exc.exit_code == ExitCode.NEEDS_USER and secret is None:
                self.passphrase_row.show()
                self.message.info(f"{exc.message}: give its passphrase or recovery code.")
                self.passphrase.setFocus()
            else:
                self.message.error(str(exc))
            self.unlock_button.setEnabled(bool(self.passphrase.text()))
            return None
        self._pending = None
        self.passphrase.clear()
        self.passphrase_row.hide()
        self.job = job
        self.progress.watch(job)
        try:
            final = await self._client.wait_job(job.id)
        finally:
            self.job = None
            self.progress.finish()
        self.final = final
        self._say(final)
        self.finished.emit(final)
        return final

    def _say(self, final: JobInfo) -> None:
        if final.state == JobState.DONE:
            ok, text = outcome_text(final)
            (self.message.ok if ok else self.message.error)(text)
        elif final.state == JobState.CANCELLED:
            self.message.info("Cancelled: the sessions brought back before it stopped stay.")
        elif final.state in (JobState.WAITING, JobState.PAUSED):
            self.message.info(
                f"Waiting: {final.wait_reason or 'the target does not answer'}. "
                "It goes on by itself once the target is back."
            )
        else:
            self.message.error(final.error or f"Bringing back {final.state.value}")
