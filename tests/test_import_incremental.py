"""Incremental import: appends, rewrites, partial lines, interruptions."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from core.local.export import export_session
from core.service import Service
from tests.support import REPO, duplicate_rows


def line(i: int, text: str = "hello") -> bytes:
    return (
        orjson.dumps(
            {
                "type": "user" if i % 2 == 0 else "assistant",
                "uuid": f"u{i}",
                "sessionId": "s1",
                "timestamp": f"2026-01-01T00:00:{i % 60:02d}Z",
                "message": {
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"{text} number {i}",
                },
            }
        )
        + b"\n"
    )


def make_project(root: Path, n: int) -> Path:
    proj = root / "projects" / "-home-dev-app"
    proj.mkdir(parents=True)
    (proj / "s1.jsonl").write_bytes(b"".join(line(i) for i in range(n)))
    return proj / "s1.jsonl"


async def counts(svc: Service) -> tuple[int, int, int]:
    row = await svc.db.fetchone(
        "SELECT lines_read, rows_stored, (SELECT count(*) FROM messages) FROM sources"
    )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def exported_sha(svc: Service, tmp_path: Path) -> str:
    out = tmp_path / "out.jsonl"
    await export_session(svc.db, "s1", out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


async def test_append_reads_only_the_new_lines(service: Service, tmp_path: Path) -> None:
    f = make_project(tmp_path, 10)
    r1 = await service.import_now([str(f)])
    assert r1.lines_read == 10
    with open(f, "ab") as fh:
        fh.write(line(10) + line(11, "appended words"))
    r2 = await service.import_now([str(f)])
    assert r2.lines_read == 2
    assert r2.bytes_read == len(line(10) + line(11, "appended words"))
    assert await counts(service) == (12, 12, 12)
    assert await exported_sha(service, tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()


async def test_rewritten_file_is_detected_and_reimported(service: Service, tmp_path: Path) -> None:
    f = make_project(tmp_path, 10)
    await service.import_now([str(f)])
    # same size, different bytes at the start: not an append
    data = bytearray(f.read_bytes())
    data[data.index(b"hello")] = ord("j")
    f.write_bytes(bytes(data) + line(10))
    r = await service.import_now([str(f)])
    assert r.files_rewritten == 1
    assert await counts(service) == (11, 11, 11)
    hits = await service.db.scalar(
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'jello'"
    )
    assert hits == 1
    assert await exported_sha(service, tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()


async def test_truncated_last_line_is_kept_then_completed(service: Service, tmp_path: Path) -> None:
    f = make_project(tmp_path, 3)
    full = line(3, "finished later")
    with open(f, "ab") as fh:
        fh.write(full[:20])  # a writer crashed, or is mid-write
    r1 = await service.import_now([str(f)])
    assert r1.lines_read == 4 and r1.bad_lines == 1
    bad = await service.db.scalar("SELECT parse_error FROM messages WHERE seq = 3")
    assert "incomplete last line" in bad
    assert await exported_sha(service, tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()
    with open(f, "ab") as fh:
        fh.write(full[20:])
    r2 = await service.import_now([str(f)])
    assert r2.bad_lines == 0
    assert await counts(service) == (4, 4, 4)
    assert (
        await service.db.scalar("SELECT count(*) FROM messages WHERE parse_error IS NOT NULL") == 0
    )
    assert await exported_sha(service, tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()


async def test_shrunk_file_counts_as_rewrite(service: Service, tmp_path: Path) -> None:
    f = make_project(tmp_path, 10)
    await service.import_now([str(f)])
    f.write_bytes(b"".join(line(i) for i in range(4)))
    r = await service.import_now([str(f)])
    assert r.files_rewritten == 1
    assert await counts(service) == (4, 4, 4)


async def test_file_growing_during_import_is_completed_next_run(
    service: Service, tmp_path: Path
) -> None:
    f = make_project(tmp_path, 5000)
    from core.local.importers import default_formats
    from core.local.importers.engine import ImportEngine

    grew = False

    def grow(done: int, total: int) -> None:
        nonlocal grew
        if not grew:
            with open(f, "ab") as fh:
                fh.write(line(5000) + line(5001))
            grew = True

    engine = ImportEngine(service.db, default_formats(), batch_lines=500, on_progress=grow)
    r1 = await engine.run([str(f)])
    assert grew and r1.lines_read == 5000  # what existed when the file was opened
    r2 = await service.import_now([str(f)])
    assert r2.lines_read == 2
    assert await counts(service) == (5002, 5002, 5002)


CRASHER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from core.service import Service
    from core.local.importers import default_formats
    from core.local.importers.engine import ImportEngine

    async def main():
        svc = await Service.start(sys.argv[1], run_jobs=False)
        batches = [0]
        def progress(done, total):
            batches[0] += 1
            if batches[0] == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        engine = ImportEngine(svc.db, default_formats(), batch_lines=300, on_progress=progress)
        await engine.run([sys.argv[2]])

    asyncio.run(main())
    """
)


async def test_kill_9_mid_import_then_rerun_is_complete_without_duplicates(
    tmp_path: Path,
) -> None:
    f = make_project(tmp_path, 3000)
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(ws), str(f)],
        cwd=REPO, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    async with await Service.start(ws, run_jobs=False) as svc:
        partial = await svc.db.scalar("SELECT count(*) FROM messages")
        assert 0 < partial < 3000
        lines_read = await svc.db.scalar("SELECT lines_read FROM sources")
        assert lines_read == partial  # the batch and the read position committed together
        r = await svc.import_now([str(f)])
        assert r.lines_read == 3000 - partial
        assert await counts(svc) == (3000, 3000, 3000)
        assert await duplicate_rows(svc.db) == 0
        assert await exported_sha(svc, tmp_path) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert not os.path.exists(ws / ".lock") or (ws / ".lock").read_text() == ""


async def test_a_restored_copy_of_an_imported_file_adds_no_rows(tmp_path: Path) -> None:
    """A transcript brought back from a backup is the same conversation, not a second one."""
    from core.local.importers import default_formats
    from core.local.importers.engine import ImportEngine

    src = make_project(tmp_path / "a", 30)
    copy_dir = tmp_path / "restored" / src.parent.name
    copy_dir.mkdir(parents=True)
    copy = copy_dir / src.name
    copy.write_bytes(src.read_bytes())
    async with await Service.start(tmp_path / "ws") as svc:
        first = await svc.import_now([str(src)])
        restoring = ImportEngine(svc.db, default_formats(), skip_known_content=True)
        again = await restoring.run([str(copy)])
        assert first.rows_stored == 30 and again.rows_stored == 0 and again.files_skipped == 1
        assert await svc.db.scalar("SELECT count(*) FROM messages") == 30
        assert await duplicate_rows(svc.db) == 0
        with open(copy, "ab") as fh:  # different bytes: a different file, imported
            fh.write(line(99))
        grown = await restoring.run([str(copy)])
        assert grown.files_imported == 1
