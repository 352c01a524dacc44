"""Secrets in agent data are cut on the way in: raw bytes, search text, documents."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import zstandard

from core.local.export import export_session
from core.service import Service

# Built from pieces so no key-shaped literal sits in the repository.
KEY = "sk-ant-" + "api03-" + "Zq7" * 30


def line(content: str) -> bytes:
    return orjson.dumps({"type": "user", "uuid": "u1", "timestamp": "2026-01-01T00:00:00Z",
                         "message": {"role": "user", "content": content}}) + b"\n"  # fmt: skip


async def test_secret_in_a_transcript_never_reaches_the_db(
    service: Service, tmp_path: Path
) -> None:
    proj = tmp_path / "p" / "-proj"
    proj.mkdir(parents=True)
    f = proj / "s1.jsonl"
    f.write_bytes(line("hello") + line(f"use the key {KEY} to deploy") + line("bye"))
    report = await service.import_now([str(f)])
    assert report.rows_stored == 3
    await service.db.checkpoint()

    con = sqlite3.connect(service.workspace.db_path)
    dctx = zstandard.ZstdDecompressor()
    raws = [dctx.decompress(r[0]) for r in con.execute("SELECT data FROM raw_chunks")]
    texts = [r[0] for r in con.execute("SELECT text FROM messages ORDER BY seq")]
    flags = [r[0] for r in con.execute("SELECT redacted FROM messages ORDER BY seq")]
    con.close()
    assert not any(KEY.encode() in r for r in raws)
    assert KEY not in " ".join(texts) and "[REDACTED" in texts[1]
    assert flags == [0, 1, 0]
    assert KEY.encode() not in service.workspace.db_path.read_bytes()

    out = tmp_path / "exported.jsonl"
    (result,) = await export_session(service.db, "s1", out)
    assert not result.matches_source and result.redacted_lines == 1
    assert out.read_bytes().count(b"\n") == 3 and KEY.encode() not in out.read_bytes()


async def test_secret_in_a_whole_document_is_cut_from_the_stored_copy(
    service: Service, tmp_path: Path
) -> None:
    ws = tmp_path / "old-workspace"
    (ws / "logs").mkdir(parents=True)
    (ws / "handoffs").mkdir()
    (ws / "handoffs" / "session_x1_handoff.md").write_text(f"# Notes\n\nAPI_KEY={KEY}\n")
    await service.import_now([str(ws)], "tierkeeper")
    blob = await service.db.scalar("SELECT data FROM raw_files")
    assert KEY.encode() not in zstandard.ZstdDecompressor().decompress(blob)
    text = await service.db.scalar("SELECT text FROM messages WHERE type = 'handoff'")
    assert KEY not in text and "[REDACTED" in text
