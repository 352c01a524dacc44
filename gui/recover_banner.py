"""The strip that offers a rebuild when the local catalog is gone and a target still has it.

An empty (new) or set-aside (damaged) DB beside a configured target that holds
backups is the lost-laptop or lost-disk case: the window says so in a strip with
a button, never in a dialog that pops up by itself. The button opens the rebuild
(what the target holds, the passphrase if needed, the job's progress).
"""

from __future__ import annotations

import asyncio
import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.client import BackupContents, Client, Status
from gui.event_pump import EventPump
from gui.format import plural
from gui.recover_panel import RecoverPanel
from gui.tasks import TaskRunner


def wants_rebuild(status: Status, contents: BackupContents) -> bool:
    """The catalog lacks what the target holds, and it is not just a new workspace with
    an empty disk: the DB was created empty at this start (or set aside), and the
    target has sessions this workspace does not know."""
    lost = status.db_state in ("new", "set-aside") or status.sessions == 0
    return lost and contents.sessions > contents.known_here


class RecoverBanner(QFrame):
    rebuild_requested = Signal(str)
    """The target to rebuild the catalog from."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recoverBanner")
        self.setStyleSheet(
            "#recoverBanner { background: rgba(33, 150, 243, 36);"
            " border: 1px solid rgba(33, 150, 243, 150); border-radius: 4px; }"
        )
        self.target: str | None = None
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.button = QPushButton("Rebuild from backup…", self)
        self.button.clicked.connect(self._clicked)
        self.dismiss_button = QPushButton("Not now", self)
        self.dismiss_button.setFlat(True)
        self.dismiss_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def offer(self, status: Status, contents: BackupContents) -> None:
        self.target = contents.target
        name = html.escape(contents.target)
        if status.db_state == "set-aside":
            why = (
                "The local catalog could not be read; it was moved aside "
                f"(<code>{html.escape(status.db_set_aside or '')}</code>) and an empty one "
                "started."
            )
        else:
            why = "The local catalog is empty."
        self.label.setText(
            f"<b>{why}</b> {name} holds {plural(contents.sessions, 'backed-up session')}: "
            "rebuild the catalog from it (no session data is downloaded)."
        )
        self.button.setText(f"Rebuild from {contents.target}…")
        self.show()

    def message(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def _clicked(self) -> None:
        if self.target is not None:
            self.rebuild_requested.emit(self.target)


class RecoverDialog(QDialog):
    """The rebuild from one target, opened by the banner's button."""

    def __init__(
        self,
        client: Client,
        runner: TaskRunner,
        pump: EventPump | None,
        target: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Rebuild the catalog from {target}")
        self.setMinimumWidth(560)
        self.target = target
        self.panel = RecoverPanel(client, runner, pump, self)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.addWidget(self.panel)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self._load = runner.spawn(self.panel.look(target))

    async def wait_loaded(self) -> None:
        if self._load is not None:
            await asyncio.wait([self._load])
