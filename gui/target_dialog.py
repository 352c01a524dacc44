"""What the dialogs a tier card opens for a waiting target have in common.

A target's jobs wait for the user (a key to give, a sign-in to do). The card's
button opens a small dialog that says why, in the core's words without their
terminal advice, then what to do, with a place for the outcome.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QWidget

from core.client import Client
from gui.format import first_part
from gui.tasks import TaskRunner
from gui.wizard_common import Message


class TargetDialog(QDialog):
    def __init__(
        self, client: Client, runner: TaskRunner, target: str, *, title: str,
        reason: str | None, otherwise: str, advice: str, parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        """`reason`: the job's wait reason; `otherwise`, said when there is none."""
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.target = target
        self.setWindowTitle(title)
        why = first_part(reason) or otherwise
        self.explain = QLabel(f"{why.rstrip('.')}.\n\n{advice}", self)
        self.explain.setTextFormat(Qt.TextFormat.PlainText)
        self.explain.setWordWrap(True)
        self.message = Message(self)
