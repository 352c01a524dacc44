"""One storage tier as a card: what it is, a health dot, its numbers, its buttons.

The dashboard shows three in a row (this computer, the backup target, the
archive). A card knows nothing about the client: the page fills it and
connects its buttons, so every card reads the same and is tested the same.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette, QPen, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui.palette import muted, set_muted


class Health(StrEnum):
    OK = "ok"
    BUSY = "busy"
    """Working, or waiting for something outside (a disk, a sign-in): amber."""
    ERROR = "error"
    OFF = "off"
    """Nothing here yet: a hollow dot."""


COLORS = {
    Health.OK: QColor("#2e9d6a"),
    Health.BUSY: QColor("#d08a1a"),
    Health.ERROR: QColor("#d0453a"),
}


class HealthDot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.health = Health.OFF
        self.setFixedSize(QSize(12, 12))

    def set_health(self, health: Health) -> None:
        self.health = health
        self.setToolTip(health.value)
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(1.5, 1.5, self.width() - 3, self.height() - 3)
        color = COLORS.get(self.health)
        if color is None:
            painter.setPen(QPen(muted(self.palette()), 1.4))
            painter.setBrush(Qt.BrushStyle.NoBrush)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
        painter.drawEllipse(rect)
        painter.end()


def _wrapping(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class TierCard(QFrame):
    def __init__(self, tier: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tierCard")
        self.setStyleSheet(
            "#tierCard { border: 1px solid palette(mid); border-radius: 6px;"
            " background: palette(base); }"
        )
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setMinimumWidth(240)

        self.tier = QLabel(tier.upper(), self)
        small = QFont(self.tier.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        small.setBold(True)
        self.tier.setFont(small)
        set_muted(self.tier)
        self.title = QLabel(self)
        big = QFont(self.title.font())
        big.setPointSizeF(big.pointSizeF() * 1.25)
        big.setBold(True)
        self.title.setFont(big)
        self.where = QLabel(self)
        set_muted(self.where)
        # a long path is cut, not allowed to widen the card (its tooltip has it whole)
        self.where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.dot = HealthDot(self)
        self.state = QLabel(self)
        bold = QFont(self.state.font())
        bold.setBold(True)
        self.state.setFont(bold)
        self.state.setWordWrap(True)
        state_row = QHBoxLayout()
        state_row.setSpacing(7)
        state_row.addWidget(self.dot, 0, Qt.AlignmentFlag.AlignVCenter)
        state_row.addWidget(self.state, 1)

        self.facts = _wrapping(self)
        self.facts.hide()
        self.note = _wrapping(self)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.note.hide()

        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(6)
        self.buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(4)
        layout.addWidget(self.tier)
        layout.addWidget(self.title)
        layout.addWidget(self.where)
        layout.addSpacing(6)
        layout.addLayout(state_row)
        layout.addWidget(self.facts)
        layout.addWidget(self.note)
        layout.addStretch(1)
        layout.addSpacing(6)
        layout.addLayout(self.buttons)

    def set_heading(self, title: str, where: str = "", *, tooltip: str | None = None) -> None:
        self.title.setText(title)
        self.where.setText(where)
        self.where.setVisible(bool(where))
        self.where.setToolTip(tooltip or where)

    def set_state(self, health: Health, text: str) -> None:
        self.dot.set_health(health)
        self.state.setText(text)
        pal = self.state.palette()
        role = QPalette.ColorRole.WindowText
        color = COLORS.get(health) if health in (Health.ERROR, Health.BUSY) else None
        pal.setColor(role, color or self.palette().color(role))
        self.state.setPalette(pal)

    def set_facts(self, lines: list[str]) -> None:
        self.facts.setText("\n".join(lines))
        self.facts.setVisible(bool(lines))

    def set_note(self, html: str | None) -> None:
        """Rich text (escape what comes from outside): a reason, a command to run."""
        self.note.setText(html or "")
        self.note.setVisible(bool(html))

    def add_button(self, text: str, tooltip: str = "") -> QPushButton:
        button = QPushButton(text, self)
        button.setToolTip(tooltip)
        self.buttons.insertWidget(self.buttons.count() - 1, button)  # left of the stretch
        return button

    def health(self) -> Health:
        return self.dot.health

    def text(self) -> str:
        """Everything the card says, as plain text (for tests and accessibility)."""
        parts = [self.tier.text(), self.title.text(), self.where.text(), self.state.text(),
                 self.facts.text()]  # fmt: skip
        if self.note.isVisibleTo(self):
            rich = QTextDocument()
            rich.setHtml(self.note.text())
            parts.append(rich.toPlainText().replace("\xa0", " "))
        return "\n".join(p for p in parts if p)
