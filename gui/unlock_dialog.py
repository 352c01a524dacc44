"""Give a target's passphrase (or recovery code) from the window: what `target unlock` does.

A backup to an encrypted target waits when this computer's keyring has no key
for it (a new computer, a wiped keyring, a folder another computer encrypts).
The tier card says so and offers this; the jobs waiting on the key go on by
themselves once it is accepted. A wrong passphrase is said here, and the
dialog stays open for another try; the field is cleared either way.
"""

from __future__ import annotations

from pydantic import SecretStr
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QVBoxLayout,
    QWidget,
)

from core.client import Client
from core.errors import TierkeeperError
from gui.passphrase_row import PassphraseRow
from gui.target_dialog import TargetDialog
from gui.tasks import TaskRunner


class UnlockDialog(TargetDialog):
    unlocked = Signal(str)
    """The target's name, once its key is kept."""

    def __init__(
        self, client: Client, runner: TaskRunner, target: str, reason: str | None,
        parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            client, runner, target, title=f"Unlock {target}", reason=reason,
            otherwise=f"The backups on {target} are encrypted, and this computer does not "
            "hold their key",
            advice="Give the passphrase, or the recovery code from the printed kit; the jobs "
            "waiting for the key then go on.",
            parent=parent,
        )  # fmt: skip
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.passphrase_row = PassphraseRow(self)
        self.passphrase_row.show()
        self.passphrase = self.passphrase_row.edit
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.unlock_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.unlock_button.setText("Unlock")
        self.unlock_button.setEnabled(False)
        self.passphrase.textChanged.connect(lambda text: self.unlock_button.setEnabled(bool(text)))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explain)
        layout.addWidget(self.passphrase_row)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(440)

    def submit(self) -> None:
        secret = self.passphrase.text()
        if not secret:
            return
        self.passphrase.clear()  # never kept in the widget longer than the call (and the
        self.message.info("Checking…")  # button stays off until something is typed again)
        self._runner.spawn(self._unlock(SecretStr(secret)))

    async def _unlock(self, secret: SecretStr) -> None:
        try:
            await self._client.unlock_target(self.target, secret)
        except TierkeeperError as exc:
            self.message.error(str(exc))
            self.adjustSize()  # a dialog does not grow for wrapped text by itself
            self.passphrase.setFocus()
            return
        self.unlocked.emit(self.target)
        self.accept()
