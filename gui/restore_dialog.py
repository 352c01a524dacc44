"""Restore one session (or one of its files) from a backup into a folder, as a job.

The dialog asks what, from which target, where to, and what to do with files
already there (keep both by default: a restore never replaces a file unless
told to). Then it follows the restore job: progress, a parked job's reason
(the disk is unplugged) with Retry now, and the result with Open folder.
Cancel cancels the job; the dialog closes once the job has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.client import BackupInfo, Client, JobInfo
from core.errors import TierkeeperError
from core.models import JobState
from gui.event_pump import EventPump
from gui.format import home_relative, human_ago, human_size, human_time, plural
from gui.job_progress import JobProgress
from gui.palette import set_muted
from gui.tasks import TaskRunner
from gui.tier_card import COLORS, Health

RESTORES = "Tierkeeper restores"
RECHECK_SECONDS = 2.0
"""While the job waits, how often to look again in case its requeue event was missed."""
SHOWN_FILES = 6


def default_destination(session_id: str) -> Path:
    return Path.home() / RESTORES / session_id


def _newest_per_target(backups: list[BackupInfo]) -> list[BackupInfo]:
    newest: dict[str, BackupInfo] = {}
    for b in sorted(backups, key=lambda b: b.id, reverse=True):
        newest.setdefault(b.target, b)
    return sorted(newest.values(), key=lambda b: b.id, reverse=True)


def _backup_line(b: BackupInfo) -> str:
    verified = {"ok": f"verified {human_ago(b.verified_at)}", "failed": "failed its last verify"}
    return (
        f"Backup of {human_time(b.created_at)} on {b.target} · "
        f"{human_size(b.raw_bytes)} ({human_size(b.stored_bytes)} stored) · "
        + verified.get(b.verify_status or "", "not verified")
    )


class RestoreDialog(QDialog):
    job_finished = Signal(object)
    """The restore job's final JobInfo (done, failed or cancelled)."""

    def __init__(
        self,
        client: Client,
        runner: TaskRunner,
        pump: EventPump,
        session_id: str,
        title: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.session_id = session_id
        self.job: JobInfo | None = None
        self._backups: list[BackupInfo] = []
        self._written: list[Path] = []
        self._moved = asyncio.Event()
        self._cancel_asked = False
        self._load_task: asyncio.Task[None] | None = None
        self.setWindowTitle("Restore session")
        self.setMinimumWidth(640)

        self.heading = QLabel(f"Restore “{title or session_id}”", self)
        font = QFont(self.heading.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.heading.setFont(font)
        self.heading.setWordWrap(True)
        self.backup_label = QLabel("Looking for backups…", self)
        self.backup_label.setWordWrap(True)
        set_muted(self.backup_label)

        self.target_box = QComboBox(self)
        self.target_box.currentIndexChanged.connect(self._on_target)
        self.target_box.hide()
        self.target_label = QLabel(self)  # one target: nothing to choose
        source = QHBoxLayout()
        source.setContentsMargins(0, 0, 0, 0)
        source.addWidget(self.target_box, 1)
        source.addWidget(self.target_label, 1)

        self.whole = QRadioButton("The whole session", self)
        self.one_file = QRadioButton("One file:", self)
        self.file_box = QComboBox(self)
        self.file_box.setEnabled(False)
        self.one_file.toggled.connect(self.file_box.setEnabled)
        self.whole.setChecked(True)
        what_group = QButtonGroup(self)
        what_group.addButton(self.whole)
        what_group.addButton(self.one_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.one_file)
        file_row.addWidget(self.file_box, 1)
        what = QVBoxLayout()
        what.setSpacing(4)
        what.addWidget(self.whole)
        what.addLayout(file_row)

        self.into_folder = QRadioButton("This folder:", self)
        self.original = QRadioButton("Back where each file came from", self)
        self.original.setToolTip(
            "Each file goes back to the path it was imported from; the session's "
            "snapshots go back into the workspace"
        )
        self.into_folder.setChecked(True)
        place_group = QButtonGroup(self)
        place_group.addButton(self.into_folder)
        place_group.addButton(self.original)
        self.dest_edit = QLineEdit(home_relative(default_destination(session_id)), self)
        self.dest_edit.setCursorPosition(0)  # the start says where; the end is the session id
        self.dest_edit.textChanged.connect(lambda _t: self._update_buttons())
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        self.into_folder.toggled.connect(self.dest_edit.setEnabled)
        self.into_folder.toggled.connect(self.browse_button.setEnabled)
        self.into_folder.toggled.connect(lambda _on: self._update_buttons())
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.into_folder)
        folder_row.addWidget(self.dest_edit, 1)
        folder_row.addWidget(self.browse_button)
        where = QVBoxLayout()
        where.setSpacing(4)
        where.addLayout(folder_row)
        where.addWidget(self.original)

        self.keep_both = QRadioButton("Keep both (the restored copy gets a new name)", self)
        self.overwrite = QRadioButton("Overwrite the existing file", self)
        for choice in (self.keep_both, self.overwrite):
            choice.setToolTip("A file that already holds the backup's bytes is left as it is")
        self.keep_both.setChecked(True)
        conflict_group = QButtonGroup(self)
        conflict_group.addButton(self.keep_both)
        conflict_group.addButton(self.overwrite)
        conflict = QVBoxLayout()
        conflict.setSpacing(4)
        conflict.addWidget(self.keep_both)
        conflict.addWidget(self.overwrite)

        self.form_widget = QWidget(self)
        form = QFormLayout(self.form_widget)
        form.setContentsMargins(0, 0, 0, 0)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("From:", source)
        form.addRow("What:", what)
        form.addRow("To:", where)
        form.addRow("If a file exists:", conflict)

        self.progress = JobProgress(self)
        self.progress.cancel_button.hide()  # the dialog's own Cancel does it
        self.result_label = QLabel(self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)  # always escaped HTML
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.hide()
        self.open_button = QPushButton("Open folder", self)
        self.open_button.clicked.connect(self.open_folder)
        self.open_button.hide()
        self.retry_button = QPushButton("Retry now", self)
        self.retry_button.setToolTip("Try the target again at once")
        self.retry_button.clicked.connect(
            lambda: self._runner.spawn(self._client.retry_waiting(), busy=self.retry_button)
        )
        self.retry_button.hide()
        result_row = QHBoxLayout()
        result_row.addWidget(self.result_label, 1)
        result_row.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        result_row.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)

        self.buttons = QDialogButtonBox(self)
        self.restore_button = self.buttons.addButton(
            "Restore", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.restore_button.setDefault(True)
        self.restore_button.setEnabled(False)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(self.heading)
        layout.addWidget(self.backup_label)
        layout.addSpacing(4)
        layout.addWidget(self.form_widget)
        layout.addWidget(self.progress)
        layout.addLayout(result_row)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        pump.job.connect(self._on_job_event)
        self.finished.connect(self._on_closed)

    # loading ----------------------------------------------------------------
    def load_soon(self) -> None:
        self._load_task = self._runner.spawn(self.load())

    async def wait_loaded(self) -> None:
        """Returns once the load that `load_soon` started has ended (however it ended)."""
        task = self._load_task
        if task is not None:
            await asyncio.wait([task])

    async def load(self) -> None:
        """The session's backups (a target each) and its files (for "one file")."""
        backups, detail = await asyncio.gather(
            self._client.backups(session_id=self.session_id),
            self._client.session(self.session_id, messages=False),
        )
        self._backups = _newest_per_target(backups)
        names = sorted({Path(src.path).name for src in detail.sources})
        self.file_box.clear()
        self.file_box.addItems(names)
        self.one_file.setVisible(bool(names))
        self.file_box.setVisible(bool(names))
        self.target_box.blockSignals(True)
        self.target_box.clear()
        for b in self._backups:
            self.target_box.addItem(b.target)
        self.target_box.blockSignals(False)
        several = len(self._backups) > 1
        self.target_box.setVisible(several)
        self.target_label.setVisible(not several)
        self.target_label.setText(self._backups[0].target if self._backups else "—")
        self._on_target(0)

    def _on_target(self, index: int) -> None:
        if 0 <= index < len(self._backups):
            self.backup_label.setText(_backup_line(self._backups[index]))
        else:
            self.backup_label.setText(
                "This session has no backup yet: back it up first (Dashboard → Back up now)."
            )
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.job is not None
        placed = self.original.isChecked() or bool(self.dest_edit.text().strip())
        self.restore_button.setEnabled(not running and bool(self._backups) and placed)

    # choosing ---------------------------------------------------------------
    def browse(self) -> None:
        start = Path(self.dest_edit.text()).expanduser()
        while not start.is_dir() and start != start.parent:
            start = start.parent
        dialog = QFileDialog(self, "Restore into a folder", str(start))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.dest_edit.setText)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # not exec(): a nested event loop would stall the asyncio tasks

    def destination(self) -> Path | None:
        """None: back where each file came from."""
        if self.original.isChecked():
            return None
        return Path(self.dest_edit.text().strip()).expanduser()

    def chosen_file(self) -> str | None:
        if not self.one_file.isChecked():
            return None
        return self.file_box.currentText() or None

    def chosen_target(self) -> str | None:
        index = self.target_box.currentIndex()
        return self._backups[index].target if 0 <= index < len(self._backups) else None

    # the job ----------------------------------------------------------------
    def start(self) -> None:
        if self.restore_button.isEnabled():
            self._runner.spawn(self.run_restore())

    async def run_restore(self) -> JobInfo | None:
        """Start the job and follow it to its end; errors show in the dialog."""
        self._set_running(True)
        self._show_result(None)
        try:
            dest = self.destination()
            job = await self._client.start_restore(
                self.session_id, None if dest is None else str(dest), target=self.chosen_target(),
                file=self.chosen_file(), overwrite=self.overwrite.isChecked(),
            )  # fmt: skip
        except TierkeeperError as exc:
            self._set_running(False)
            self._show_error(str(exc))
            return None
        self.job = job
        self.progress.watch(job)
        try:
            final = await self._follow(job.id)
        finally:
            self.job = None
            self.progress.finish()
            self.retry_button.hide()
        self._show_final(final)
        self.job_finished.emit(final)
        return final

    async def _follow(self, job_id: int) -> JobInfo:
        while True:
            self._moved.clear()
            info = await self._client.wait_job(job_id)
            if info.state != JobState.WAITING:
                return info
            self._show_waiting(info)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), RECHECK_SECONDS)

    def _on_job_event(self, _topic: str, job: JobInfo) -> None:
        if self.job is None or job.id != self.job.id:
            return
        self.progress.update_job(job)
        if job.state != JobState.WAITING:
            self.retry_button.hide()
            if self.result_label.property("waiting"):
                self._show_result(None)
            self._moved.set()

    def _show_waiting(self, job: JobInfo) -> None:
        reason = job.wait_reason or "the target does not answer"
        self._show_result(
            f"Waiting: {html.escape(reason)}<br>The restore starts by itself when the target "
            "answers again.",
            COLORS[Health.BUSY].name(),
        )
        self.result_label.setProperty("waiting", True)
        self.retry_button.setVisible(not job.needs_user)

    def _show_final(self, final: JobInfo) -> None:
        if final.state == JobState.DONE:
            written = [Path(p) for p in (final.result or {}).get("written", [])]
            renamed = [p for p in written if " (restored " in p.name]
            self._written = written
            dest = self.destination()
            place = "where they came from" if dest is None else html.escape(home_relative(dest))
            lines = [
                f"<span style='color:{COLORS[Health.OK].name()}'>✓</span> "
                f"{plural(len(written), 'file')} restored "
                f"{'' if dest is None else 'to '}{place}"
            ]
            if renamed:
                lines.append(
                    f"{plural(len(renamed), 'file')} already there kept; the restored "
                    f"{'copy has' if len(renamed) == 1 else 'copies have'} a new name."
                )
            shown = (lambda p: home_relative(p)) if dest is None else (lambda p: p.name)
            names = [html.escape(shown(p)) for p in written[:SHOWN_FILES]]
            if len(written) > SHOWN_FILES:
                names.append(f"and {len(written) - SHOWN_FILES} more")
            self._show_result(
                "<br>".join(lines)
                + "".join(f"<br>&nbsp;&nbsp;{n}" for n in names)
            )  # fmt: skip
            self.open_button.show()
            self.restore_button.hide()
            self.cancel_button.setText("Close")
            self.cancel_button.setEnabled(True)
            self.form_widget.setEnabled(False)
        elif final.state == JobState.CANCELLED:
            asked = self._cancel_asked
            self._set_running(False)
            if asked:
                super().reject()
            else:  # cancelled elsewhere (the dashboard, the CLI)
                self._show_error("The restore was cancelled.")
        else:
            self._set_running(False)
            self.restore_button.setText("Try again")
            self._show_error(f"The restore failed: {final.error or 'no reason given'}")

    def _set_running(self, running: bool) -> None:
        self.form_widget.setEnabled(not running)
        self.restore_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        if not running:
            self._cancel_asked = False
            self._update_buttons()

    def _show_result(self, html_text: str | None, color: str | None = None) -> None:
        self.result_label.setProperty("waiting", False)
        self.result_label.setStyleSheet(f"color: {color};" if color else "")
        self.result_label.setText(html_text or "")
        self.result_label.setVisible(bool(html_text))

    def _show_error(self, text: str) -> None:
        self._show_result(html.escape(text), COLORS[Health.ERROR].name())

    def result_text(self) -> str:
        return self.result_label.text() if self.result_label.isVisibleTo(self) else ""

    def open_folder(self) -> None:
        dest = self.destination()
        if dest is None:  # back in place: the folder of the first file restored
            dest = self._written[0].parent if self._written else Path.home()
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(dest)))

    # closing ----------------------------------------------------------------
    def reject(self) -> None:
        """Cancel (or Esc, or the title bar's ✕): stops a running job first."""
        if self.job is not None:
            self._cancel_asked = True
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            self._runner.spawn(self._client.cancel_job(self.job.id))
            return
        super().reject()

    def _on_closed(self, _result: int) -> None:
        task = self._load_task
        if task is not None and not task.done():
            task.cancel()
