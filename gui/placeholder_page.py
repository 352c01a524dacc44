"""Pages that are not built yet say so, and say what they will do."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.empty_state import EmptyState


class PlaceholderPage(QWidget):
    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = EmptyState(title, text, parent=self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
