"""Add Tierkeeper's hook to Claude Code's settings, and take it out again.

The settings file belongs to the user: it holds their permissions, their own
hooks, sometimes API keys in `env`. So every change is surgical (only entries
whose command is ours are touched, everything else keeps its place), backed up
first, written atomically, and a file we cannot parse is left exactly as it is.

Our entries carry no marker key of their own: Claude Code validates the hook
schema, so an unknown key could get the whole settings file rejected. The
command string is what identifies an entry as ours.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from core.durable import fsync_dir as _fsync_dir
from core.errors import BadInputError

HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
# Events whose matcher is a tool name; "*" asks for every tool. The others either
# take no matcher or match on something else (startup source, compaction
# trigger, end reason), where leaving the matcher out means "always".
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse"})
_MATCH_ALL = ("*", "")
HOOK_PROGRAM = "tierkeeper-hook"
"""The installed bundle's hook program (packaging/entry/tierkeeper_hook.py)."""
_ATTEMPTS = 3

JsonObject = dict[str, Any]


@dataclass
class InstallResult:
    changed: bool
    backup: Path | None
    events: list[str] = field(default_factory=list)
    """The events whose entries this call added or removed."""


def default_settings_path() -> Path:
    """User-level settings; Claude Code moves its whole folder when CLAUDE_CONFIG_DIR is set."""
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / "settings.json"


def default_command() -> str:
    """An absolute command line for the hook, so it works whatever PATH Claude Code runs with."""
    frozen = frozen_hook_command()
    if frozen is not None:
        return frozen
    exe = Path(sys.executable)
    script = exe.with_name("tierkeeper.exe" if os.name == "nt" else "tierkeeper")
    if script.is_file():
        return f"{_quote(str(script))} hook"
    found = shutil.which("tierkeeper")
    if found:
        return f"{_quote(found)} hook"
    return f"{_quote(str(exe))} -m core.hooks.record"


def frozen_hook_command() -> str | None:
    """The bundle's `tierkeeper-hook` beside the running program, when running frozen.

    The installed bundle (PyInstaller) has a hook program of its own, which
    starts in less than half the time of `tierkeeper hook`: the hook runs on
    every tool call, and `tierkeeper` carries the whole application.
    """
    if not getattr(sys, "frozen", False):
        return None
    program = Path(sys.executable).with_name(HOOK_PROGRAM + (".exe" if os.name == "nt" else ""))
    return _quote(str(program)) if program.is_file() else None


