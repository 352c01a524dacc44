"""FolderStore against real files, a real full disk (tmpfs) and a real read-only mount."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.remote.base import (
    ObjectNotFound,
    PermanentError,
    PutSource,
    Store,
    TransientError,
)
from core.remote.folder import BLOCK, DIGESTS_DIR, PART_PREFIX, FolderStore, partial_name


def make_source(path: Path, data: bytes) -> PutSource:
    path.write_bytes(data)
    return PutSource(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
    )


def payload(size: int, seed: int = 1) -> bytes:
    """Incompressible-looking, deterministic bytes."""
    out = bytearray()
    block = seed.to_bytes(4, "big")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


async def get_bytes(store: Store, key: str, **kw: int) -> bytes:
    buf = io.BytesIO()
    n = await store.get(key, buf, **kw)  # type: ignore[arg-type]
    assert n == len(buf.getvalue())
    return buf.getvalue()


async def keys(store: Store, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "backup"
    r.mkdir()
    return r


@pytest.fixture
def store(root: Path) -> FolderStore:
    return FolderStore(root, name="usb")


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(f"{PART_PREFIX}*"))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem, so 'disk full' and 'read-only' come from the kernel."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_round_trip_records_digests(store: FolderStore, root: Path, tmp_path: Path) -> None:
    data = payload(3 * BLOCK + 123)
    src = make_source(tmp_path / "src.bin", data)
    moved: list[int] = []

    info = await store.put("p1/sessions/s1/transcript.jsonl.zst", src, moved.append)

    assert info.size == len(data)
    assert (info.sha256, info.md5) == (src.sha256, src.md5)
    assert sum(moved) == len(data)
    assert (root / "p1/sessions/s1/transcript.jsonl.zst").read_bytes() == data
    assert await get_bytes(store, "p1/sessions/s1/transcript.jsonl.zst") == data
    st = await store.stat("p1/sessions/s1/transcript.jsonl.zst")
    assert (st.size, st.sha256, st.md5) == (len(data), src.sha256, src.md5)
    assert st.modified is not None
    assert leftovers(root) == []


async def test_overwrite_replaces_bytes_and_digests(store: FolderStore, tmp_path: Path) -> None:
    await store.put("k", make_source(tmp_path / "a", b"first version"))
    second = make_source(tmp_path / "b", b"the second, longer version")
    await store.put("k", second)
    assert await get_bytes(store, "k") == b"the second, longer version"
    assert (await store.stat("k")).sha256 == second.sha256


async def test_ranged_get(store: FolderStore, tmp_path: Path) -> None:
    data = payload(2 * BLOCK + 10)
    await store.put("big", make_source(tmp_path / "src", data))
    moved: list[int] = []
    buf = io.BytesIO()
    n = await store.get("big", buf, offset=BLOCK - 5, length=BLOCK + 7, progress=moved.append)
    assert n == BLOCK + 7 == sum(moved)
    assert buf.getvalue() == data[BLOCK - 5 : 2 * BLOCK + 2]
    assert await get_bytes(store, "big", offset=2 * BLOCK) == data[2 * BLOCK :]
    assert await get_bytes(store, "big", offset=len(data) + 5) == b""
    with pytest.raises(PermanentError):
        await store.get("big", io.BytesIO(), offset=-1)


async def test_missing_objects(store: FolderStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get("nope/x", io.BytesIO())
    with pytest.raises(ObjectNotFound):
        await store.stat("nope")
    with pytest.raises(ObjectNotFound):
        await store.delete("nope")


async def test_list_sorted_by_key_and_filtered_by_prefix(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    for key in ["p2/b", "p1/sessions/s2/m.json", "p1/sessions/s1/m.json", "p1/phase.md", "top"]:
        await store.put(key, make_source(tmp_path / "src", key.encode()))
    # an interrupted put's temp file is not an object
    (root / "p1" / f"{PART_PREFIX}deadbeef").write_bytes(b"partial")

    assert await keys(store) == [
        "p1/phase.md",
        "p1/sessions/s1/m.json",
        "p1/sessions/s2/m.json",
        "p2/b",
        "top",
    ]
    assert await keys(store, "p1/sessions/") == ["p1/sessions/s1/m.json", "p1/sessions/s2/m.json"]
    assert await keys(store, "p1/sess") == ["p1/sessions/s1/m.json", "p1/sessions/s2/m.json"]
    assert await keys(store, "p") == [
        "p1/phase.md",
        "p1/sessions/s1/m.json",
        "p1/sessions/s2/m.json",
        "p2/b",
    ]
    assert await keys(store, "missing/") == []
    listed = [info async for info in store.list("p2/")]
    assert listed == [await store.stat("p2/b")]
    assert listed[0].sha256 == hashlib.sha256(b"p2/b").hexdigest()


@pytest.mark.parametrize("xattrs", [True, False], ids=["xattr", "sidecar"])
async def test_delete_removes_sidecar_and_empty_folders(
    root: Path, tmp_path: Path, xattrs: bool
) -> None:
    store = FolderStore(root, xattrs=xattrs)
    await store.put("p1/sessions/s1/a", make_source(tmp_path / "a", b"a"))
    await store.put("p1/keep", make_source(tmp_path / "b", b"b"))

    await store.delete("p1/sessions/s1/a")

    assert not (root / "p1" / "sessions").exists()
    assert not (root / DIGESTS_DIR / "p1" / "sessions").exists()
    assert (root / "p1" / "keep").exists()
    assert await keys(store) == ["p1/keep"]
    with pytest.raises(ObjectNotFound):
        await store.stat("p1/sessions/s1/a")
    with pytest.raises(ObjectNotFound):
        await store.delete("p1")  # a folder is not an object
    await store.delete("p1/keep")
    assert sorted(p.name for p in root.iterdir()) == ([] if xattrs else [DIGESTS_DIR])


async def test_hand_copied_or_edited_file_has_no_digests(store: FolderStore, root: Path) -> None:
    (root / "dropped-in.txt").write_bytes(b"copied by hand")
    info = await store.stat("dropped-in.txt")
    assert (info.size, info.sha256, info.md5) == (14, None, None)

    src = root.parent / "src"
    await store.put("edited", make_source(src, b"original"))
    (root / "edited").write_bytes(b"changed by someone else")
    assert (await store.stat("edited")).sha256 is None  # unknown, rather than wrong

    await store.put("same-size", make_source(src, b"original"))
    (root / "same-size").write_bytes(b"ORIGINAL")
    later = (root / "same-size").stat().st_mtime + 60
    os.utime(root / "same-size", (later, later))
    assert (await store.stat("same-size")).md5 is None


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", f"{DIGESTS_DIR}/x", "a\\b"]
)
async def test_bad_keys_refused(store: FolderStore, tmp_path: Path, key: str) -> None:
    src = make_source(tmp_path / "src", b"x")
    with pytest.raises(PermanentError):
        await store.put(key, src)
    with pytest.raises(PermanentError):
        await store.get(key, io.BytesIO())
    assert not (tmp_path / "escape").exists()


async def test_symlinks_out_of_the_root_refused(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    (root / "linkdir").symlink_to(outside)
    (root / "linkfile").symlink_to(outside / "secret")
    src = make_source(tmp_path / "src", b"payload")

    with pytest.raises(PermanentError, match="outside"):
        await store.put("linkdir/new", src)
    with pytest.raises(PermanentError, match="outside"):
        await store.get("linkfile", io.BytesIO())
    with pytest.raises(PermanentError, match="outside"):
        await store.delete("linkdir/secret")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"
    assert await keys(store) == []


async def test_put_resumes_an_interrupted_partial(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    data = payload(4 * BLOCK + 777)
    src = make_source(tmp_path / "src", data)
    key = "p1/sessions/s1/snapshots.tar.zst"
    already = 2 * BLOCK + 100
    (root / "p1/sessions/s1").mkdir(parents=True)
    (root / "p1/sessions/s1" / partial_name(key, src.sha256)).write_bytes(data[:already])
    moved: list[int] = []

    info = await store.put(key, src, moved.append)

    assert sum(moved) == len(data) - already  # only the remainder was read from the source
    assert info.sha256 == src.sha256
    assert (root / key).read_bytes() == data
    assert leftovers(root) == []


async def test_put_with_a_torn_partial_starts_over(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    data = payload(2 * BLOCK)
    src = make_source(tmp_path / "src", data)
    # a crash before fsync can leave zeros where the data should be
    (root / partial_name("k", src.sha256)).write_bytes(b"\0" * BLOCK)
    moved: list[int] = []

    await store.put("k", src, moved.append)

    assert (root / "k").read_bytes() == data
    assert sum(moved) == BLOCK + len(data)  # the resumed tail, then one full clean copy
    assert leftovers(root) == []


async def test_source_changed_since_hashing_is_permanent_and_unpublished(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    src = make_source(tmp_path / "src", payload(BLOCK + 5))
    (tmp_path / "src").write_bytes(payload(BLOCK + 5, seed=2))  # same size, other bytes

    with pytest.raises(PermanentError, match="changed"):
        await store.put("k", src)

    assert not (root / "k").exists()
    assert leftovers(root) == []
    with pytest.raises(ObjectNotFound):
        await store.stat("k")


async def test_missing_source_file_is_permanent(store: FolderStore, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", b"x")
    (tmp_path / "src").unlink()
    with pytest.raises(PermanentError, match="source"):
        await store.put("k", src)


async def test_root_missing_means_wait_for_the_disk(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "not-mounted")
    src = make_source(tmp_path / "src", b"x")
    for call in (
        store.put("k", src),
        store.get("k", io.BytesIO()),
        store.stat("k"),
        store.delete("k"),
    ):
        with pytest.raises(TransientError) as caught:
            await call
        assert caught.value.hint == "is the disk connected?"
    with pytest.raises(TransientError):
        await keys(store)
    assert not (tmp_path / "not-mounted").exists()  # never created behind the user's back

    await store.create_root()
    await store.put("k", src)
    assert await keys(store) == ["k"]


async def test_disk_full_is_permanent_and_leaves_nothing(tmpfs: Path, tmp_path: Path) -> None:
    store = FolderStore(tmpfs)
    await store.put("small", make_source(tmp_path / "small", b"fits"))
    src = make_source(tmp_path / "big", payload(2 * BLOCK))

    with pytest.raises(PermanentError, match="full") as caught:
        await store.put("p1/big", src)

    assert caught.value.hint is not None
    assert not (tmpfs / "p1" / "big").exists()
    assert leftovers(tmpfs) == []  # the dead partial does not keep the disk full
    assert await keys(store) == ["small"]
    assert await get_bytes(store, "small") == b"fits"


async def test_read_only_mount_is_permanent(tmpfs: Path, tmp_path: Path) -> None:
    store = FolderStore(tmpfs)
    await store.put("old", make_source(tmp_path / "old", b"old bytes"))
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)

    with pytest.raises(PermanentError, match=r"cannot write to .*read-only"):
        await store.put("new", make_source(tmp_path / "new", b"new bytes"))
    with pytest.raises(PermanentError, match=r"cannot delete .*read-only"):
        await store.delete("old")
    assert await get_bytes(store, "old") == b"old bytes"  # reading still works


def test_permission_denied_is_permanent(root: Path, tmp_path: Path) -> None:
    """Without DAC override (root normally ignores file modes), a 0555 folder refuses writes."""
    locked = root / "locked"
    locked.mkdir()
    src = make_source(tmp_path / "src", b"x")
    locked.chmod(0o555)
    script = f"""
