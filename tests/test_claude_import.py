"""Importing the real Claude Code transcripts: counts, checksums, usage, export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from core.local.export import export_session
from core.local.importers.claude_code import SUBAGENT_SEP
from core.service import Service
from tests.support import CLAUDE_FIXTURES, FIXTURES, fixture_stats

STATS = fixture_stats()
TYPE_COLUMNS = ("user", "assistant", "system", "summary")


def _rel(path: str) -> str:
    return Path(path).resolve().relative_to(FIXTURES.resolve()).as_posix()


async def test_every_fixture_file_matches_stats_and_exports_byte_for_byte(
    service: Service, tmp_path: Path
) -> None:
    report = await service.import_now([str(CLAUDE_FIXTURES)])
    assert report.files_failed == 0, report.errors
    rows = await service.db.fetchall("SELECT * FROM sources WHERE kind = 'lines' ORDER BY path")
    by_rel = {_rel(r["path"]): r for r in rows}
    assert set(by_rel) == set(STATS)
    for rel, stat in STATS.items():
        src = by_rel[rel]
        assert src["size"] == int(stat["bytes"]), rel
        assert src["sha256"] == stat["sha256"], rel
        assert src["lines_read"] == int(stat["lines"]), rel
        assert src["rows_stored"] == int(stat["lines"]), rel
        assert src["bad_lines"] == int(stat["unparsable"]), rel
        counts = {
            t: await service.db.scalar(
                "SELECT count(*) FROM messages WHERE source_id = ? AND type = ?", (src["id"], t)
            )
            for t in TYPE_COLUMNS
        }
        for t in TYPE_COLUMNS:
            assert counts[t] == int(stat[t]), (rel, t)
        other = await service.db.scalar(
            "SELECT count(*) FROM messages WHERE source_id = ? AND parse_error IS NULL AND"
            " (type IS NULL OR type NOT IN ('user', 'assistant', 'system', 'summary'))",
            (src["id"],),
        )
        assert other == int(stat["other"]), rel

    # export --original reproduces every transcript byte for byte
    for rel, stat in STATS.items():
        src = by_rel[rel]
        out = tmp_path / "export" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        results = await export_session(service.db, src["session_id"], out.parent / "x",
                                       file=Path(src["path"]).name)  # fmt: skip
        assert len(results) == 1
        data = Path(results[0].written_to).read_bytes()
        assert hashlib.sha256(data).hexdigest() == stat["sha256"], rel
        assert results[0].matches_source


def _independent_usage(files: list[Path]) -> tuple[int, list[int]]:
    """Dedup per (message.id, requestId) across the given files, first occurrence wins."""
    seen: dict[tuple[object, object], list[int]] = {}
    for f in files:
        for line in f.read_bytes().split(b"\n"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict) or obj.get("type") != "assistant":
                continue
            msg = obj.get("message")
            if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
                continue
            key = (msg.get("id"), obj.get("requestId"))
            if key in seen:
                continue
            u = msg["usage"]
            seen[key] = [
                u.get("input_tokens") or 0,
                u.get("output_tokens") or 0,
                u.get("cache_creation_input_tokens") or 0,
                u.get("cache_read_input_tokens") or 0,
            ]
    totals = [sum(v[i] for v in seen.values()) for i in range(4)]
    return len(seen), totals


async def test_usage_is_deduplicated_across_all_files(service: Service) -> None:
    await service.import_now([str(CLAUDE_FIXTURES)])
    files = sorted(CLAUDE_FIXTURES.rglob("*.jsonl"))
    pairs, totals = _independent_usage(files)
    row = await service.db.fetchone(
        "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_tokens),"
        " sum(cache_read_tokens) FROM usage"
    )
    assert row is not None
    assert row[0] == pairs
    assert list(row[1:]) == totals


@pytest.mark.parametrize("rel", sorted(r for r, s in STATS.items() if int(s["usage_pairs"])))
async def test_usage_per_file_matches_stats(tmp_path: Path, rel: str) -> None:
    stat = STATS[rel]
    async with await Service.start(tmp_path / "ws", run_jobs=False) as svc:
        await svc.import_now([str(FIXTURES / rel)], "claude-code")
        row = await svc.db.fetchone(
            "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_tokens),"
            " sum(cache_read_tokens) FROM usage"
        )
    assert row is not None
    assert row[0] == int(stat["usage_pairs"])
    assert list(row[1:]) == [
        int(stat["input_tokens"]),
        int(stat["output_tokens"]),
        int(stat["cache_write_tokens"]),
        int(stat["cache_read_tokens"]),
    ]


async def test_subagents_are_sessions_linked_to_their_parent(service: Service) -> None:
    await service.import_now([str(CLAUDE_FIXTURES)])
    nested = await service.db.fetchall(
        "SELECT id, parent_id, is_subagent FROM sessions WHERE id LIKE ?",
        (f"%{SUBAGENT_SEP}agent-%",),
    )
    assert nested, "the <session>/subagents/ layout should yield sessions"
    for row in nested:
        assert row["is_subagent"] == 1
        assert row["id"].startswith(row["parent_id"] + SUBAGENT_SEP)
    top_agents = await service.db.fetchall(
        "SELECT id, parent_id FROM sessions WHERE id LIKE 'agent-%'"
    )
    assert top_agents
    assert all(r["parent_id"] for r in top_agents), "agent-*.jsonl names its parent session"


async def test_reimport_of_unchanged_files_writes_nothing(service: Service) -> None:
    first = await service.import_now([str(CLAUDE_FIXTURES)])
    total = await service.db.scalar("SELECT count(*) FROM messages")
    changes_before = await service.db.scalar("SELECT total_changes()")
    second = await service.import_now([str(CLAUDE_FIXTURES)])
    assert second.files_skipped == first.files_seen
    assert second.lines_read == 0
    assert await service.db.scalar("SELECT count(*) FROM messages") == total
    assert await service.db.scalar("SELECT total_changes()") == changes_before


@pytest.mark.parametrize("with_history", [True, False])
async def test_pointed_at_the_claude_folder_it_reads_only_the_projects(
    service: Service, tmp_path: Path, with_history: bool
) -> None:
    """`tierkeeper import ~/.claude` is what a user types. Its transcripts are in
    `projects/<project>/`, a level deeper than detection looked (so it was refused),
    and beside them `history.jsonl`, the prompt history, was taken for a session."""
    claude = tmp_path / ".claude"
    project = claude / "projects" / "-home-me-app"
    project.mkdir(parents=True)
    source = CLAUDE_FIXTURES / "claude-code-log-cases" / "edit_tool.jsonl"
    (project / source.name).write_bytes(source.read_bytes())
    (claude / "todos").mkdir()
    (claude / "todos" / "x-agent-x.json").write_text("[]")
    if with_history:
        line = {"display": "fix the tests", "timestamp": 1764000000000, "project": "/home/me"}
        (claude / "history.jsonl").write_text(json.dumps(line) + "\n")

    report = await service.import_now([str(claude)])

    assert report.files_failed == 0, report.errors
    sessions = await service.list_sessions()
    assert [(s.id, s.project) for s in sessions] == [("edit_tool", "-home-me-app")]
