"""The set-up wizard: on first run, and again from Settings.

Pages in order: welcome, sources, schedule (nothing saved yet), encryption (the
commit point), backup target, archive (each saved when left, after a real
check), summary. Finish saves the sources and the schedule in one
`update_config`; the import and the first backup are the window's to run, so
they show on its pages and outlive the wizard (`completed` says what to start).

The wizard is opened with `open()`, never `exec()`: a nested event loop would
stall every asyncio task, this wizard's own checks included.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QWidget, QWizard

from core.client import Client, ConfigPatch, Settings
from core.errors import TierkeeperError
from gui.event_pump import EventPump
from gui.tasks import TaskRunner
from gui.wizard_archive import ArchivePage
from gui.wizard_backup import BackupPage
from gui.wizard_basics import SchedulePage, SourcesPage, WelcomePage
from gui.wizard_encryption import EncryptionPage
from gui.wizard_restore import RestorePage
from gui.wizard_state import SetupState
from gui.wizard_summary import SummaryPage

SEEN_KEY = "setup_wizard/seen"
"""QSettings: the wizard was finished or dismissed once; it no longer opens by itself."""
PAGE_NAMES = ("welcome", "sources", "schedule", "encryption", "backup", "archive", "summary",
              "restore")  # fmt: skip
"""In page-id order; "restore" is the other road from the welcome page, its only page."""


def wants_first_run(settings: Settings, qsettings: QSettings) -> bool:
    """A workspace whose agent folders are not chosen yet, and a user who has not turned
    the wizard away. A backup target alone does not count as set up: `make run` gives every
    new workspace a local folder target, so the app works before any choice is made."""
    seen = bool(qsettings.value(SEEN_KEY, False, type=bool))
    return not settings.sources and not seen


@dataclass
class Outcome:
    import_paths: list[str] = field(default_factory=list)
    back_up: bool = False
    restored: bool = False
    """The catalog was rebuilt from a backup (the restore road): nothing else was chosen."""


class SetupWizard(QWizard):
    completed = Signal(object)
    """An Outcome, once Finish saved the settings."""

    def __init__(
        self,
        client: Client,
        runner: TaskRunner,
        parent: QWidget | None = None,
        *,
        pump: EventPump | None = None,
    ) -> None:
        """`pump`: the window's events, for the rebuild's progress on the restore page."""
        super().__init__(parent)
        self.setWindowTitle("Set up Tierkeeper")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setMinimumSize(760, 600)
        self.state = SetupState(client, runner, self)
        self._runner = runner
        self.welcome = WelcomePage(self.state)
        self.sources = SourcesPage(self.state)
        self.schedule = SchedulePage(self.state)
        self.encryption = EncryptionPage(self.state)
        self.backup = BackupPage(self.state)
        self.archive = ArchivePage(self.state)
        self.summary = SummaryPage(self.state)
        self.restore = RestorePage(self.state, pump)
        for page in (self.welcome, self.sources, self.schedule, self.encryption, self.backup,
                     self.archive, self.summary, self.restore):  # fmt: skip
            self.addPage(page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Finish")
        self._finishing = False
        self._load_task: asyncio.Task[None] | None = None
        self.outcome: Outcome | None = None

    def start(self) -> None:
        """Loads what the pages show, then opens (window-modal, without a nested loop)."""
        self._load_task = self._runner.spawn(self._load())
        self.open()

    async def wait_loaded(self) -> None:
        """Returns once the load that `start` began has ended (however it ended)."""
        if self._load_task is not None:
            await asyncio.wait([self._load_task])

    async def _load(self) -> None:
        try:
            await self.state.load()
        except TierkeeperError as exc:
            self.state.load_error = str(exc)
            self.welcome.workspace_label.setText(f"Could not read the settings: {exc}")

    def nextId(self) -> int:
        """Two roads from the welcome page: set-up (to the summary, which ends it) or
        restore (its one page)."""
        current = self.currentId()
        if current == PAGE_NAMES.index("welcome"):
            return PAGE_NAMES.index("restore" if self.welcome.restoring() else "sources")
        if current in (PAGE_NAMES.index("summary"), PAGE_NAMES.index("restore")):
            return -1
        return super().nextId()

    def page_name(self) -> str:
        return PAGE_NAMES[self.currentId()] if self.currentId() >= 0 else ""

    def initializePage(self, page_id: int) -> None:
        if page_id == PAGE_NAMES.index("summary"):
            # the pages' own values, also when a page was skipped over (a screenshot)
            self.state.sources = self.sources.chosen()
            self.state.schedule = self.schedule.form.patch()
        super().initializePage(page_id)

    # finishing --------------------------------------------------------------
    def accept(self) -> None:
        """Finish: saves, then closes; a refused setting keeps the wizard open and says why."""
        if self._finishing:
            return
        if self.currentId() == PAGE_NAMES.index("restore"):
            self.outcome = Outcome(restored=self.restore.panel.done())
            self.completed.emit(self.outcome)
            super().accept()
            return
        self._finishing = True
        self.button(QWizard.WizardButton.FinishButton).setEnabled(False)
        self._runner.spawn(self._finish())

    async def _finish(self) -> None:
        s = self.state
        try:
            await s.client.update_config(ConfigPatch(sources=s.sources, schedule=s.schedule))
        except TierkeeperError as exc:
            self.summary.message.error(str(exc))
            return
        finally:
            self._finishing = False
            self.button(QWizard.WizardButton.FinishButton).setEnabled(True)
        self.outcome = Outcome(
            import_paths=list(s.sources) if self.summary.import_check.isChecked() else [],
            back_up=self.summary.backup_check.isChecked(),
        )
        self.completed.emit(self.outcome)
        super().accept()

    def reject(self) -> None:
        """Cancel: a sign-in in the browser is called off; targets already saved stay."""
        self.backup.drive.cancel()
        self.restore.drive.cancel()
        super().reject()
