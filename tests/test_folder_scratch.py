"""FolderStore's fast path for backups: files made on the target's own disk are linked
into place, digests live on the file (xattr) or, where there are none, in sidecars."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
from pathlib import Path

import pytest

from core.models import JobState
from core.remote.base import PermanentError, PutSource
from core.remote.folder import DIGESTS_DIR, SCRATCH_DIR, SCRATCH_MAX_AGE, FolderStore
from core.service import Service
from tests.support import CLAUDE_FIXTURES


def source_in(folder: Path, name: str, data: bytes) -> PutSource:
    path = folder / name
    path.write_bytes(data)
    return PutSource(
        path, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "backup"
    r.mkdir()
    return r


async def test_a_file_made_in_scratch_is_linked_not_copied(root: Path) -> None:
    store = FolderStore(root)
    scratch = store.scratch()
    data = b"packed session bytes" * 1000
    src = source_in(scratch, "a.zst", data)
    moved: list[int] = []

    info = await store.put("p/sessions/s1/a.zst", src, moved.append)

    stored = root / "p/sessions/s1/a.zst"
    assert os.path.samefile(stored, src.path)  # the very file, no second copy
    assert sum(moved) == len(data) and info.size == len(data)
    (src.path).unlink()  # the caller clears its scratch; the object stays whole
    assert stored.read_bytes() == data
    st = await FolderStore(root).stat("p/sessions/s1/a.zst")  # a fresh store: from disk
    assert (st.sha256, st.md5) == (src.sha256, src.md5)
    assert [i.key async for i in store.list()] == ["p/sessions/s1/a.zst"]  # scratch unlisted


async def test_a_scratch_file_cut_short_is_copied_and_refused(root: Path) -> None:
    store = FolderStore(root)
    src = source_in(store.scratch(), "a.zst", b"0123456789")
    src = PutSource(src.path, 20, src.sha256, src.md5)  # the caller claims more than is there
    with pytest.raises(PermanentError, match="changed"):
        await store.put("k", src)
    assert not (root / "k").exists()


def test_scratch_left_by_a_crash_is_swept_a_day_later(root: Path) -> None:
    old = FolderStore(root).scratch()
    (old / "half.zst").write_bytes(b"x")
    recent = FolderStore(root).scratch()
    stale = time.time() - SCRATCH_MAX_AGE - 60
    os.utime(old, (stale, stale))

    FolderStore(root).scratch()

    assert not old.exists() and recent.exists()
    assert old.parent == root / SCRATCH_DIR


async def test_without_xattrs_digests_go_to_sidecars_and_both_kinds_are_read(
    root: Path, tmp_path: Path
) -> None:
    fat_like = FolderStore(root, xattrs=False)
    src = source_in(tmp_path, "src", b"written where there are no xattrs")
    await fat_like.put("p/old.zst", src)
    assert (root / DIGESTS_DIR / "p/old.zst").exists()

    store = FolderStore(root)  # a newer store over a backup made the old way
    assert (await store.stat("p/old.zst")).sha256 == src.sha256
    src2 = source_in(tmp_path, "src2", b"a replacement")
    await store.put("p/old.zst", src2)
    assert not (root / DIGESTS_DIR / "p/old.zst").exists()  # no stale digest left behind
    assert (await store.stat("p/old.zst")).md5 == src2.md5
    buf = io.BytesIO()
    await store.get("p/old.zst", buf)
    assert buf.getvalue() == b"a replacement"


async def test_a_backup_leaves_no_scratch_and_no_cached_manifest_and_restores(
    service: Service, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    await service.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
    await service.add_folder_target("usb", str(disk))
    done = await service.jobs.wait((await service.start_backup([], "usb")).id)
    assert done.state == JobState.DONE and not (done.result or {}).get("failed"), done

    assert not any((disk / SCRATCH_DIR).iterdir())
    assert not [p for p in disk.rglob(".tk-part-*") if p != disk / SCRATCH_DIR]
    cache = service.objects
    assert cache is None or (
        len(cache.memory) == 0 and (cache.disk is None or cache.disk.entries == 0)
    )
    sessions = [s.id for s in await service.list_sessions()]
    for sid in sessions:
        for path in await service.restore(sid, tmp_path / "back" / sid):
            assert path.stat().st_size >= 0
    assert len(sessions) > 1


async def test_a_backup_disk_that_fills_up_while_packing_says_so(
    service: Service, tmp_path: Path
) -> None:
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        await service.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        await service.add_folder_target("usb", str(disk))
        done = await service.jobs.wait((await service.start_backup([], "usb")).id)
        assert done.state == JobState.FAILED
        assert "disk is full" in (done.error or ""), done.error
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
