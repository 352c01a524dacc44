"""Pieces every set-up page shares: inline errors, a folder row, pages that check by awaiting.

A wizard page's `validatePage` must answer at once, yet adding a target is a real
round trip. `CheckedPage` answers "not yet", runs the check as a task, and moves
the wizard on by itself when the check passes; a failure is written under the
fields, which keep what the user typed. The same input is not checked twice.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
    QWizardPage,
)

from core.errors import TierkeeperError
from gui.format import home_relative
from gui.palette import set_muted
from gui.tasks import TaskRunner
from gui.tier_card import COLORS, Health

log = logging.getLogger(__name__)


def note(text: str, parent: QWidget | None = None) -> QLabel:
    """A muted, wrapped sentence that explains a choice."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setOpenExternalLinks(True)
    set_muted(label)
    return label


def bold(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
    return label


class Message(QLabel):
    """A result or an error shown next to what it is about, instead of a dialog."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        # always escaped HTML: left to guess, a message with no tag showed "usb&#x27;s"
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def error(self, text: str) -> None:
        self._show(html.escape(text), COLORS[Health.ERROR].name())

    def ok(self, text: str) -> None:
        self._show(html.escape(text), COLORS[Health.OK].name(), mark="✓ ")

    def info(self, text: str) -> None:
        self._show(html.escape(text), None)

    def clear_message(self) -> None:
        self.clear()
        self.hide()

    def _show(self, text: str, color: str | None, mark: str = "") -> None:
        self.setStyleSheet(f"color: {color};" if color else "")
        self.setText(mark + text.replace("\n", "<br>"))
        self.show()

    def shown(self) -> str:
        return "" if self.isHidden() else self.text()


class FolderRow(QWidget):
    """A path field with Browse…; the dialog never blocks the loop (open, not exec)."""

    changed = Signal(str)

    def __init__(self, title: str, path: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self.edit = QLineEdit(path, self)
        self.edit.textChanged.connect(self.changed)
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        self.dialog: QFileDialog | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse_button)

    def path(self) -> str:
        """As typed: `~/…` is the caller's to expand."""
        return self.edit.text().strip()

    def set_path(self, path: str) -> None:
        """A folder picked or given, under home shown as `~/…` (as everywhere in the app)."""
        self.edit.setText(home_relative(Path(path)) if Path(path).is_absolute() else path)

    def browse(self) -> None:
        start = Path(self.path() or str(Path.home())).expanduser()
        while not start.is_dir() and start != start.parent:
            start = start.parent
        dialog = QFileDialog(self, self._title, str(start))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.set_path)
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()


class Busy(QWidget):
    """An endless bar and a sentence, while something outside the app is awaited."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 0)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(120)
        self.label = QLabel(self)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar)
        row.addWidget(self.label, 1)
        self.hide()

    def start(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def stop(self) -> None:
        self.hide()


class CheckedPage(QWizardPage):
    """A page whose Next awaits a check (or a save) before the wizard moves on."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.message = Message(self)
        self.busy = Busy(self)
        self._passed: Any = None
        self._checking = False

    def check_key(self) -> Any:
        """What the check depends on; None: nothing to check, the page may be left."""
        return None

    async def check(self, key: Any) -> None:
        """Raise TierkeeperError to stay on the page with the error shown."""

    def checking(self) -> bool:
        return self._checking

    def validatePage(self) -> bool:
        key = self.check_key()
        if key is None or key == self._passed:
            return True
        if not self._checking:
            self._set_checking(True)
            self.busy.start(self.busy_text())
            self.message.clear_message()
            self.runner.spawn(self._run(key))
        return False

    def busy_text(self) -> str:
        return "Checking…"

    def inputs(self) -> list[QWidget]:
        """What is greyed out while the check runs (the page keeps its text readable)."""
        return []

    def ready(self) -> bool:
        """Whether Next may be pressed at all (all required fields there)."""
        return True

    def isComplete(self) -> bool:
        return not self._checking and self.ready()

    def _set_checking(self, checking: bool) -> None:
        self._checking = checking
        for widget in self.inputs():
            widget.setEnabled(not checking)
        self.completeChanged.emit()

    async def _run(self, key: Any) -> None:
        ok = False
        try:
            await self.check(key)
            ok = True
        except TierkeeperError as exc:
            self.message.error(str(exc))
        except Exception as exc:  # shown where the user looks; the log has the trace
            log.exception("a set-up check failed unexpectedly")
            self.message.error(f"Something went wrong: {type(exc).__name__}: {exc}")
        finally:
            self.busy.stop()
            self._set_checking(False)
        if ok:
            self._passed = key
            wizard = self.wizard()
            if wizard is not None and wizard.currentPage() is self:
                wizard.next()
