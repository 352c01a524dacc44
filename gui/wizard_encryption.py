"""Encryption: chosen before the targets, because a target is encrypted from its first byte.

The passphrase goes into each target spec the next pages save (a Drive target is
saved the moment its sign-in ends), so this page comes first and is the wizard's
commit point: from here on, Back cannot return to a choice the saved targets
already depend on. The recovery kit is saved on the last page, once the targets
exist. The passphrase lives in this page's fields and in memory only.
"""

from __future__ import annotations

import math
import string

from pydantic import SecretStr
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from gui.tier_card import COLORS, Health
from gui.wizard_common import Message, note
from gui.wizard_state import SetupState

MIN_LENGTH = 10


def strength(passphrase: str) -> tuple[str, Health]:
    """A rough guess from length and the kinds of characters; words beat symbols."""
    if not passphrase:
        return "", Health.OFF
    pool = 0
    for chars in (string.ascii_lowercase, string.ascii_uppercase, string.digits):
        if any(c in chars for c in passphrase):
            pool += len(chars)
    if any(not c.isascii() or c in string.punctuation or c == " " for c in passphrase):
        pool += 33
    bits = len(passphrase) * math.log2(max(pool, 2))
    if len(passphrase) < MIN_LENGTH:
        return f"Too short: at least {MIN_LENGTH} characters", Health.ERROR
    if bits < 60:
        return "Weak: add a word or two", Health.BUSY
    if bits < 80:
        return "Fair: four or more random words are better", Health.BUSY
    return "Strong", Health.OK


class EncryptionPage(QWizardPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__()
        self._state = state
        self.setTitle("Encryption")
        self.setSubTitle("Whether the backups are readable by whoever holds the disk or account.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Next")

        self.plain = QRadioButton("Don't encrypt", self)
        self.encrypted = QRadioButton("Encrypt backups and archives with a passphrase", self)
        group = QButtonGroup(self)
        group.addButton(self.plain)
        group.addButton(self.encrypted)
        self.plain.setChecked(True)

        self.fields = QWidget(self)
        self.passphrase = QLineEdit(self.fields)
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit(self.fields)
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        self.strength_label = QLabel(self.fields)
        self.message = Message(self.fields)
        form = QFormLayout(self.fields)
        form.setContentsMargins(24, 0, 0, 0)
        form.addRow("Passphrase:", self.passphrase)
        form.addRow("Again:", self.repeat)
        form.addRow("", self.strength_label)
        form.addRow("", self.message)
        self.fields.setEnabled(False)
        self.encrypted.toggled.connect(self.fields.setEnabled)
        self.passphrase.textChanged.connect(self._rate)
        self.repeat.textChanged.connect(lambda _t: self.message.clear_message())

        layout = QVBoxLayout(self)
        layout.addWidget(self.plain)
        layout.addWidget(self.encrypted)
        layout.addWidget(self.fields)
        layout.addSpacing(8)
        layout.addWidget(
            note(
                "Encryption happens on this computer (AES-256-GCM) before anything leaves it. "
                "The key is kept in your system keyring. Without the passphrase or the "
                "recovery kit (saved on the last page) the backups cannot be read by anyone, "
                "you included.<br><br>The targets of the next pages are saved with this "
                "choice, so Back does not return here once you go on.",
                self,
            )
        )
        layout.addStretch(1)

    def _rate(self, text: str) -> None:
        self.message.clear_message()
        words, health = strength(text)
        color = COLORS.get(health)
        self.strength_label.setStyleSheet(f"color: {color.name()};" if color else "")
        self.strength_label.setText(words)

    def validatePage(self) -> bool:
        if not self.encrypted.isChecked():
            self._state.passphrase = None
            return True
        first, second = self.passphrase.text(), self.repeat.text()
        if len(first) < MIN_LENGTH:
            self.message.error(f"Use at least {MIN_LENGTH} characters.")
            self.passphrase.setFocus()
            return False
        if first != second:
            self.message.error("The two passphrases differ: type the same one twice.")
            self.repeat.setFocus()
            self.repeat.selectAll()
            return False
        self._state.passphrase = SecretStr(first)
        return True
