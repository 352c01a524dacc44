"""Where agents keep their history on this machine, found without being told.

Used by `tierkeeper import` with no path and by the setup wizard, so a new
user's first import needs no typing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.local.importers.vscode_paths import existing_task_roots


@dataclass(frozen=True, slots=True)
class DetectedSource:
    format: str
    path: Path


def claude_projects_dir(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`~/.claude/projects`, or under `$CLAUDE_CONFIG_DIR` when Claude Code is told to use it."""
    env = os.environ if env is None else env
    base = env.get("CLAUDE_CONFIG_DIR")
    root = Path(base).expanduser() if base else (home or Path.home()) / ".claude"
    return root / "projects"


def detected_sources(
    home: Path | None = None, env: Mapping[str, str] | None = None
) -> list[DetectedSource]:
    found: list[DetectedSource] = []
    projects = claude_projects_dir(home, env)
    if projects.is_dir():
        found.append(DetectedSource("claude-code", projects))
    found += [DetectedSource(fmt, p) for fmt, p in existing_task_roots(home=home, env=env)]
    return found
