"""Where Roo Code and Cline keep their task folders on each OS and editor.

Both extensions write under the editor's per-user `globalStorage`, whose root
depends on the OS and on which VS Code build runs them. Knowing every candidate
lets "watch my sources" work without the user typing a path. Everything takes
platform/home/env as arguments so each OS's layout is testable on any OS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROO = "roo"
CLINE = "cline"

EXTENSION_IDS: dict[str, str] = {
    ROO: "rooveterinaryinc.roo-cline",
    CLINE: "saoudrizwan.claude-dev",
}
"""globalStorage folder names; VS Code lowercases extension ids for these."""

EDITOR_DIRS: tuple[str, ...] = ("Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf")
"""Editors that keep VS Code's `<config>/<Editor>/User/globalStorage` layout."""

REMOTE_SERVER_DIRS: tuple[str, ...] = (
    ".vscode-server",
    ".vscode-server-insiders",
    ".vscodium-server",
    ".cursor-server",
    ".windsurf-server",
)
"""Remote (SSH/WSL/container) hosts keep the same tree under `~/<dir>/data/`."""

FLATPAK_CONFIG_DIRS: tuple[tuple[str, str], ...] = (
    ("com.visualstudio.code", "Code"),
    ("com.vscodium.codium", "VSCodium"),
)


def normalize_platform(platform: str | None = None) -> str:
    """'linux', 'darwin' or 'win32' from sys.platform-like or friendly names."""
    p = (platform or sys.platform).lower()
    if p.startswith("win") or p in ("cygwin", "msys"):
        return "win32"
    if p in ("darwin", "mac", "macos", "osx"):
        return "darwin"
    return "linux"


def editor_config_root(platform: str, home: Path, env: Mapping[str, str]) -> Path:
    """The folder that holds `<Editor>/User/...` on this OS."""
    if platform == "win32":
        appdata = env.get("APPDATA")
        return Path(appdata) if appdata else home / "AppData" / "Roaming"
    if platform == "darwin":
        return home / "Library" / "Application Support"
    xdg = env.get("XDG_CONFIG_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    return Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"


def global_storage_roots(
    platform: str | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """Every `.../User/globalStorage` folder an editor could use, most common first."""
    plat = normalize_platform(platform)
    home = home if home is not None else Path.home()
    env = env if env is not None else os.environ
    config = editor_config_root(plat, home, env)
    roots = [config / editor / "User" / "globalStorage" for editor in EDITOR_DIRS]
    if plat == "linux":
        for app_id, editor in FLATPAK_CONFIG_DIRS:
            roots.append(
                home / ".var" / "app" / app_id / "config" / editor / "User" / "globalStorage"
            )
        for server in REMOTE_SERVER_DIRS:
            roots.append(home / server / "data" / "User" / "globalStorage")
    return roots


def cline_cli_tasks_root(home: Path, env: Mapping[str, str]) -> Path:
    """Newer Cline builds (CLI and shared storage) keep tasks in `~/.cline/data/tasks`."""
    base = env.get("CLINE_DIR")
    return (Path(base) if base else home / ".cline") / "data" / "tasks"


def candidate_task_roots(
    platform: str | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[tuple[str, Path]]:
    """(format name, `tasks/` folder) for every place Roo or Cline may write tasks."""
    home = home if home is not None else Path.home()
    env = env if env is not None else os.environ
    out: list[tuple[str, Path]] = []
    seen: set[tuple[str, Path]] = set()
    for storage in global_storage_roots(platform, home, env):
        for fmt, ext_id in EXTENSION_IDS.items():
            item = (fmt, storage / ext_id / "tasks")
            if item not in seen:
                seen.add(item)
                out.append(item)
    cli = (CLINE, cline_cli_tasks_root(home, env))
    if cli not in seen:
        out.append(cli)
    return out


def existing_task_roots(
    platform: str | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[tuple[str, Path]]:
    """The candidates that exist as folders on this machine right now."""
    return [(fmt, p) for fmt, p in candidate_task_roots(platform, home, env) if p.is_dir()]


def owner_from_path(path: Path) -> str | None:
    """'roo' or 'cline' when `path` lies inside a known storage folder, else None.

    Roo Code is a fork of Cline and writes the very same files, so only where a
    task lives tells the two apart.
    """
    for part in reversed(path.absolute().parts):
        low = part.lower()
        for fmt, ext_id in EXTENSION_IDS.items():
            if low == ext_id:
                return fmt
        if low == ".cline":
            return CLINE
    return None
