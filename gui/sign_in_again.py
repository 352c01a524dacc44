"""Sign a saved Drive target in again from the window: what `target reconnect` does.

Google revokes or expires the app's access (the user removed it, changed their
password, six months unused); the backups then wait, and the tier card says
"Signed out" and offers this. The browser opens on Google's page at once; the
dialog waits without blocking the window, offers the page again, and Cancel
calls the sign-in off. The jobs waiting for it go on by themselves once it is
done; the old tokens stay until the new ones work.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.client import Client
from core.errors import TierkeeperError
from gui.browser_sign_in import BrowserSignIn
from gui.target_dialog import TargetDialog
from gui.tasks import TaskRunner
from gui.wizard_common import Busy


class SignInAgainDialog(TargetDialog):
    signed_in = Signal(str)
    """The target's name, once it is signed in again."""

    def __init__(
        self, client: Client, runner: TaskRunner, target: str, reason: str | None,
        parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            client, runner, target, title=f"Sign in again — {target}", reason=reason,
            otherwise=f"Google no longer accepts Tierkeeper's access to {target}",
            advice="Sign in to Google in your browser and allow access again; the jobs "
            "waiting for it then go on. Your backups on Drive are untouched.",
            parent=parent,
        )  # fmt: skip
        self.browser = BrowserSignIn(client)
        self._task: asyncio.Task[None] | None = None
        self.account: str | None = None
        self.busy = Busy(self)
        self.start_button = QPushButton("Open Google's page", self)
        self.start_button.clicked.connect(self.start)
        self.reopen_button = QPushButton("Open the page again", self)
        self.reopen_button.clicked.connect(self.browser.open_browser)
        self.reopen_button.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.reopen_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explain)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._runner.spawn(self._sign_in())

    def waiting(self) -> bool:
        return self.browser.waiting()

    async def _sign_in(self) -> None:
        self.message.clear_message()
        self.start_button.hide()
        self.busy.start("Starting the sign-in…")

        def waiting() -> None:
            self.busy.start("Waiting for the browser… finish signing in there.")
            self.reopen_button.show()
            self.adjustSize()  # a dialog does not grow for wrapped text by itself

        try:
            done = await self.browser.run(self._client.start_drive_reconnect(self.target), waiting)
        except TierkeeperError as exc:
            self.message.error(str(exc))
            self.start_button.setText("Try again")
            self.start_button.show()
            self.adjustSize()
            return
        finally:
            self.busy.stop()
            self.reopen_button.hide()
        self.account = done.account
        self._task = None  # over: nothing left to call off
        self.signed_in.emit(self.target)
        self.accept()

    def done(self, result: int) -> None:
        """Cancel (or closing the dialog) calls a sign-in under way off; the dialog goes
        once that is over (its widgets are still used while the service hears of it)."""
        super().done(result)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            task.add_done_callback(lambda _t: self.deleteLater())
        else:
            self.deleteLater()
