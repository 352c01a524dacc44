"""Roo Code / Cline task folders and the workspace layout, through the real engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from roo_cline_data import write_roo_task

from core.errors import BadInputError
from core.local.export import export_session
from core.service import Service


async def test_roo_task_imports_counts_and_exports_each_file(
    service: Service, tmp_path: Path
) -> None:
    tasks = tmp_path / "globalStorage" / "rooveterinaryinc.roo-cline" / "tasks"
    task = write_roo_task(tasks, "task-1")
    report = await service.import_now([str(tasks)])
    assert report.files_failed == 0, report.errors
    files = sorted(p for p in task.iterdir() if p.is_file())
    for f in files:
        row = await service.db.fetchone("SELECT * FROM sources WHERE path = ?", (str(f),))
        assert row is not None and row["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        doc = orjson.loads(f.read_bytes())
        expected = len(doc) if isinstance(doc, list) else 1
        assert row["lines_read"] == row["rows_stored"] == expected
    out = tmp_path / "export"
    results = await export_session(service.db, "task-1", out)
    assert {Path(r.written_to).name for r in results} == {f.name for f in files}
    for r in results:
        assert Path(r.written_to).read_bytes() == (task / Path(r.written_to).name).read_bytes()
    session = await service.session("task-1")
    assert session.session.agent == "roo-code" and session.session.source == "roo"
    again = await service.import_now([str(tasks)])
    assert again.files_skipped == len(files)


async def test_exporting_a_task_into_a_path_through_a_file_is_refused_clearly(
    service: Service, tmp_path: Path
) -> None:
    """A task is several files, so the export is a folder: a file in the way is named."""
    tasks = tmp_path / "tasks"
    write_roo_task(tasks, "task-3")
    await service.import_now([str(tasks)])
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_bytes(b"mine")
    with pytest.raises(BadInputError, match="a file with that name is in the way"):
        await export_session(service.db, "task-3", in_the_way / "export")
    assert in_the_way.read_bytes() == b"mine"


async def test_task_folder_with_a_missing_file_imports_the_rest_with_a_warning(
    service: Service, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks"
    task = write_roo_task(tasks, "task-2")
    (task / "ui_messages.json").unlink()
    report = await service.import_now([str(tasks)], "roo")
    assert report.files_imported == 2
    assert any("task-2" in e and "ui_messages.json" in e for e in report.errors)
    assert await service.db.scalar("SELECT count(*) FROM sources") == 2


async def test_workspace_layout_import_records_events(service: Service, tmp_path: Path) -> None:
    old = tmp_path / "old" / ".claude"
    (old / "logs").mkdir(parents=True)
    (old / "handoffs").mkdir()
    events = [
        {"ts": "2026-01-01T00:00:00+00:00", "session": "20260101_000000", "agent": "claude-code",
         "type": "PostToolUse", "tool": "Bash", "duration_ms": 125.5, "tokens_in": None,
         "tokens_out": None, "payload": {"tool_input": {"command": "make test"}}},
        {"ts": "2026-01-01T00:00:01+00:00", "session": "20260101_000000", "agent": "claude-code",
         "type": "Stop", "tool": None, "duration_ms": None, "tokens_in": 10, "tokens_out": 20,
         "payload": None},
    ]  # fmt: skip
    log = old / "logs" / "session_20260101_000000.jsonl"
    log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events) + b"not json\n")
    (old / "handoffs" / "session_20260101_000000_handoff.md").write_text("# Done\nall good\n")
    report = await service.import_now([str(old)])
    assert report.files_failed == 0 and report.bad_lines == 1
    rows = await service.db.fetchall("SELECT type, tool, duration_ms, tokens_out FROM events")
    assert [tuple(r) for r in rows] == [
        ("PostToolUse", "Bash", 125.5, None),
        ("Stop", None, None, 20),
    ]
    assert await service.db.scalar("SELECT count(*) FROM messages WHERE type = 'handoff'") == 1
    exported = tmp_path / "log.jsonl"
    await export_session(service.db, "20260101_000000", tmp_path / "exp")
    exported = tmp_path / "exp" / log.name
    assert exported.read_bytes() == log.read_bytes()
