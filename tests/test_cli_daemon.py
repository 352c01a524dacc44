"""The command line against a running daemon: the same commands, the same answers.

The daemon holds the workspace, so a command that opened the service itself would hit
the lock; through the client it asks the daemon instead. Each flow runs twice, once with
the service in the command's process and once with a daemon (on its own loop in a thread
here, reached over its Unix socket), and what the user sees must be the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from core.cli.app import app
from core.cli.common import DaemonHoldsWorkspaceError, open_service
from tests.daemon_harness import ThreadedDaemon
from tests.support import CLAUDE_FIXTURES

SESSION = "edge_cases"
SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
VOLATILE = {"id", "created_at", "started_at", "finished_at", "rate", "eta_seconds"}


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


@pytest.fixture
def daemon() -> Iterator[ThreadedDaemon]:
    threaded = ThreadedDaemon()
    try:
        yield threaded
    finally:
        threaded.close()


def tk(ws: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--workspace", str(ws)])


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    return orjson.loads(result.stdout) if result.stdout.strip() else None


def job(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k not in VOLATILE}


def flow(ws: Path, tmp: Path) -> dict[str, Any]:
    """import → add a folder target → back up → restore → verify, as a user types it."""
    seen: dict[str, Any] = {}
    imported = ok(tk(ws, "import", str(SOURCE), "--json"))
    seen["import"] = (job(imported["job"]), imported["report"])
    added = ok(tk(ws, "target", "add", "folder", "usb", str(tmp / "disk"), "--json"))
    seen["target"] = {k: v for k, v in added.items() if k != "path"}
    backed = ok(tk(ws, "backup", "--all", "--json"))
    seen["backup"] = (job(backed["job"]), backed["result"])
    (restored,) = ok(tk(ws, "restore", SESSION, "--to", str(tmp / "out"), "--json"))
    seen["restored"] = (Path(restored).relative_to(tmp).as_posix(), Path(restored).read_bytes())
    seen["verify"] = ok(tk(ws, "verify", "--deep", "--json"))
    seen["sessions"] = ok(tk(ws, "sessions", "--json"))
    seen["search"] = [
        {k: v for k, v in hit.items() if k != "rank"}
        for hit in ok(tk(ws, "search", "markdown", "--limit", "3", "--json"))
    ]
    seen["jobs"] = [job(j) for j in ok(tk(ws, "jobs", "--json"))]
    seen["targets"] = [t["name"] for t in ok(tk(ws, "target", "list", "--json"))]
    return seen


def test_import_backup_restore_verify_give_the_same_through_the_daemon(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    alone = flow(tmp_path / "a" / "ws", tmp_path / "a")
    ws = tmp_path / "b" / "ws"
    daemon.start(ws)
    served = flow(ws, tmp_path / "b")
    # restore and verify run as jobs in the daemon (they hold its targets), and only there
    jobs = [j for j in served.pop("jobs") if j["kind"] in ("import", "backup")]
    assert jobs == alone.pop("jobs")
    assert served == alone
    assert served["restored"][1] == SOURCE.read_bytes()
    assert [r["ok"] for r in served["verify"]] == [True]
    # the work ran in the daemon: its service recorded the jobs, in order
    assert daemon.daemon is not None
    kinds = [j.kind for j in daemon.run(daemon.daemon.service.jobs.list())]
    assert kinds == ["verify", "restore", "backup", "import"]


def test_status_says_who_serves_the_workspace(tmp_path: Path, daemon: ThreadedDaemon) -> None:
    ws = tmp_path / "ws"
    ok(tk(ws, "init", "--json"))
    alone = tk(ws, "status")
    assert alone.exit_code == 0 and "in-process" in alone.stdout
    daemon.start(ws)
    served = tk(ws, "status")
    assert served.exit_code == 0 and f"daemon (pid {os.getpid()})" in served.stdout
    assert ok(tk(ws, "status", "--json"))["daemon_pid"] == os.getpid()


def test_jobs_cancel_and_retry_reach_the_daemons_queue(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    daemon.start(ws)
    ok(tk(ws, "import", str(SOURCE), "--json"))
    ok(tk(ws, "target", "add", "folder", "usb", str(disk), "--json"))
    disk.rename(tmp_path / "unplugged")  # the disk goes away: the backup waits for it
    parked = tk(ws, "backup", "--json")
    assert parked.exit_code == 4 and "waiting" in parked.stderr
    (waiting,) = ok(tk(ws, "jobs", "--active", "--json"))
    assert waiting["state"] == "waiting"
    (tmp_path / "unplugged").rename(disk)  # plugged in again: retry finishes it
    (done,) = ok(tk(ws, "jobs", "retry", "--json"))
    assert done["id"] == waiting["id"] and done["state"] == "done"
    assert ok(tk(ws, "jobs", "--active", "--json")) == []


def test_a_command_the_daemon_cannot_run_says_to_stop_it(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    """What a command that opens the service itself (`open_service`) gets under a daemon."""
    ws = tmp_path / "ws"
    daemon.start(ws)
    with pytest.raises(DaemonHoldsWorkspaceError) as refused:
        asyncio.run(open_service(ws, write=True))
    assert refused.value.exit_code == 3
    assert f"daemon (pid {os.getpid()})" in refused.value.message
    assert "stop the daemon" in (refused.value.hint or "")
    assert ok(tk(ws, "sessions", "--json")) == []  # reading works beside it


def test_the_session_hook_commands_go_through_the_daemon(
    tmp_path: Path, daemon: ThreadedDaemon
) -> None:
    """Claude Code runs `session end` while the daemon owns the workspace: it must work."""
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    daemon.start(ws)
    ok(tk(ws, "target", "add", "folder", "usb", str(disk), "--json"))
    sid = ok(tk(ws, "session", "start", "--agent", "claude-code", "--json"))["session"]
    end = ok(tk(ws, "session", "end", sid, "--summary", "Did the thing", "--json"))
    assert "Did the thing" in Path(end["handoff"]).read_text()
    assert end["backup"]["state"] == "done" and end["backup"]["resource"] == "target:usb"
    assert [s["id"] for s in ok(tk(ws, "sessions", "--json"))] == [sid]


def test_recover_runs_in_the_daemon_that_holds_the_workspace(
    daemon: ThreadedDaemon, tmp_path: Path
) -> None:
    """`tierkeeper recover` on a new machine whose daemon already runs: the rebuild is a
    job of the daemon's, and the sessions it adds list at once."""
    old, ws, disk = tmp_path / "old", tmp_path / "ws", tmp_path / "disk"
    ok(tk(old, "import", str(SOURCE), "--json"))
    ok(tk(old, "target", "add", "folder", "usb", str(disk)))
    ok(tk(old, "backup", "--all", "--json"))
    ok(tk(ws, "target", "add", "folder", "usb", str(disk)))
    daemon.start(ws)
    report = ok(tk(ws, "recover", "--json"))
    (target,) = report["targets"]
    assert target["sessions_added"] == 1 and target["index"] == "ok" and not target["problems"]
    (row,) = ok(tk(ws, "sessions", "--json"))
    assert row["id"] == SESSION and row["in_backup_only"]
    restored = ok(tk(ws, "recover", "--restore", "--json"))
    assert restored["restore"]["restored"] == [SESSION]
