"""A folder target's one-thread backup path (core/tier2/backup_direct.py) and the batch put
under it: the same backups as the async path, every file whole before its manifest, and
nothing half-done left by a cancel."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import threading
from pathlib import Path
from typing import cast

import orjson
import pytest

from core.local.db.database import Database
from core.models import JobState
from core.packing.manifest import Manifest
from core.remote.base import (
    PermanentError,
    PutSource,
    Store,
)
from core.remote.folder import PART_PREFIX, SCRATCH_DIR, FolderStore
from core.service import Service
from core.tier2.backup import backup_session
from core.tier2.backup_rows import BackupRows
from tests.support import CLAUDE_FIXTURES

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


def made_in(folder: Path, name: str, data: bytes) -> PutSource:
    path = folder / name
    path.write_bytes(data)
    return PutSource(
        path, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


def leftovers(root: Path) -> list[Path]:
    """Partial files anywhere in the backup (a scratch folder is not the backup)."""
    return [p for p in root.rglob(f"{PART_PREFIX}*") if SCRATCH_DIR not in p.parts]


async def test_a_batch_put_moves_scratch_files_into_place_with_their_digests(
    tmp_path: Path,
) -> None:
    root = tmp_path / "backup"
    root.mkdir()
    store = FolderStore(root)
    scratch = store.kept_scratch()
    assert store.kept_scratch() == scratch  # the same folder for this thread, every time
    a = made_in(scratch, "a.zst", b"packed transcript" * 500)
    m = made_in(scratch, "manifest.json", b'{"files": []}')

    infos = store.put_many([("p/s1/a.zst", a), ("p/s1/manifest.json", m)], threading.Event())

    assert [i.size for i in infos] == [a.size, m.size]
    assert list(scratch.iterdir()) == []  # moved, not copied: nothing to clean up
    fresh = FolderStore(root)  # what a later run reads from the disk
    for key, src in (("p/s1/a.zst", a), ("p/s1/manifest.json", m)):
        st = await fresh.stat(key)
        assert (st.size, st.sha256, st.md5) == (src.size, src.sha256, src.md5)
    assert store.read_small("p/s1/manifest.json", threading.Event()) == b'{"files": []}'
    await store.close()
    assert not scratch.exists()  # the kept folder goes with the store


async def test_a_batch_with_a_bad_file_puts_none_of_it(tmp_path: Path) -> None:
    root = tmp_path / "backup"
    root.mkdir()
    store = FolderStore(root)
    scratch = store.kept_scratch()
    good = made_in(scratch, "a.zst", b"fine bytes" * 100)
    bad = made_in(scratch, "b.zst", b"short")
    bad = PutSource(bad.path, 50, bad.sha256, bad.md5)  # claims more than is there

    with pytest.raises(PermanentError, match="changed"):
        store.put_many([("p/s1/a.zst", good), ("p/s1/b.zst", bad)], threading.Event())

    assert not (root / "p/s1/a.zst").exists() and not (root / "p/s1/b.zst").exists()
    assert leftovers(root) == []
    with pytest.raises(PermanentError, match="twice"):
        store.put_many([("p/x", good), ("p/x", good)], threading.Event())
    await store.close()


class Unfamiliar:
    """A wrapper the one-thread path does not know: the session takes the async path.
    It passes on the Store protocol's calls and nothing else (no batch capability)."""

    _STORE_CALLS = frozenset({"put", "get", "stat", "list", "delete", "close"})

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> object:
        if name in self._STORE_CALLS:
            return getattr(self.inner, name)
        raise AttributeError(name)