def is_tierkeeper_command(command: str) -> bool:
    """Whether a hook command runs Tierkeeper's recorder, whatever path it was installed from."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words:
        return False
    program = words[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    if program in ("tierkeeper", "tierkeeper.exe") and words[1:] == ["hook"]:
        return True
    if program.removesuffix(".exe") == HOOK_PROGRAM and len(words) == 1:
        return True
    return any(a == "-m" and b == "core.hooks.record" for a, b in pairwise(words))


def install(settings_path: Path, command: str) -> InstallResult:
    """Hook `command` into every event in HOOK_EVENTS; a second run changes nothing.

    Entries from an earlier install under another path (a moved venv) are
    replaced rather than doubled, so each event is recorded once.
    """
    if not command.strip():
        raise BadInputError("The hook command is empty")

    def stale(cmd: str) -> bool:
        return cmd != command and is_tierkeeper_command(cmd)

    def edit(settings: JsonObject) -> list[str]:
        hooks = _hooks_table(settings, settings_path, create=True)
        assert hooks is not None  # create=True always returns the table
        touched: list[str] = []
        for event in HOOK_EVENTS:
            _event_groups(hooks, event, settings_path)
            removed = _remove_commands(hooks, event, stale)
            if not _has_catch_all(hooks.get(event, []), command):
                hooks.setdefault(event, []).append(_our_group(event, command))
                touched.append(event)
            elif removed:
                touched.append(event)
        return touched

    return _apply(settings_path, edit, create_missing=True)


def uninstall(settings_path: Path, command: str | None = None) -> InstallResult:
    """Remove our entries (all Tierkeeper hook commands when `command` is None); keep the rest."""

    def ours(cmd: str) -> bool:
        return cmd == command if command is not None else is_tierkeeper_command(cmd)

    def edit(settings: JsonObject) -> list[str]:
        hooks = _hooks_table(settings, settings_path, create=False)
        if hooks is None:
            return []
        touched = [
            event
            for event in list(hooks)
            if _event_groups(hooks, event, settings_path) is not None
            and _remove_commands(hooks, event, ours)
        ]
        if touched and not hooks:
            del settings["hooks"]
        return touched

    return _apply(settings_path, edit, create_missing=False)


# --- editing the parsed settings -------------------------------------------------


def _hooks_table(settings: JsonObject, path: Path, *, create: bool) -> JsonObject | None:
    hooks = settings.get("hooks")
    if hooks is None:
        if not create:
            return None
        hooks = settings["hooks"] = {}
    if not isinstance(hooks, dict):
        raise BadInputError(
            f'{path}: "hooks" is not a JSON object', hint="fix it by hand, then try again"
        )
    return hooks


def _event_groups(hooks: JsonObject, event: str, path: Path) -> list[Any] | None:
    groups = hooks.get(event)
    if groups is not None and not isinstance(groups, list):
        raise BadInputError(
            f'{path}: "hooks.{event}" is not a JSON list', hint="fix it by hand, then try again"
        )
    return groups


def _our_group(event: str, command: str) -> JsonObject:
    entry = {"type": "command", "command": command}
    return {"matcher": "*", "hooks": [entry]} if event in TOOL_EVENTS else {"hooks": [entry]}


def _has_catch_all(groups: list[Any], command: str) -> bool:
    """Our command already runs for every occurrence of the event."""
    for group in groups:
        if not isinstance(group, dict):
            continue
        matcher = group.get("matcher")
        if matcher is not None and matcher not in _MATCH_ALL:
            continue
        entries = group.get("hooks")
        if isinstance(entries, list) and any(_command_of(e) == command for e in entries):
            return True
    return False


def _remove_commands(hooks: JsonObject, event: str, match: Callable[[str], bool]) -> bool:
    """Drop matching entries, then the groups and event lists that only held them."""
    groups = hooks.get(event)
    if not isinstance(groups, list):
        return False
    removed = False
    kept_groups: list[Any] = []
    for group in groups:
        entries = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            kept_groups.append(group)
            continue
        kept = [e for e in entries if not ((cmd := _command_of(e)) and match(cmd))]
        if len(kept) == len(entries):
            kept_groups.append(group)
            continue
        removed = True
        if kept:
            group["hooks"] = kept
            kept_groups.append(group)
    if removed:
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    return removed


def _command_of(entry: Any) -> str | None:
    if isinstance(entry, dict) and entry.get("type") == "command":
        command = entry.get("command")
        if isinstance(command, str):
            return command
    return None


# --- reading and writing the file ------------------------------------------------


def _apply(
    settings_path: Path,
    edit: Callable[[JsonObject], list[str]],
    *,
    create_missing: bool,
) -> InstallResult:
    target = settings_path.resolve() if settings_path.is_symlink() else settings_path
    for _ in range(_ATTEMPTS):
        original = _read_bytes(target)
        if original is None and not create_missing:
            return InstallResult(changed=False, backup=None)
        settings = _parse(original, settings_path)
        before = json.dumps(settings, ensure_ascii=False)
        touched = edit(settings)
        if json.dumps(settings, ensure_ascii=False) == before and original is not None:
            return InstallResult(changed=False, backup=None, events=[])
        text = json.dumps(settings, ensure_ascii=False, indent=_indent_of(original)) + "\n"
        # Claude Code may rewrite its settings while we work (a permission the
        # user just granted): only replace the file if it is still what we read.
        if _read_bytes(target) != original:
            continue
        backup = _backup(settings_path, target) if original is not None else None
        _write_atomic(target, text.encode("utf-8"))
        return InstallResult(changed=True, backup=backup, events=touched)
    raise BadInputError(
        f"{settings_path} kept changing while Tierkeeper tried to update it",
        hint="close other programs editing it and try again",
    )


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _parse(data: bytes | None, path: Path) -> JsonObject:
    if data is None:
        return {}
    hint = "fix the file (or move it away), then try again; it was left untouched"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is not UTF-8 text (byte {exc.start})", hint=hint) from exc
    if not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint=hint,
        ) from exc
    if not isinstance(settings, dict):
        raise BadInputError(f"{path} does not hold a JSON object", hint=hint)
    return settings


def _indent_of(data: bytes | None) -> str | int:
    """Keep the user's indentation (tabs or a number of spaces); 2 like Claude Code otherwise."""
    if data:
        for line in data.decode("utf-8", "replace").splitlines()[1:]:
            stripped = line.lstrip(" \t")
            if stripped and len(stripped) < len(line):
                lead = line[: len(line) - len(stripped)]
                return "\t" if lead.startswith("\t") else len(lead)
    return 2


def _backup(settings_path: Path, target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = settings_path.with_name(f"{settings_path.name}.bak-{stamp}")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    shutil.copy2(target, candidate)
    return candidate


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600  # settings may hold API keys in "env"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _quote(path: str) -> str:
    return f'"{path}"' if os.name == "nt" and " " in path else shlex.quote(path)
