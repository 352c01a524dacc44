"""The command line as scripts use it: JSON on stdout, exit codes, one-line errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import CLAUDE_FIXTURES, REPO, fixture_stats


def tk(*args: str, ws: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(ws)],
        cwd=REPO, capture_output=True, input=stdin, timeout=120,
    )  # fmt: skip


def ok_json(proc: subprocess.CompletedProcess[bytes]) -> Any:
    assert proc.returncode == 0, proc.stderr.decode()
    return orjson.loads(proc.stdout)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("cli") / "ws"
    ok_json(tk("init", "--json", ws=ws))
    out = ok_json(tk("import", str(CLAUDE_FIXTURES), "--json", ws=ws))
    assert out["job"]["state"] == "done"
    return ws


def test_import_report_counts_match_the_fixtures(imported: Path) -> None:
    stats = fixture_stats()
    rows = ok_json(tk("sessions", "--json", ws=imported))
    assert sum(r["message_count"] for r in rows) >= sum(int(s["lines"]) for s in stats.values())
    again = ok_json(tk("import", str(CLAUDE_FIXTURES), "--json", ws=imported))
    assert again["report"]["lines_read"] == 0
    assert again["report"]["files_skipped"] == again["report"]["files_seen"]


def test_export_original_to_stdout_is_byte_identical(imported: Path) -> None:
    src = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
    for flags in (["--original"], []):  # the original files are what an export is
        proc = tk("export", "edge_cases", *flags, ws=imported)
        assert proc.returncode == 0, proc.stderr.decode()
        assert hashlib.sha256(proc.stdout).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_search_json_and_show(imported: Path) -> None:
    hits = ok_json(tk("search", "decorators", "--limit", "5", "--json", ws=imported))
    assert 0 < len(hits) <= 5
    detail = ok_json(tk("show", hits[0]["session_id"], "--messages", "--json", ws=imported))
    assert any(m["id"] == hits[0]["message_id"] for m in detail["messages"])


def test_stats_by_model_sums_deduplicated_usage(imported: Path) -> None:
    rows = ok_json(tk("stats", "--by", "model", "--json", ws=imported))
    assert sum(r["responses"] for r in rows) == 409  # unique (message id, request id) pairs
    assert all(r["cost_usd"] >= 0 for r in rows)
    priced = [r for r in rows if r["unpriced_responses"] == 0 and r["output_tokens"]]
    assert priced and all(r["cost_usd"] > 0 for r in priced)
    tools = ok_json(tk("stats", "--by", "tool", "--json", ws=imported))
    assert tools and all(t["calls"] > 0 for t in tools)


def test_phase_and_session_lifecycle(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ok_json(tk("phase", "new", "auth-rewrite", "--json", ws=ws))
    sid = ok_json(tk("session", "start", "--json", ws=ws))["session"]
    assert (ws / "logs" / f"session_{sid}.jsonl").exists()
    end = ok_json(tk("session", "end", sid, "--summary", "Did the thing", "--open-item",
                     "write docs", "--json", ws=ws))  # fmt: skip
    note = Path(end["handoff"]).read_text()
    assert "Did the thing" in note and "- [ ] write docs" in note
    sessions = ok_json(tk("sessions", "--phase", "auth-rewrite", "--json", ws=ws))
    assert [s["id"] for s in sessions] == [sid]
    assert sessions[0]["ended_at"]
    phases = ok_json(tk("phase", "list", "--json", ws=ws))
    assert phases[0]["name"] == "auth-rewrite" and phases[0]["current"]
    ok_json(tk("phase", "close", "--json", ws=ws))
    phases = ok_json(tk("phase", "list", "--json", ws=ws))
    assert phases[0]["status"] == "closed" and not phases[0]["current"]
    assert not (ws / "current_phase.json").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("import", "/nonexistent/path"), 2, "does not exist"),
        (("show", "no-such-session"), 2, "No session"),
        (("stats", "--by", "colour"), 2, "Cannot group by"),
        (("phase", "new", "../evil"), 2, "not a usable phase name"),
        (("search", "   "), 2, "The search is empty"),
    ],
)
def test_errors_are_one_clear_line_with_the_documented_exit_code(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    ws = tmp_path / "ws"
    tk("init", ws=ws)
    proc = tk(*args, ws=ws)
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    assert message in err
    assert "Traceback" not in err


def test_second_writer_is_told_who_holds_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    tk("init", ws=ws)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio,sys\nfrom core.service import Service\n"
         "async def m():\n    s = await Service.start(sys.argv[1])\n    print('up', flush=True)\n"
         "    await asyncio.sleep(60)\nasyncio.run(m())", str(ws)],
        cwd=REPO, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"up"
        proc = tk("phase", "new", "x", ws=ws)
        assert proc.returncode == 1
        assert f"in use by process {holder.pid}" in proc.stderr.decode()
        # reading still works while another process owns the workspace
        assert tk("sessions", "--json", ws=ws).returncode == 0
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_installed_hook_command_records_and_install_round_trips(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("tierkeeper")
    if not exe.exists():
        pytest.skip("the console script is not installed in this environment")
    ws = tmp_path / "ws"
    payload = orjson.dumps(
        {
            "session_id": "abc123",
            "hook_event_name": "UserPromptSubmit",
            "prompt": "hello there",
            "cwd": "/x",
            "transcript_path": "/t",
        }
    )
    proc = subprocess.run([str(exe), "hook"], input=payload, capture_output=True, timeout=60,
                          env={**os.environ, "TIERKEEPER_HOME": str(ws)})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == b""
    (event,) = [
        orjson.loads(x) for x in (ws / "logs" / "session_abc123.jsonl").read_bytes().splitlines()
    ]
    assert event["type"] == "UserPromptSubmit" and event["payload"]["prompt"] == "hello there"

    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text('{"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", '
                        '"command": "notify-send done"}]}]}}')  # fmt: skip
    before = settings.read_bytes()
    proc = subprocess.run([str(exe), "hook", "install", "--settings", str(settings), "--json"],
                          capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = orjson.loads(settings.read_bytes())
    stop_cmds = [h["command"] for m in data["hooks"]["Stop"] for h in m["hooks"]]
    assert "notify-send done" in stop_cmds and any(c.endswith("hook") for c in stop_cmds)
    assert set(data["hooks"]) >= {"PreToolUse", "PostToolUse", "SessionStart", "SessionEnd"}
    proc = subprocess.run([str(exe), "hook", "uninstall", "--settings", str(settings)],
                          capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0
    assert orjson.loads(settings.read_bytes()) == orjson.loads(before)


def test_a_command_that_touches_no_cloud_target_loads_no_cloud_client(imported: Path) -> None:
    """Every command pays for what it imports, in the half second a person waits for it:
    boto3 and the Google client load when an S3 or Drive target is used, not before."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'boto3', 'botocore', 's3transfer', 'googleapiclient', 'google', 'httplib2'}), "
        "file=sys.stderr))\n"
        f"sys.argv = ['tierkeeper', 'sessions', '--json', '--workspace', {str(imported)!r}]\n"
        "from core.cli.entry import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert orjson.loads(proc.stdout)  # the sessions were listed
    assert proc.stderr.decode().strip().splitlines()[-1] == "[]"


