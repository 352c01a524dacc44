"""The strip that says the service went away, and offers to run it in this window.

Separate from the error banner: failed calls while the service is away must not hide
the one message that explains them all, and the offer stays until a service is back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

LOST = "Lost the Tierkeeper service — reconnecting…"


class ServiceBanner(QFrame):
    run_here = Signal()
    """The user would rather not wait for the daemon: serve the workspace in this window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serviceBanner")
        self.setStyleSheet(
            "#serviceBanner { background: rgba(255, 193, 7, 46);"
            " border: 1px solid rgba(255, 160, 0, 160); border-radius: 4px; }"
        )
        self.label = QLabel(LOST, self)
        self.label.setWordWrap(True)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.run_button = QPushButton("Run in this window", self)
        self.run_button.setToolTip(
            "Open the workspace here instead: backups and schedules run while this window is open"
        )
        self.run_button.clicked.connect(self.run_here)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(QLabel("⟳", self), 0, Qt.AlignmentFlag.AlignTop)
        text = QHBoxLayout()
        text.addWidget(self.label)
        text.addWidget(self.detail, 1)
        layout.addLayout(text, 1)
        layout.addWidget(self.run_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_lost(self, detail: str = "") -> None:
        self.detail.setText(detail)
        self.run_button.setEnabled(True)
        self.show()

    def message(self) -> str:
        return "" if self.isHidden() else self.label.text()
