"""The Tier 1 folder: its layout, its config, and who owns it.

The layout matches the original plan's `.claude/` folder so that a workspace
can itself be imported and older tooling can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.config import Config
from core.errors import BadInputError, NotFoundError
from core.lock import WorkspaceLock
from core.paths import resolve_workspace

SUBDIRS = ("logs", "state", "handoffs", "analytics", "fallback")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: str | Path | None = None) -> Workspace:
        return cls(resolve_workspace(path))

    # layout -----------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def handoffs(self) -> Path:
        return self.root / "handoffs"

    @property
    def analytics(self) -> Path:
        return self.root / "analytics"

    @property
    def fallback(self) -> Path:
        """Hook payloads that could not be recorded, kept for a later import."""
        return self.root / "fallback"

    @property
    def db_path(self) -> Path:
        return self.analytics / "agent_metrics.db"

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def current_phase_path(self) -> Path:
        return self.root / "current_phase.json"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    def log_path(self, session_id: str) -> Path:
        return self.logs / f"session_{session_id}.jsonl"

    def handoff_path(self, session_id: str) -> Path:
        return self.handoffs / f"session_{session_id}_handoff.md"

    # lifecycle --------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.config_path.exists()

    def init(self) -> bool:
        """Create the layout; returns False when it was already there."""
        if self.root.exists() and not self.root.is_dir():
            raise BadInputError(f"{self.root} exists and is not a folder")
        created = not self.exists
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in SUBDIRS:
            (self.root / sub).mkdir(exist_ok=True)
        if created:
            Config().save(self.config_path)
        return created

    def require(self) -> None:
        if not self.exists:
            raise NotFoundError(
                f"No Tierkeeper workspace at {self.root}",
                hint="run `tierkeeper init` (or pass --workspace)",
            )

    def config(self) -> Config:
        return Config.load(self.config_path)

    def lock(self) -> WorkspaceLock:
        return WorkspaceLock(self.lock_path)
