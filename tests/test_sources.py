"""Agent folders are found where the tools keep them; `import` with no path uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from core.local.sources import claude_projects_dir, detected_sources
from tests.support import REPO


def test_claude_projects_honours_claude_config_dir(tmp_path: Path) -> None:
    assert claude_projects_dir(tmp_path, {}) == tmp_path / ".claude" / "projects"
    assert claude_projects_dir(tmp_path, {"CLAUDE_CONFIG_DIR": "/cfg"}) == Path("/cfg/projects")


def test_detects_claude_and_roo_folders_that_exist(tmp_path: Path) -> None:
    assert detected_sources(tmp_path, {}) == []
    (tmp_path / ".claude" / "projects").mkdir(parents=True)
    roo = tmp_path / ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    roo.mkdir(parents=True)
    found = {(s.format, s.path) for s in detected_sources(tmp_path, {})}
    assert ("claude-code", tmp_path / ".claude" / "projects") in found
    assert ("roo", roo) in found


def test_import_without_a_path_uses_the_detected_folders(tmp_path: Path) -> None:
    proj = tmp_path / "home" / ".claude" / "projects" / "-p"
    proj.mkdir(parents=True)
    (proj / "s1.jsonl").write_bytes(orjson.dumps({"type": "user", "uuid": "a"}) + b"\n")
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "core.cli.entry", "import", "--json", "--workspace"]
    proc = subprocess.run([*cmd, str(tmp_path / "ws")], cwd=REPO, env=env,
                          capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["report"]["rows_stored"] == 1
    assert b"importing claude-code history" in proc.stderr
    empty = {"HOME": str(tmp_path / "nobody"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([*cmd, str(tmp_path / "ws2")], cwd=REPO, env=empty,
                          capture_output=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and b"No agent history found" in proc.stderr
