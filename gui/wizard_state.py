"""What the set-up wizard's pages know together: the settings found, the choices made.

Pages do not reach into one another; each reads and writes this one object, and
the Summary page renders it. Targets are saved as their page is left (that is a
real check), so the state keeps what was saved, for the summary and the kits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import SecretStr
from PySide6.QtCore import QObject, Signal

from core.client import Client, DetectedSource, SchedulePatch, Settings
from gui.tasks import TaskRunner


@dataclass(frozen=True)
class SavedTarget:
    name: str
    kind: str
    where: str
    encrypted: bool

    @property
    def archive(self) -> bool:
        return self.kind == "s3"


class SetupState(QObject):
    loaded = Signal()
    targets_changed = Signal()

    def __init__(self, client: Client, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.runner = runner
        self.settings: Settings | None = None
        self.detected: list[DetectedSource] = []
        self.local_bytes = 0
        self.sessions = 0
        self.sources: list[str] = []
        self.schedule: SchedulePatch | None = None
        self.passphrase: SecretStr | None = None
        self.saved: dict[str, SavedTarget] = {}
        self.load_error: str | None = None

    async def load(self) -> None:
        """The settings, the agent folders on this machine and how much is stored locally."""
        settings, detected, sessions = await asyncio.gather(
            self.client.config(), self.client.detect_sources(), self.client.list_sessions()
        )
        self.settings = settings
        self.detected = detected
        self.sessions = len(sessions)
        self.local_bytes = sum(s.raw_bytes for s in sessions)
        self.loaded.emit()

    def remember(self, target: SavedTarget) -> None:
        self.saved[target.name] = target
        self.targets_changed.emit()

    def forget(self, name: str) -> None:
        if self.saved.pop(name, None) is not None:
            self.targets_changed.emit()

    def backup_targets(self) -> list[SavedTarget]:
        return [t for t in self.saved.values() if not t.archive]