import asyncio, sys
from pathlib import Path
from core.remote.base import PermanentError, PutSource
from core.remote.folder import FolderStore
src = PutSource(Path({str(src.path)!r}), {src.size}, {src.sha256!r}, {src.md5!r})
async def main():
    try:
        await FolderStore(Path({str(root)!r})).put("locked/x", src)
    except PermanentError as err:
        print("PERMANENT", err)
        return
    print("WROTE")
asyncio.run(main())
"""
    caps = "-dac_override,-dac_read_search"
    cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-c"]
    try:
        done = subprocess.run(
            [*cmd, script],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
    finally:
        locked.chmod(0o755)
    if done.returncode != 0 and "setpriv" in done.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PERMANENT"), done.stdout
    assert "permission denied" in done.stdout
    assert not (locked / "x").exists()


async def test_cancelled_put_keeps_its_partial_and_publishes_nothing(
    store: FolderStore, root: Path, tmp_path: Path
) -> None:
    """A FIFO as the source lets the test hold the copy between two blocks, no timing involved."""
    data = payload(3 * BLOCK)
    regular = make_source(tmp_path / "src", data)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    first_block = asyncio.Event()
    task = asyncio.create_task(
        store.put("k", PutSource(fifo, regular.size, regular.sha256, regular.md5),
                  lambda _n: first_block.set())
    )  # fmt: skip
    writer = await asyncio.to_thread(open, fifo, "wb")
    try:
        await asyncio.to_thread(writer.write, data[:BLOCK])
        await first_block.wait()
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)  # let the task see its cancellation and flag the worker
        with contextlib.suppress(BrokenPipeError):
            await asyncio.to_thread(writer.write, data[BLOCK : 2 * BLOCK])
    finally:
        with contextlib.suppress(BrokenPipeError):
            writer.close()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not (root / "k").exists()
    assert (root / partial_name("k", regular.sha256)).stat().st_size == BLOCK

    moved: list[int] = []
    await store.put("k", regular, moved.append)  # the next attempt resumes the partial
    assert sum(moved) == 2 * BLOCK
    assert (root / "k").read_bytes() == data
