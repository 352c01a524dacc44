"""The commands that used to need the workspace to themselves, now also beside a daemon.

Each flow runs with the service in the command's process and again with a daemon
serving the workspace (on its own loop in a thread, reached over its Unix socket), and
what the user sees must be the same: phases, stats, export, review, archive and its
restore, removing a target, unlocking an encrypted one, signing a Drive target in again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from core.cli.app import app
from core.tier2.targets import RetryPolicy
from tests.daemon_harness import ThreadedDaemon
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.test_cli_daemon import SESSION, SOURCE, job, ok, tk
from tests.test_drive_target_cli import Cli, add_drive

drive = drive_fixture()
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where daemons put their sockets, and a keyring file the test chose (the daemon
    runs in this process, so it reads the same environment as the commands)."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return runtime


@pytest.fixture
def daemon() -> Iterator[ThreadedDaemon]:
    threaded = ThreadedDaemon()
    try:
        yield threaded
    finally:
        threaded.close()


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def flow(ws: Path, tmp: Path) -> dict[str, Any]:
    """A phase from start to archive and back, as a user types it."""
    seen: dict[str, Any] = {}
    seen["phase new"] = without(ok(tk(ws, "phase", "new", "p1", "--json")), "started_at")
    ok(tk(ws, "import", str(SOURCE), "--json"))
    ok(tk(ws, "target", "add", "folder", "usb", str(tmp / "disk"), "--json"))
    ok(tk(ws, "backup", "--json"))
    seen["stats"] = ok(tk(ws, "stats", "--by", "model", "--json"))
    seen["stats table"] = tk(ws, "stats", "--by", "tool").stdout

    (tmp / "out").mkdir()
    (copy,) = ok(tk(ws, "export", SESSION, "--original", "-o", str(tmp / "out"), "--json"))
    seen["export"] = {**copy, "written_to": Path(copy["written_to"]).relative_to(tmp).as_posix()}
    assert (tmp / "out" / SOURCE.name).read_bytes() == SOURCE.read_bytes()
    piped = tk(ws, "export", SESSION, "--original")
    assert piped.exit_code == 0 and piped.stdout_bytes == SOURCE.read_bytes()
    missing = tk(ws, "export", "no-such", "--original", "-o", str(tmp / "out"))
    seen["export missing"] = (missing.exit_code, missing.stderr)

    reviewed = ok(tk(ws, "review", "p1", "--json"))
    seen["review"] = (job(reviewed["job"])["state"], reviewed["result"]["recommendations"])
    seen["phases"] = [without(p, "created_at", "closed_at")
                      for p in ok(tk(ws, "phase", "list", "--json"))]  # fmt: skip
    ok(tk(ws, "phase", "close", "p1", "--json"))
    seen["closed"] = [p["status"] for p in ok(tk(ws, "phase", "list", "--json"))]
    ok(tk(ws, "target", "add", "folder", "cold", str(tmp / "cold"), "--json"))

    archived = tk(ws, "archive", "p1", "--target", "cold", "--from", "usb")
    assert archived.exit_code == 0, archived.stderr
    seen["archive"] = archived.stderr
    again = tk(ws, "archive", "p1", "--target", "cold", "--from", "usb", "--json")
    seen["archive json"] = ok(again)["result"]
    back = ok(tk(ws, "archive-restore", "p1", "--target", "cold", "--to", str(tmp / "back"),
                 "--no-import", "--json"))  # fmt: skip
    seen["archive-restore"] = (back["job"]["state"], back["result"]["written"])
    assert Path(back["result"]["dest"]) == tmp / "back"
    assert [p.read_bytes() for p in (tmp / "back").rglob(SOURCE.name)] == [SOURCE.read_bytes()]
    nothing = tk(ws, "archive-restore", "p9", "--to", str(tmp / "back"))
    seen["archive-restore missing"] = (nothing.exit_code, nothing.stderr)

    removed = tk(ws, "target", "remove", "cold")
    seen["target remove"] = (removed.exit_code, removed.stderr)
    seen["targets"] = [t["name"] for t in ok(tk(ws, "target", "list", "--json"))]
    return seen


def test_phase_stats_export_review_archive_give_the_same_through_the_daemon(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    alone = flow(tmp_path / "a" / "ws", tmp_path / "a")
    ws = tmp_path / "b" / "ws"
    daemon.start(ws)
    served = flow(ws, tmp_path / "b")
    assert served == alone
    assert "Archiving 1 sessions of p1 from usb to cold" in served["archive"]
    assert served["closed"] == ["closed"] and served["targets"] == ["usb"]
    assert daemon.daemon is not None  # the work ran in the daemon
    kinds = {j.kind for j in daemon.run(daemon.daemon.service.jobs.list())}
    assert {"review", "archive", "archive-restore", "phase-close"} <= kinds


def unlock_flow(ws: Path, tmp: Path) -> list[tuple[int, str]]:
    """An encrypted target on a computer without its key: the backup waits, unlock frees it."""
    run = CliRunner()
    env = {"TIERKEEPER_PASSPHRASE": PASSPHRASE}
    ok(tk(ws, "import", str(SOURCE), "--json"))
    added = run.invoke(app, ["target", "add", "folder", "usb", str(tmp / "disk"), "--encrypt",
                             "--workspace", str(ws)], env=env)  # fmt: skip
    assert added.exit_code == 0, added.stderr
    shutil.rmtree(tmp.parent / "xdg-data")  # a new computer: its keyring has no key
    seen: list[tuple[int, str]] = []

    def unlock(secret: str) -> Result:
        return run.invoke(app, ["target", "unlock", "usb", "--workspace", str(ws)],
                          env={"TIERKEEPER_PASSPHRASE": secret})  # fmt: skip

    for result in (tk(ws, "backup"), unlock("not the passphrase"), unlock(PASSPHRASE)):
        seen.append((result.exit_code, result.stderr))
        assert PASSPHRASE not in result.stderr + result.stdout
    assert ok(tk(ws, "jobs", "--active", "--json")) == []
    return seen


def test_target_unlock_frees_the_waiting_backup_through_the_daemon(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    alone = unlock_flow(tmp_path / "a" / "ws", tmp_path / "a")
    ws = tmp_path / "b" / "ws"
    daemon.start(ws)
    served = unlock_flow(ws, tmp_path / "b")
    assert served == alone
    (parked, parked_err), (wrong, wrong_err), (right, right_err) = served
    assert parked == 3 and "tierkeeper target unlock usb" in parked_err
    assert wrong == 2 and "does not open" in wrong_err
    assert right == 0 and "continuing 1 waiting job" in right_err


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "daemon"])
def test_target_reconnect_signs_in_again_through_the_daemon(
    tmp_path: Path, drive: DriveHarness, daemon: ThreadedDaemon, xdg: Path, served: bool
) -> None:
    """The command runs as its own process (it prints the address; the test plays the
    browser); with a daemon, the daemon holds the loopback listener."""
    cli = Cli(tmp_path, drive)
    cli.env["XDG_RUNTIME_DIR"] = str(xdg)
    if served:
        daemon.start(cli.ws)
    add_drive(cli)
    cli.ok("import", str(SOURCE), "--json")
    drive.server.tokens.revoke_all()
    proc = cli.run("backup")
    assert proc.returncode == 3 and b"tierkeeper target reconnect gdrive" in proc.stderr

    proc = cli.signing_in("target", "reconnect", "gdrive", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    result = orjson.loads(proc.stdout)
    assert [j["state"] for j in result["jobs"]] == ["done"]
    assert result["target"]["account"] == "test.user@example.com"
    assert b"Target gdrive" in proc.stderr and b"continuing 1 waiting job" in proc.stderr
    assert cli.ok("jobs", "--active", "--json") == []
    if served:
        assert daemon.daemon is not None
        kinds = [j.kind for j in daemon.run(daemon.daemon.service.jobs.list())]
        assert kinds[0] == "backup"  # the parked backup ran in the daemon


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "daemon"])
def test_a_backup_to_an_unplugged_disk_says_who_runs_it_later(
    tmp_path: Path, daemon: ThreadedDaemon, served: bool
) -> None:
    """With a daemon the job runs by itself once the disk is back; without one, at the
    next start. The message said "at the next start" to daemon users too."""
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk(ws, "import", str(SOURCE), "--json"))
    ok(tk(ws, "target", "add", "folder", "usb", str(disk), "--json"))
    if served:
        daemon.start(ws, retry=RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.01))
    disk.rename(tmp_path / "away")
    parked = tk(ws, "backup")
    assert parked.exit_code == 4, parked.stderr
    said = " ".join(parked.stderr.split())
    assert "usb is unreachable" in said
    assert ("the daemon runs it as soon as the target answers" in said) == served
    assert ("at the next start of Tierkeeper" in said) == (not served)
