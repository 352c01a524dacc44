"""The centred message a page shows when it has nothing to list.

An empty state teaches the next step (UI principle), so it carries a title,
a sentence of explanation and, when there is one, the button that does it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.palette import set_muted

COLUMN_WIDTH = 540


class EmptyState(QWidget):
    def __init__(
        self,
        title: str,
        text: str,
        *,
        action: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = QLabel(title)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        self.text = QLabel(text)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        set_muted(self.text)
        self.button: QPushButton | None = None

        # A fixed-width column: word-wrapped labels get their full height only when
        # the layout gives them a definite width (not when aligned inside it).
        column = QWidget(self)
        column.setFixedWidth(COLUMN_WIDTH)
        inner = QVBoxLayout(column)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.setSpacing(8)
        inner.addWidget(self.title)
        inner.addWidget(self.text)
        if action:
            self.button = QPushButton(action)
            self.button.setDefault(True)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(self.button)
            row.addStretch(1)
            inner.addSpacing(6)
            inner.addLayout(row)
        middle = QHBoxLayout()
        middle.addStretch(1)
        middle.addWidget(column)
        middle.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addLayout(middle)
        layout.addStretch(3)
