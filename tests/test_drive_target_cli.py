"""A Google Drive target as a user drives it from the CLI, against the test Drive server.

Sign-in runs the real loopback flow: the command prints the address (`--no-browser`),
and the test plays the browser by opening it; the fake's `/auth` redirects back
to the command's loopback listener. Tokens land in a keyring file backend the
user chose explicitly (PYTHON_KEYRING_BACKEND), never in config.toml.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.support import CLAUDE_FIXTURES, REPO

drive = drive_fixture()
SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
SESSION = "edge_cases"


class Cli:
    def __init__(self, tmp: Path, drive: DriveHarness) -> None:
        self.ws = tmp / "ws"
        self.drive = drive
        self.env = {
            **os.environ,
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "TIERKEEPER_GOOGLE_CLIENT_SECRET": drive.server.client_secret,
        }

    def args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(self.ws)]

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.args(*args), cwd=REPO, env=self.env, capture_output=True,
                              timeout=120)  # fmt: skip

    def ok(self, *args: str) -> Any:
        proc = self.run(*args)
        assert proc.returncode == 0, proc.stderr.decode()
        return orjson.loads(proc.stdout) if proc.stdout.strip() else None

    def signing_in(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Runs a command that prints a sign-in address, and 'clicks' it like a browser."""
        proc = subprocess.Popen(self.args(*args, "--no-browser"), cwd=REPO, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert proc.stderr is not None and proc.stdout is not None
        seen = []
        for raw in proc.stderr:
            line = raw.decode().strip()
            seen.append(line)
            if line.startswith("http"):
                with urllib.request.urlopen(line, timeout=30) as page:  # follows to loopback
                    assert b"signed in" in page.read().lower()
                break
        else:
            proc.wait(30)
            pytest.fail("no sign-in address was printed:\n" + "\n".join(seen))
        out, rest = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out,
                                           "\n".join(seen).encode() + rest)  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, drive: DriveHarness) -> Cli:
    return Cli(tmp_path, drive)


def add_drive(cli: Cli) -> Any:
    base = cli.drive.base_url
    proc = cli.signing_in(
        "target", "add", "drive", "gdrive", "--client-id", cli.drive.server.client_id,
        "--auth-uri", cli.drive.server.auth_uri, "--token-uri", cli.drive.server.token_uri,
        "--api-root", base, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    return orjson.loads(proc.stdout)


def test_backup_to_drive_then_restore_by_id_gives_back_the_same_bytes(cli: Cli) -> None:
    target = add_drive(cli)
    assert target["kind"] == "drive" and target["account"]
    config = (cli.ws / "config.toml").read_text()
    assert cli.drive.server.client_secret not in config and "refresh" not in config

    cli.ok("import", str(SOURCE), "--json")
    out = cli.ok("backup", "--json")
    assert out["job"]["state"] == "done" and out["result"]["failed"] == []
    names = {f.name for f in cli.drive.store.all_files() if not f.is_folder}
    assert {"manifest.json", f"{SOURCE.name}.zst"} <= names
    assert all(r["ok"] for r in cli.ok("verify", "--deep", "--json"))

    dest = cli.ws.parent / "restored"
    (path,) = cli.ok("restore", SESSION, "--to", str(dest), "--json")
    got = Path(path).read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(SOURCE.read_bytes()).digest()


def test_a_revoked_sign_in_parks_the_backup_until_reconnect(cli: Cli) -> None:
    add_drive(cli)
    cli.ok("import", str(SOURCE), "--json")
    cli.drive.server.tokens.revoke_all()  # the user removed the app's access

    proc = cli.run("backup")
    assert proc.returncode == 3, proc.stderr.decode()
    assert b"tierkeeper target reconnect gdrive" in proc.stderr
    assert b"Traceback" not in proc.stderr
    (job,) = cli.ok("jobs", "--active", "--json")
    assert job["state"] == "waiting" and job["needs_user"]

    proc = cli.signing_in("target", "reconnect", "gdrive", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    result = orjson.loads(proc.stdout)
    assert [j["state"] for j in result["jobs"]] == ["done"]
    assert cli.ok("jobs", "--active", "--json") == []
    manifests = [f for f in cli.drive.store.all_files() if f.name == "manifest.json"]
    assert len(manifests) == 1
