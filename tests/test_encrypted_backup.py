"""Encrypted Tier 2 backups as a user drives them: passphrase, recovery kit, new computer.

The keyring is a real keyring backend (a file the test chose explicitly through
PYTHON_KEYRING_BACKEND); "a new computer" is that keyring file deleted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import CLAUDE_FIXTURES, REPO

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
SESSION = "edge_cases"
PASSPHRASE = "correct horse battery staple"


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.ws = tmp / "ws"
        self.keyring_home = tmp / "xdg-data"
        self.env = {
            **os.environ,
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(self.keyring_home),
            "TIERKEEPER_PASSPHRASE": PASSPHRASE,
        }

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(self.ws)],
            cwd=REPO, env={**self.env, **env}, capture_output=True, timeout=120,
        )  # fmt: skip

    def ok(self, *args: str, **env: str) -> Any:
        proc = self.run(*args, **env)
        assert proc.returncode == 0, proc.stderr.decode()
        return orjson.loads(proc.stdout) if proc.stdout.strip() else None

    def new_computer(self) -> None:
        shutil.rmtree(self.keyring_home)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path)
    c.ok("import", str(SOURCE), "--json")
    c.ok("target", "add", "folder", "usb", str(tmp_path / "disk"), "--encrypt", "--json")
    return c


def test_what_leaves_the_machine_is_ciphertext_and_comes_back_whole(
    cli: Cli, tmp_path: Path
) -> None:
    config = (cli.ws / "config.toml").read_text()
    assert PASSPHRASE not in config and "key_id" in config
    cli.ok("backup", "--json")
    folder = tmp_path / "disk" / "Tierkeeper" / "no-phase" / "sessions" / f"session_{SESSION}"
    stored = folder / f"{SOURCE.name}.zst.enc"
    assert stored.exists() and not (folder / f"{SOURCE.name}.zst").exists()
    assert b"TKENC1" in stored.read_bytes()[:16]
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["encryption"] == "aes-256-gcm" and manifest["format_version"] == 2
    assert all(r["ok"] for r in cli.ok("verify", "--deep", "--json"))

    (path,) = cli.ok("restore", SESSION, "--to", str(tmp_path / "back"), "--json")
    assert Path(path).read_bytes() == SOURCE.read_bytes()


def test_on_a_new_computer_the_recovery_kit_opens_the_backups(cli: Cli, tmp_path: Path) -> None:
    cli.ok("backup", "--json")
    kit = tmp_path / "kit.txt"
    cli.ok("target", "recovery-kit", "usb", "-o", str(kit))
    assert oct(kit.stat().st_mode & 0o777) == "0o600"
    assert PASSPHRASE not in kit.read_text()

    cli.new_computer()
    proc = cli.run("restore", SESSION, "--to", str(tmp_path / "back"))
    assert proc.returncode == 3 and b"tierkeeper target unlock usb" in proc.stderr
    assert not (tmp_path / "back").exists()

    proc = cli.run("target", "unlock", "usb", TIERKEEPER_PASSPHRASE="not the passphrase")
    assert proc.returncode == 2, proc.stderr.decode()
    assert b"does not open" in proc.stderr and b"Traceback" not in proc.stderr

    cli.ok("target", "unlock", "usb", TIERKEEPER_PASSPHRASE=kit.read_text())
    (path,) = cli.ok("restore", SESSION, "--to", str(tmp_path / "back"), "--json")
    assert Path(path).read_bytes() == SOURCE.read_bytes()


def test_a_backup_without_the_key_waits_for_it(cli: Cli) -> None:
    cli.new_computer()
    proc = cli.run("backup")
    assert proc.returncode == 3 and b"target unlock usb" in proc.stderr
    proc = cli.run("target", "unlock", "usb")
    assert proc.returncode == 0 and b"continuing 1 waiting job" in proc.stderr
    assert cli.ok("jobs", "--active", "--json") == []
    (job,) = [j for j in cli.ok("jobs", "--json") if j["kind"] == "backup"]
    assert job["state"] == "done" and job["result"]["sessions"] == 1