def test_help_lists_every_command_with_its_summary_as_one_sentence() -> None:
    """A docstring wraps at the source's line length; the list of commands must not
    break a summary there (it did for `recover` and `target add s3`), so each
    summary is one line when the terminal is wide enough."""
    import typer

    from core.cli.app import app

    group = typer.main.get_command(app)
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    for path in ([], ["target", "add"]):
        out = subprocess.run(
            [sys.executable, "-m", "core.cli.entry", *path, "--help"],
            cwd=REPO, capture_output=True, text=True, env=env, timeout=60, check=True,
        ).stdout  # fmt: skip
        cmd = group
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        for name, sub in cmd.commands.items():  # type: ignore[attr-defined]
            summary = " ".join((sub.help or "").split("\n\n")[0].split())
            assert any(name in line and summary in line for line in out.splitlines()), (
                name, summary)  # fmt: skip


def test_status_and_sessions_say_what_the_backup_targets_hold(tmp_path: Path) -> None:
    """They used to say "local copies only (backup tiers not set up)" whatever was set up."""
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok_json(tk("init", "--json", ws=ws))
    ok_json(tk("import", str(CLAUDE_FIXTURES / "claude-code-log-cases" / "edit_tool.jsonl"),
               "--json", ws=ws))  # fmt: skip
    before = tk("sessions", ws=ws)
    assert b"no backup target yet" in before.stderr and b"not set up" not in before.stderr
    assert b"no backup target yet" in tk("status", ws=ws).stdout
    ok_json(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    assert b"usb" in tk("status", ws=ws).stdout and b"nothing backed up yet" in tk(
        "status", ws=ws).stdout  # fmt: skip
    ok_json(tk("backup", "--json", ws=ws))
    after = tk("sessions", ws=ws)
    assert b"backed up on usb: 1 session," in after.stderr, after.stderr.decode()
    status = tk("status", "--json", ws=ws)
    assert status.returncode == 0
    plain = tk("status", ws=ws).stdout.decode()
    assert "backup: usb" in plain and "1 session," in plain and "no backup target" not in plain
