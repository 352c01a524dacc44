"""Archiving a closed phase from its Tier 2 backups into one tarball on the archive target.

Both tiers are real folder stores here (the S3 tests run the same job against a
real S3 server); what is checked is the promise: only verified Tier 2 bytes go
into the archive, every member is checked, and a damaged Tier 2 copy stops the
archive before anything is uploaded.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from core.errors import BadInputError
from core.local.snapshots import SnapshotStore
from core.packing import IntegrityError
from core.packing.manifest import Manifest
from core.remote.folder import FolderStore
from core.service import Service
from core.tier3.archive import archive_phase, manifest_key, tarball_key
from tests.support import REPO


def tk(ws: Path, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli.entry", *args, "--json", "--workspace", str(ws)],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    return orjson.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def closed_phase(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("archive")
    ws, tier2 = root / "ws", root / "drive"
    tk(ws, "target", "add", "folder", "t2", str(tier2))
    tk(ws, "phase", "new", "p1")
    ids = []
    for n in range(2):
        sid = tk(ws, "session", "start")["session"]
        snaps = SnapshotStore(ws / "state")
        for step in range(3):
            snaps.save(sid, {"n": n, "step": step, "files": {"a.py": "x = 1\n" * (200 + step)}})
        tk(ws, "session", "end", sid, "--summary", f"session {n}")
        ids.append(sid)
    tk(ws, "phase", "close", "p1")
    return ws, tier2, ids


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


async def test_a_closed_phase_becomes_one_verified_tarball(
    closed_phase: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    ws, tier2, ids = closed_phase
    glacier = tmp_path / "glacier"
    glacier.mkdir()
    before = _files(tier2)
    async with await Service.start(ws) as svc:
        result = await archive_phase(
            svc.db, "p1", source=FolderStore(tier2, name="t2"), source_name="t2",
            archive=FolderStore(glacier, name="deep"), archive_name="deep",
        )  # fmt: skip
        row = await svc.db.fetchone("SELECT verify_status, sessions FROM archives WHERE id = ?",
                                    (result.archive_id,))  # fmt: skip
    assert row is not None and tuple(row) == ("ok", 2)
    assert _files(tier2) == before  # read in place, and every file left as it was
    manifest = Manifest.parse((glacier / manifest_key("p1")).read_bytes())
    (entry,) = manifest.files
    tarball = glacier / tarball_key("p1")
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == entry.stored_sha256

    with (
        open(tarball, "rb") as fh,
        zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(fh) as reader,
        tarfile.open(fileobj=reader, mode="r|") as tar,
    ):
        contents = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    for sid in ids:
        base = f"p1/sessions/session_{sid}"
        log = (ws / "logs" / f"session_{sid}.jsonl").read_bytes()
        assert contents[f"{base}/session_{sid}.jsonl"] == log
        snaps = [n for n in contents if n.startswith(f"{base}/snapshots/")]
        assert len(snaps) == 3
    listed = {m.name: m.sha256 for m in entry.members}
    assert listed == {n: hashlib.sha256(b).hexdigest() for n, b in contents.items()}


@pytest.mark.parametrize("damage", ["bit rot", "cut short"])
async def test_a_damaged_tier2_copy_stops_the_archive_before_any_upload(
    closed_phase: tuple[Path, Path, list[str]], tmp_path: Path, damage: str
) -> None:
    ws, tier2, ids = closed_phase
    copy = tmp_path / "t2copy"
    subprocess.run(["cp", "-a", str(tier2), str(copy)], check=True)
    victim = next((copy / "Tierkeeper").rglob(f"session_{ids[1]}.jsonl.zst"))
    data = bytearray(victim.read_bytes())
    if damage == "bit rot":
        data[-20] ^= 0x55  # inside the last frame: bit rot the store's stat cannot see
    else:
        del data[-20:]  # the file read in place is shorter than its manifest says
    victim.write_bytes(bytes(data))
    glacier = tmp_path / "glacier"
    glacier.mkdir()
    async with await Service.start(ws) as svc:
        with pytest.raises(IntegrityError):
            await archive_phase(
                svc.db, "p1", source=FolderStore(copy, name="t2"), source_name="t2",
                archive=FolderStore(glacier, name="cold"), archive_name="cold",
            )  # fmt: skip
        assert await svc.db.scalar("SELECT count(*) FROM archives WHERE target = 'cold'") == 0
    assert [p for p in glacier.rglob("*") if p.is_file()] == []


async def test_sessions_without_a_verified_backup_there_are_named(
    closed_phase: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    ws, tier2, ids = closed_phase
    async with await Service.start(ws) as svc:
        with pytest.raises(BadInputError, match="no verified backup on t9") as caught:
            await archive_phase(
                svc.db, "p1", source=FolderStore(tier2, name="t9"), source_name="t9",
                archive=FolderStore(tmp_path, name="deep"), archive_name="deep",
            )  # fmt: skip
    assert "2 session(s)" in str(caught.value)
    assert all(sid in str(caught.value) for sid in ids)
    assert caught.value.hint is not None and "backup --target t9" in caught.value.hint


async def test_an_open_phase_is_not_archived(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    tk(ws, "phase", "new", "live")
    async with await Service.start(ws) as svc:
        with pytest.raises(BadInputError, match="still open"):
            await archive_phase(
                svc.db, "live", source=FolderStore(tmp_path, name="a"), source_name="a",
                archive=FolderStore(tmp_path, name="b"), archive_name="b",
            )  # fmt: skip


def test_archive_from_the_cli_then_older_phases_leave_tier2(tmp_path: Path) -> None:
    ws, tier2, cold = tmp_path / "ws", tmp_path / "t2", tmp_path / "cold"
    tk(ws, "target", "add", "folder", "t2", str(tier2))
    tk(ws, "target", "add", "folder", "cold", str(cold))
    for phase in ("p1", "p2", "p3"):
        tk(ws, "phase", "new", phase)
        sid = tk(ws, "session", "start")["session"]
        tk(ws, "session", "end", sid, "--summary", phase)
        tk(ws, "phase", "close", phase)
    out = tk(ws, "archive", "p1", "--target", "cold", "--from", "t2")
    assert out["job"]["state"] == "done"
    assert out["result"]["tier2_phases_removed"] == ["p1"]  # p2, p3: the two kept
    assert not list((tier2 / "Tierkeeper" / "p1" / "sessions").rglob("*.zst"))
    # the review `phase close` uploaded stays: Tier 2 keeps every phase's insights
    assert (tier2 / "Tierkeeper" / "p1" / "review" / "phase_insights.md").is_file()
    assert (tier2 / "Tierkeeper" / "p1" / "review" / "phase_analytics.db.zst").is_file()
    assert list((tier2 / "Tierkeeper" / "p2").rglob("*.zst"))
    assert (cold / "p1.tar.zst").exists() and (cold / "metadata" / "p1_manifest.json").exists()
    out = tk(ws, "archive", "p2", "--target", "cold", "--from", "t2")
    assert out["result"]["tier2_phases_removed"] == []  # p2 is among the newest two: kept
    sid_p1 = tk(ws, "sessions", "--phase", "p1")[0]["id"]
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli.entry", "restore", sid_p1, "--to", str(tmp_path / "r"),
         "--target", "t2", "--workspace", str(ws)],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and b"archived to cold" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_sessions_come_back_from_the_archive_checked_and_without_duplicate_rows(
    closed_phase: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    ws, _, ids = closed_phase
    cold = tmp_path / "cold"
    tk(ws, "target", "add", "folder", "cold2", str(cold))
    tk(ws, "archive", "p1", "--target", "cold2", "--from", "t2")
    before = sqlite_count(ws)
    out = tk(ws, "archive-restore", "p1", "--session", ids[0], "--target", "cold2",
             "--to", str(tmp_path / "back"))  # fmt: skip
    assert out["job"]["state"] == "done", out
    base = tmp_path / "back" / "p1" / "sessions" / f"session_{ids[0]}"
    log = ws / "logs" / f"session_{ids[0]}.jsonl"
    if log.exists():
        assert (base / log.name).read_bytes() == log.read_bytes()
    assert len(list((base / "snapshots").glob("*.json"))) == 3
    assert not (tmp_path / "back" / "p1" / "sessions" / f"session_{ids[1]}").exists()
    assert sqlite_count(ws) == before  # the DB held them already: nothing doubled


def sqlite_count(ws: Path) -> int:
    import sqlite3

    con = sqlite3.connect(ws / "analytics" / "agent_metrics.db")
    try:
        return int(con.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        con.close()