async def test_both_paths_store_the_same_backup(tmp_path: Path) -> None:
    async with await Service.start(tmp_path / "ws", run_jobs=False, schedule=False) as svc:
        await svc.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        sessions = sorted(s.id for s in await svc.list_sessions())
        stored: dict[str, dict[str, bytes]] = {}
        for name, wrap in (("direct", False), ("async", True)):
            folder = FolderStore(tmp_path / name)
            folder.root.mkdir()
            store = cast(Store, Unfamiliar(folder)) if wrap else folder
            moved: list[int] = []
            for sid in sessions:
                result = await backup_session(svc.db, store, name, sid, progress=moved.append)
                assert result.backup_id > 0 and result.files >= 1
            await store.close()
            assert sum(moved) > 0  # the job's progress hears of the bytes either way
            stored[name] = {
                str(p.relative_to(folder.root)): p.read_bytes()
                for p in folder.root.rglob("*")
                if p.is_file() and SCRATCH_DIR not in p.parts
            }
            assert leftovers(folder.root) == []
        rows = await svc.db.fetchall("SELECT target, count(*) FROM backups GROUP BY target")
    assert {r[0]: r[1] for r in rows} == {"direct": len(sessions), "async": len(sessions)}
    assert stored["direct"].keys() == stored["async"].keys()
    for key, data in stored["direct"].items():
        if key.endswith("manifest.json"):  # the same files, digests and checks; not the time
            a, b = Manifest.parse(data), Manifest.parse(stored["async"][key])
            assert a.files == b.files and a.session_id == b.session_id
        else:
            assert data == stored["async"][key], key


async def test_a_cancelled_backup_leaves_only_whole_sessions_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    project = tmp_path / "projects" / "demo"
    project.mkdir(parents=True)
    for n in range(60):
        shutil.copyfile(SOURCE, project / f"session-{n:03d}.jsonl")
    disk = tmp_path / "disk"
    svc = await Service.start(tmp_path / "ws", schedule=False)
    try:
        await svc.import_now([str(project)])
        await svc.add_folder_target("usb", str(disk))
        job = await svc.start_backup([], "usb")

        async def a_few_recorded() -> None:
            while (await svc.db.scalar("SELECT count(*) FROM backups")) < 3:
                await asyncio.sleep(0.002)

        with contextlib.suppress(TimeoutError):  # a fast disk may finish first: fine
            await asyncio.wait_for(a_few_recorded(), 20)
        await svc.jobs.cancel(job.id)
        ended = await svc.jobs.wait(job.id)
        assert ended.state in (JobState.CANCELLED, JobState.DONE)
        for manifest in disk.rglob("manifest.json"):  # every manifest: its files all there
            doc = orjson.loads(manifest.read_bytes())
            for entry in doc["files"]:
                data = (manifest.parent / entry["stored_name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["stored_sha256"]
        recorded = await svc.db.fetchall("SELECT prefix FROM backups WHERE target = 'usb'")
        for row in recorded:  # a row only for a backup whose manifest is on the disk
            assert (disk / str(row[0]) / "manifest.json").exists()

        again = await svc.jobs.wait((await svc.start_backup([], "usb")).id)
        assert again.state == JobState.DONE and not (again.result or {}).get("failed")
        results = await svc.verify("usb", deep=True)
        assert len(results) >= 60 and all(r.ok for r in results)
    finally:
        await svc.stop()
    assert leftovers(disk) == []


async def test_rows_handed_over_together_are_all_recorded_or_all_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    try:
        rows = BackupRows(db)

        def row(sid: str | None) -> tuple[object, ...]:
            return (sid, "usb", None, f"p/{sid}", "{}", 1, 1, "t", "t", "ok")

        ids = await asyncio.gather(*(rows.add(row(f"s{n}")) for n in range(5)))
        assert len(set(ids)) == 5
        recorded = await db.fetchall("SELECT id, session_id FROM backups ORDER BY id")
        assert [(r[0], r[1]) for r in recorded] == [(i, f"s{n}") for n, i in enumerate(ids)]
        # a row the DB refuses: the rows written with it are refused too, and each hears
        waiting = [rows.add(row("s5")), rows.add(row(None))]
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, Exception) for o in outcomes)
        assert await db.scalar("SELECT count(*) FROM backups") == 5
    finally:
        await db.close()
