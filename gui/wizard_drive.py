"""Connect Google Drive: the sign-in runs in the system browser, the page waits without blocking.

The service starts the loopback sign-in and hands back an address; the browser is
opened with `QDesktopServices` (the user's own browser, where they are signed in
to Google already). The wait is `finish_drive_sign_in`, a task the Cancel button
ends; when Google sends the browser back, the service saves the target and
reports the account and its free space. The client secret and the passphrase go
to the service in the spec (to the keyring), never into a widget's text shown.
"""

from __future__ import annotations

import asyncio
import html
import logging

from pydantic import SecretStr
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.client import DriveSignedIn, DriveTargetSpec
from core.errors import TierkeeperError
from gui.browser_sign_in import BrowserSignIn
from gui.format import human_size
from gui.wizard_common import Busy, Message, note
from gui.wizard_state import SavedTarget, SetupState

log = logging.getLogger(__name__)

_DEFAULTS = {k: str(DriveTargetSpec.model_fields[k].default)
             for k in ("folder", "auth_uri", "token_uri", "api_root")}  # fmt: skip
CONSOLE = "https://console.cloud.google.com/apis/credentials"


def quota_text(used: int, limit: int | None) -> str:
    if limit is None:
        return f"{human_size(used)} used (no limit)"
    return f"{human_size(max(limit - used, 0))} free of {human_size(limit)}"


class DriveConnect(QWidget):
    connected = Signal()
    """A Drive target was saved (or removed again: `connected_name` tells which)."""

    def __init__(self, state: SetupState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.browser = BrowserSignIn(state.client)
        self.connected_name: str | None = None
        self._wait: asyncio.Task[None] | None = None

        self.fields = QWidget(self)
        self.name_edit = QLineEdit("gdrive", self.fields)
        self.client_id_edit = QLineEdit(self.fields)
        self.client_id_edit.setPlaceholderText("….apps.googleusercontent.com")
        self.secret_edit = QLineEdit(self.fields)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_edit.setPlaceholderText("the client's secret, if it has one")
        self.folder_edit = QLineEdit(_DEFAULTS["folder"], self.fields)
        self.advanced_check = QCheckBox("Other Google endpoints (proxies, tests)", self.fields)
        self.auth_edit = QLineEdit(_DEFAULTS["auth_uri"], self.fields)
        self.token_edit = QLineEdit(_DEFAULTS["token_uri"], self.fields)
        self.api_edit = QLineEdit(_DEFAULTS["api_root"], self.fields)
        form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name:", self.name_edit)
        form.addRow("OAuth client id:", self.client_id_edit)
        form.addRow("Client secret:", self.secret_edit)
        form.addRow("Folder in Drive:", self.folder_edit)
        form.addRow("", self.advanced_check)
        self._advanced = []
        for label, edit in (("Sign-in page:", self.auth_edit), ("Token address:", self.token_edit),
                            ("API root:", self.api_edit)):  # fmt: skip
            form.addRow(label, edit)
            self._advanced.append(edit)
        self._form = form
        self._show_advanced(False)
        self.advanced_check.toggled.connect(self._show_advanced)

        self.connect_button = QPushButton("Connect…", self)
        self.connect_button.setToolTip("Opens Google's sign-in page in your browser")
        self.connect_button.clicked.connect(self.connect_clicked)
        self.cancel_button = QPushButton("Cancel sign-in", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.reopen_button = QPushButton("Open the page again", self)
        self.reopen_button.clicked.connect(self.browser.open_browser)
        self.reopen_button.hide()
        self.disconnect_button = QPushButton("Disconnect", self)
        self.disconnect_button.setToolTip("Forget this sign-in and choose again")
        self.disconnect_button.clicked.connect(
            lambda: self._state.runner.spawn(self.sign_out(), busy=self.disconnect_button)
        )
        self.disconnect_button.hide()
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.connect_button, self.cancel_button, self.reopen_button,
                  self.disconnect_button):  # fmt: skip
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.busy = Busy(self)
        self.message = Message(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.fields)
        layout.addWidget(
            note(
                "Tierkeeper signs in with your own OAuth client (type <i>Desktop app</i>, "
                f"from the <a href='{CONSOLE}'>Google Cloud console</a>) and can only see the "
                "files it creates.",
                self,
            )
        )
        layout.addLayout(buttons)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)

    def _show_advanced(self, shown: bool) -> None:
        for edit in self._advanced:
            edit.setVisible(shown)
            label = self._form.labelForField(edit)
            if label is not None:
                label.setVisible(shown)

    # state ------------------------------------------------------------------
    def is_connected(self) -> bool:
        return self.connected_name is not None

    def waiting(self) -> bool:
        return self.browser.waiting()

    def spec(self) -> DriveTargetSpec:
        secret = self.secret_edit.text()
        return DriveTargetSpec(
            name=self.name_edit.text().strip(),
            client_id=self.client_id_edit.text().strip(),
            client_secret=SecretStr(secret) if secret else None,
            folder=self.folder_edit.text().strip() or _DEFAULTS["folder"],
            passphrase=self._state.passphrase,
            auth_uri=self.auth_edit.text().strip(),
            token_uri=self.token_edit.text().strip(),
            api_root=self.api_edit.text().strip(),
        )

    # the sign-in ------------------------------------------------------------
    def connect_clicked(self) -> None:
        if not self.client_id_edit.text().strip():
            self.message.error("Paste the OAuth client id first (see the note above).")
            self.client_id_edit.setFocus()
            return
        self._wait = self._state.runner.spawn(self.sign_in())

    async def sign_in(self) -> None:
        """Start, open the browser, wait; every failure is shown here and leaves the fields."""
        self.message.clear_message()
        self._set_waiting(True, "Starting the sign-in…")

        def waiting() -> None:
            self._set_waiting(True, "Waiting for the browser… finish signing in there.")
            self.reopen_button.show()

        try:
            done = await self.browser.run(
                self._state.client.start_drive_sign_in(self.spec()), waiting
            )
        except asyncio.CancelledError:
            self.message.info("The sign-in was cancelled.")
            self._set_waiting(False)
            raise
        except TierkeeperError as exc:
            self.message.error(str(exc))
            self._set_waiting(False)
            return
        self._set_waiting(False)
        self._signed_in(done)

    def _signed_in(self, done: DriveSignedIn) -> None:
        t = done.target
        self.connected_name = t.name
        self._state.remember(SavedTarget(t.name, t.kind, t.where, t.encryption is not None))
        who = html.escape(done.account or "your account")
        self.message.ok(f"Connected as {who} — {quota_text(done.quota_used, done.quota_limit)}.")
        self.fields.setEnabled(False)
        self.connect_button.hide()
        self.disconnect_button.show()
        self.connected.emit()

    def cancel(self) -> None:
        task = self._wait
        if task is not None and not task.done():
            task.cancel()

    async def sign_out(self) -> None:
        name = self.connected_name
        if name is None:
            return
        try:
            await self._state.client.remove_target(name)
        except TierkeeperError as exc:
            self.message.error(str(exc))
            return
        self.connected_name = None
        self._state.forget(name)
        self.message.info(f"Disconnected: {name} is no longer a target.")
        self.fields.setEnabled(True)
        self.disconnect_button.hide()
        self.connect_button.show()
        self.connected.emit()

    def _set_waiting(self, waiting: bool, text: str = "") -> None:
        self.fields.setEnabled(not waiting)
        self.connect_button.setVisible(not waiting)
        self.cancel_button.setVisible(waiting)
        if waiting:
            self.busy.start(text)
        else:
            self.busy.stop()
            self.reopen_button.hide()
