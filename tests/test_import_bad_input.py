"""Bad input: each case is produced for real, loses nothing, and a re-run completes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core.errors import CorruptDatabaseError, NotFoundError, StorageFullError
from core.local.export import export_session
from core.service import Service
from tests.support import REPO


def good(i: int) -> bytes:
    return orjson.dumps({"type": "user", "uuid": f"u{i}", "timestamp": "2026-01-01T00:00:00Z",
                         "message": {"role": "user", "content": f"line {i}"}}) + b"\n"  # fmt: skip


def transcript(tmp_path: Path, body: bytes, name: str = "s1.jsonl") -> Path:
    proj = tmp_path / "projects" / "-p"
    proj.mkdir(parents=True, exist_ok=True)
    f = proj / name
    f.write_bytes(body)
    return f


async def roundtrip(svc: Service, f: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    await export_session(svc.db, f.stem, out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(f.read_bytes()).digest()


async def test_invalid_utf8_line_is_kept_raw_and_flagged(service: Service, tmp_path: Path) -> None:
    f = transcript(tmp_path, good(0) + b'{"type": "user", "x": "\xff\xfe"}\n' + good(2))
    r = await service.import_now([str(f)])
    assert (r.lines_read, r.rows_stored, r.bad_lines) == (3, 3, 1)
    err = await service.db.scalar("SELECT parse_error FROM messages WHERE seq = 1")
    assert "UTF-8" in err
    await roundtrip(service, f, tmp_path)


async def test_empty_file(service: Service, tmp_path: Path) -> None:
    f = transcript(tmp_path, b"")
    r = await service.import_now([str(f)])
    assert r.files_failed == 0 and r.lines_read == 0
    assert await service.db.scalar("SELECT count(*) FROM sources") == 1
    await roundtrip(service, f, tmp_path)


async def test_binary_garbage_named_jsonl(service: Service, tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 40 + b"\x00" * 500
    f = transcript(tmp_path, garbage)
    r = await service.import_now([str(f)], "claude-code")
    assert r.files_failed == 0
    assert r.rows_stored == r.lines_read == r.bad_lines == garbage.count(b"\n") + 1
    await roundtrip(service, f, tmp_path)


async def test_fifty_megabyte_single_line(service: Service, tmp_path: Path) -> None:
    big = orjson.dumps({"type": "assistant", "uuid": "big", "message": {
        "role": "assistant", "content": "word " * (10 * 1024 * 1024)}}) + b"\n"  # fmt: skip
    assert len(big) > 50_000_000
    f = transcript(tmp_path, good(0) + big + good(2))
    r = await service.import_now([str(f)])
    assert (r.lines_read, r.rows_stored, r.bad_lines) == (3, 3, 0)
    text_len = await service.db.scalar("SELECT length(text) FROM messages WHERE uuid = 'big'")
    assert text_len < 2 * 1024 * 1024  # the index is bounded; the raw line is whole
    await roundtrip(service, f, tmp_path)


async def test_missing_source_folder_is_a_clear_error(service: Service, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        await service.start_import([str(tmp_path / "nope")])


def test_db_file_that_is_not_sqlite_is_left_untouched(tmp_path: Path) -> None:
    import asyncio

    ws = tmp_path / "ws"
    (ws / "analytics").mkdir(parents=True)
    junk = b"this is not a database\n" * 100
    (ws / "analytics" / "agent_metrics.db").write_bytes(junk)
    with pytest.raises(CorruptDatabaseError, match="not a usable SQLite database"):
        asyncio.run(Service.start(ws))
    assert (ws / "analytics" / "agent_metrics.db").read_bytes() == junk
    # and the workspace lock was released on the way out
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli.entry", "status", "--workspace", str(ws)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "not a usable SQLite database" in proc.stderr
    assert "Traceback" not in proc.stderr


DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"]  # fmt: skip


@pytest.mark.skipif(
    os.geteuid() != 0 and shutil.which("setpriv") is None, reason="needs setpriv or a non-root user"
)
def test_permission_denied_is_reported_and_the_rest_imported(tmp_path: Path) -> None:
    """The kernel really refuses the read: as root, the import runs without the
    capabilities that let root ignore file modes."""
    proj = tmp_path / "projects" / "-p"
    proj.mkdir(parents=True)
    (proj / "ok.jsonl").write_bytes(good(0) + good(1))
    locked = proj / "locked.jsonl"
    locked.write_bytes(good(0))
    locked.chmod(0o000)
    prefix = DROP_DAC if os.geteuid() == 0 else []
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "core.cli.entry", "import", str(proj),
         "--workspace", str(tmp_path / "ws"), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr  # partial
    report = orjson.loads(proc.stdout)["report"]
    assert report["files_imported"] == 1 and report["files_failed"] == 1
    assert any("locked.jsonl" in e and "permission denied" in e for e in report["errors"])


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_disk_full_during_a_batch_keeps_what_was_stored(tmp_path: Path) -> None:
    lines = b"".join(
        orjson.dumps(
            {
                "type": "user",
                "uuid": f"u{i}",
                "message": {"role": "user", "content": os.urandom(300).hex()},
            }
        )
        + b"\n"
        for i in range(6000)
    )
    f = transcript(tmp_path, lines)
    with small_filesystem(tmp_path / "small", "3m") as small:
        ws = small / "ws"
        async with await Service.start(ws, run_jobs=False) as svc:
            with pytest.raises(StorageFullError, match="full"):
                await svc.import_now([str(f)])
            kept = await svc.db.scalar("SELECT count(*) FROM messages")
            lines_read = await svc.db.scalar("SELECT lines_read FROM sources")
            assert kept == lines_read  # whole batches only
        # make room: move the workspace to a big disk and finish the import there
        big = tmp_path / "ws-big"
        shutil.copytree(ws, big)
    async with await Service.start(big, run_jobs=False) as svc:
        assert await svc.db.scalar("SELECT count(*) FROM messages") == kept
        r = await svc.import_now([str(f)])
        assert r.lines_read == 6000 - kept
        assert await svc.db.scalar("SELECT count(*) FROM messages") == 6000
        assert await svc.db.scalar("PRAGMA integrity_check") == "ok"
