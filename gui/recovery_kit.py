"""Save an encrypted target's recovery kit to a file the user picks.

The kit is what opens the backups when this computer is gone, so it is written
where the user says (a USB stick, a printer's folder) and nowhere else; the
passphrase itself is never in it. The file dialog is opened, not exec'd, so the
event loop (and every running job) goes on while the user chooses.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from core.client import Client
from gui.tasks import TaskRunner


def default_kit_path(target: str) -> Path:
    docs = Path.home() / "Documents"
    return (docs if docs.is_dir() else Path.home()) / f"Tierkeeper recovery kit - {target}.txt"


def _write_private(path: Path, text: str) -> None:
    """Only the user may read it: it holds the key to every backup on the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


async def save_kit(client: Client, target: str, path: Path) -> Path:
    kit = await client.recovery_kit(target)
    await asyncio.to_thread(_write_private, path, kit.text)
    return path


class KitSaver:
    """Asks where, then writes; `done(path)` or `failed(message)` reports the outcome."""

    def __init__(
        self,
        parent: QWidget,
        client: Client,
        runner: TaskRunner,
        done: Callable[[str, Path], None],
        failed: Callable[[str, str], None],
    ) -> None:
        self._parent = parent
        self._client = client
        self._runner = runner
        self._done = done
        self._failed = failed
        self.dialog: QFileDialog | None = None
        self.saved: dict[str, Path] = {}

    def ask(self, target: str) -> QFileDialog:
        dialog = QFileDialog(
            self._parent, f"Save the recovery kit of {target}", str(default_kit_path(target))
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Text files (*.txt)")
        dialog.selectFile(str(default_kit_path(target)))
        dialog.fileSelected.connect(lambda path: self._runner.spawn(self._save(target, path)))
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog

    async def _save(self, target: str, path: str) -> None:
        try:
            written = await save_kit(self._client, target, Path(path))
        except OSError as exc:
            self._failed(target, f"The kit could not be written to {path}: {exc.strerror}")
            return
        except Exception as exc:  # a TierkeeperError says what to do; show it where asked
            self._failed(target, str(exc))
            return
        self.saved[target] = written
        self._done(target, written)
