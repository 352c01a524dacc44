"""The field an encrypted backup's passphrase (or recovery code) is typed into.

One widget for every place the window asks for it (the rebuild, bringing a
session back), so the prompt reads and behaves the same: masked, with the
recovery code named as the other way in, and cleared once it has been used.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLineEdit, QWidget


class PassphraseRow(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("passphrase or recovery code")
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Passphrase:", self.edit)
        self.hide()

    def text(self) -> str:
        return self.edit.text()
