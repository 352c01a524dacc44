"""Installing the hook into Claude Code's settings without disturbing the user's own."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadInputError
from core.hooks.install import (
    HOOK_EVENTS,
    TOOL_EVENTS,
    default_command,
    default_settings_path,
    install,
    is_tierkeeper_command,
    uninstall,
)

CMD = "/opt/tk/bin/tierkeeper hook"

USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)"], "deny": []},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit-bash"}]},
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done", "timeout": 5}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "ping"}]}],
    },
    "env": {"FOO": "bar"},
}


def write(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def commands(settings: dict[str, Any], event: str) -> list[str]:
    return [h["command"] for g in settings["hooks"].get(event, []) for h in g["hooks"]]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def test_fresh_install_creates_folder_and_file(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".claude" / "settings.json"
    result = install(path, CMD)

    assert result.changed and result.backup is None
    assert result.events == list(HOOK_EVENTS)
    settings = read(path)
    assert list(settings["hooks"]) == list(HOOK_EVENTS)
    for event in HOOK_EVENTS:
        (group,) = settings["hooks"][event]
        assert group["hooks"] == [{"type": "command", "command": CMD}]
        # Tool events match every tool; the rest take no matcher (= always).
        assert group.get("matcher") == ("*" if event in TOOL_EVENTS else None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_install_keeps_user_hooks_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, USER_SETTINGS)
    original = path.read_bytes()

    result = install(path, CMD)

    assert result.changed
    assert result.backup is not None and result.backup.read_bytes() == original
    settings = read(path)
    assert list(settings) == ["model", "permissions", "hooks", "env"]
    assert settings["permissions"] == USER_SETTINGS["permissions"]
    assert settings["env"] == {"FOO": "bar"}
    assert commands(settings, "PreToolUse") == ["audit-bash", CMD]
    assert settings["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert commands(settings, "Stop") == ["notify-send done", CMD]
    assert settings["hooks"]["Notification"] == USER_SETTINGS["hooks"]["Notification"]
    assert set(HOOK_EVENTS) <= set(settings["hooks"])


def test_second_install_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, USER_SETTINGS)
    install(path, CMD)
    after_first = path.read_bytes()
    first_backups = backups(path)

    again = install(path, CMD)

    assert not again.changed and again.backup is None and again.events == []
    assert path.read_bytes() == after_first
    assert backups(path) == first_backups


def test_install_finds_command_the_user_added_to_a_catch_all_group(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    shared = {"matcher": "", "hooks": [{"type": "command", "command": "x"}]}
    shared["hooks"].append({"type": "command", "command": CMD})
    write(path, {"hooks": {"PostToolUse": [shared]}})

    result = install(path, CMD)

    assert "PostToolUse" not in result.events
    assert commands(read(path), "PostToolUse") == ["x", CMD]


def test_reinstall_from_a_moved_venv_replaces_the_old_command(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    install(path, "/old/venv/bin/tierkeeper hook")
    install(path, CMD)

    settings = read(path)
    for event in HOOK_EVENTS:
        assert commands(settings, event) == [CMD]


def test_uninstall_round_trip_restores_user_hooks(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, USER_SETTINGS)
    install(path, CMD)

    result = uninstall(path, CMD)

    assert result.changed and result.backup is not None
    assert sorted(result.events) == sorted(HOOK_EVENTS)
    # Same content and the same key order as before install.
    assert json.dumps(read(path)) == json.dumps(USER_SETTINGS)
    assert not uninstall(path, CMD).changed


def test_uninstall_without_command_finds_any_tierkeeper_hook(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, {"theme": "dark"})
    install(path, "'/path with space/python' -m core.hooks.record")

    uninstall(path)

    assert read(path) == {"theme": "dark"}


def test_uninstall_keeps_a_user_hook_sharing_our_group(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    group = {"hooks": [{"type": "command", "command": CMD}, {"type": "command", "command": "mine"}]}
    write(path, {"hooks": {"Stop": [group]}})

    uninstall(path, CMD)

    assert read(path) == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "mine"}]}]}}


def test_uninstall_of_missing_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    result = uninstall(path, CMD)
    assert not result.changed
    assert not path.exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [('{\n  "model": "opus",\n  "hooks": {\n}', "line 4"), ('{"a": 1,}', "line 1")],
)
def test_invalid_json_is_left_untouched(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)

    with pytest.raises(BadInputError) as err:
        install(path, CMD)

    assert str(path) in str(err.value)
    assert where in str(err.value) and "column" in str(err.value)
    assert path.read_text() == text
    assert backups(path) == []
    with pytest.raises(BadInputError):
        uninstall(path, CMD)
    assert path.read_text() == text


def test_hooks_of_the_wrong_type_are_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, {"hooks": {"Stop": "oops"}})
    before = path.read_bytes()
    with pytest.raises(BadInputError, match=r"hooks\.Stop"):
        install(path, CMD)
    assert path.read_bytes() == before


def test_indentation_and_mode_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{\n\t"model": "opus"\n}\n')
    path.chmod(0o644)

    install(path, CMD)

    assert path.read_text().startswith('{\n\t"model": "opus",\n\t"hooks": {\n\t\t"SessionStart"')
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_symlinked_settings_stay_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude-settings.json"
    real.parent.mkdir()
    write(real, {"model": "opus"})
    link = tmp_path / "settings.json"
    link.symlink_to(real)

    install(link, CMD)

    assert link.is_symlink()
    assert commands(read(real), "Stop") == [CMD]


def test_backups_of_two_changes_in_one_second_do_not_collide(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, USER_SETTINGS)
    first = install(path, CMD).backup
    second = uninstall(path, CMD).backup
    assert first is not None and second is not None and first != second
    assert len(backups(path)) == 2


def test_default_settings_path_follows_claude_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cc"))
    assert default_settings_path() == tmp_path / "cc" / "settings.json"
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_settings_path() == tmp_path / ".claude" / "settings.json"


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("tierkeeper hook", True),
        ("/home/u/.venv/bin/tierkeeper hook", True),
        ("'/a b/tierkeeper' hook", True),
        ("/usr/bin/python3 -m core.hooks.record", True),
        ("/opt/tierkeeper/tierkeeper-hook", True),
        ('"C:/Program Files/Tierkeeper/tierkeeper-hook.exe"', True),
        ("tierkeeper hook install", False),
        ("/opt/tierkeeper/tierkeeper-hook --verbose", False),
        ("/opt/mytierkeeper-hook", False),
        ("mytierkeeper hook", False),
        ("echo tierkeeper hook", False),
        ("unbalanced 'quote", False),
    ],
)
def test_is_tierkeeper_command(command: str, ours: bool) -> None:
    assert is_tierkeeper_command(command) is ours


def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    install(path, CMD)
    uninstall(path, CMD)
    names = os.listdir(tmp_path)
    assert "settings.json" in names
    assert all(n == "settings.json" or n.startswith("settings.json.bak-") for n in names)


def test_upgrading_the_deb_swaps_tierkeeper_hook_for_the_hook_program(tmp_path: Path) -> None:
    """Installs from before `tierkeeper-hook` wrote `tierkeeper hook`: one entry per event after."""
    path = tmp_path / "settings.json"
    write(path, USER_SETTINGS)
    install(path, "/opt/tierkeeper/tierkeeper hook")

    result = install(path, "/opt/tierkeeper/tierkeeper-hook")

    assert sorted(result.events) == sorted(HOOK_EVENTS)
    settings = read(path)
    for event in HOOK_EVENTS:
        ours = [c for c in commands(settings, event) if c.startswith("/opt/")]
        assert ours == ["/opt/tierkeeper/tierkeeper-hook"]
    uninstall(path)
    assert json.dumps(read(path)) == json.dumps(USER_SETTINGS)


def _frozen_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *programs: str) -> Path:
    """A PyInstaller bundle's folder as the running program sees it (sys.frozen, sys.executable)."""
    bundle = tmp_path / "opt dir" / "tierkeeper"
    bundle.mkdir(parents=True)
    for name in programs:
        (bundle / name).write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "tierkeeper"))
    return bundle


@pytest.mark.skipif(os.name == "nt", reason="POSIX program names and quoting")
def test_frozen_install_writes_the_hook_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _frozen_bundle(tmp_path, monkeypatch, "tierkeeper", "tierkeeper-hook")

    command = default_command()

    assert command == f"'{bundle}/tierkeeper-hook'"  # quoted: the path has a space
    assert is_tierkeeper_command(command)


@pytest.mark.skipif(os.name == "nt", reason="POSIX program names and quoting")
def test_frozen_bundle_without_hook_program_falls_back_to_tierkeeper_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _frozen_bundle(tmp_path, monkeypatch, "tierkeeper")

    assert default_command() == f"'{bundle}/tierkeeper' hook"
