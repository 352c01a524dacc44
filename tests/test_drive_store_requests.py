"""What a Drive backup costs in requests, and that cutting them kept its guarantees.

Drive meters requests per user, and each one is a round trip: a backup of a hundred
sessions must not ask Google the same question a dozen times. These run the real
client against the fake server and count what reached it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.remote.base import PutSource
from core.remote.drive import DriveStore
from core.remote.retry import RetryingStore
from tests.drive_server.fixture import DriveHarness, drive_fixture

drive = drive_fixture()


@pytest.fixture
async def store(drive: DriveHarness) -> AsyncIterator[DriveStore]:
    made = DriveStore(
        drive.credentials(), api_root=drive.base_url, chunk_size=256 * 1024, timeout=15.0
    )
    yield made
    await made.close()


def source(folder: Path, size: int, seed: int) -> PutSource:
    data = random.Random(seed).randbytes(size)
    path = folder / f"src-{seed}"
    path.write_bytes(data)
    return PutSource(path, size, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


def files_named(drive: DriveHarness, name: str) -> list[Any]:
    return [f for f in drive.store.all_files() if f.name == name and not f.is_folder]


async def test_puts_at_once_into_new_folders_ask_about_each_folder_once(
    drive: DriveHarness, store: DriveStore, tmp_path: Path
) -> None:
    """Twelve puts at once, as a backup's sessions and their files go, into a path none
    of whose folders exists yet."""
    sources = [source(tmp_path, 3_000, seed=i) for i in range(12)]

    infos = await asyncio.gather(
        *(store.put(f"p/sessions/session_{i % 3}/f{i}", s) for i, s in enumerate(sources))
    )

    assert [i.md5 for i in infos] == [s.md5 for s in sources]
    folders = [f.name for f in drive.store.all_files() if f.is_folder]
    assert sorted(folders) == sorted(
        ["Tierkeeper-backup", "p", "sessions", "session_0", "session_1", "session_2"]
    )
    # One lookup of the top folder; inside folders this store made, no lookups, only the
    # check after each create that two writers settle on one folder. No file lookups.
    assert drive.traffic.count("files.create") == 6
    assert drive.traffic.count("files.list") == 1 + 6
    assert drive.traffic.count("upload.multipart") == 12


async def test_a_backup_step_costs_its_uploads_and_one_read_back(
    drive: DriveHarness, store: DriveStore, tmp_path: Path
) -> None:
    """Once the folders exist: a session's files, its manifest, and the manifest read back."""
    await store.put("p/sessions/session_a/x", source(tmp_path, 1_000, seed=1))
    drive.traffic.reset()

    for i in range(3):
        await store.put(f"p/sessions/session_a/f{i}", source(tmp_path, 2_000, seed=10 + i))
    back = io.BytesIO()
    await store.get("p/sessions/session_a/f2", back)

    assert back.getvalue() == (tmp_path / "src-12").read_bytes()
    assert drive.traffic.counts() == {"upload.multipart": 3, "files.get_media": 1}


async def test_a_small_put_whose_answer_was_lost_leaves_one_file(
    drive: DriveHarness, tmp_path: Path
) -> None:
    """Google made the file but the answer never came (the client gave up waiting): the
    retry must find that file, even in a folder this store made and so skips lookups in."""
    inner = DriveStore(drive.credentials(), api_root=drive.base_url, timeout=0.4)
    store = RetryingStore(inner, attempts=3, base_delay=0.8, max_delay=0.8)
    try:
        await store.put("a/first", source(tmp_path, 1_000, seed=1))  # "a" is now fresh
        src = source(tmp_path, 2_000, seed=2)
        drive.faults.slow_answer(0.6, endpoint="upload.multipart")  # made, answer lost

        info = await store.put("a/second", src)

        assert info.md5 == src.md5
        assert len(files_named(drive, "second")) == 1
        assert drive.traffic.count("upload.multipart") == 2  # the retry uploaded nothing
    finally:
        await store.close()


async def test_a_folder_create_whose_answer_was_lost_leaves_one_folder(
    drive: DriveHarness, tmp_path: Path
) -> None:
    inner = DriveStore(drive.credentials(), api_root=drive.base_url, timeout=0.4)
    store = RetryingStore(inner, attempts=3, base_delay=0.8, max_delay=0.8)
    try:
        await store.put("a/first", source(tmp_path, 1_000, seed=1))
        drive.faults.slow_answer(0.6, endpoint="files.create")

        await store.put("a/b/second", source(tmp_path, 2_000, seed=2))

        assert [f.name for f in drive.store.all_files() if f.is_folder].count("b") == 1
    finally:
        await store.close()


async def test_a_small_put_with_an_expired_token_refreshes_and_arrives_once(
    drive: DriveHarness, store: DriveStore, tmp_path: Path
) -> None:
    """Small files go up in a request built here, not by the library: the sign-in's
    refresh must still happen underneath, and the resent request must not make two."""
    await store.put("a/first", source(tmp_path, 1_000, seed=1))
    drive.server.tokens.expire_all()
    src = source(tmp_path, 2_000, seed=2)

    info = await store.put("a/second", src)

    assert (info.size, info.md5, info.sha256) == (src.size, src.md5, src.sha256)
    assert drive.traffic.count("token") == 1
    assert len(files_named(drive, "second")) == 1
    assert drive.store.get(info.extra["id"]).content == src.path.read_bytes()


async def test_folders_made_ahead_cost_a_listing_and_a_create_each(
    drive: DriveHarness, store: DriveStore, tmp_path: Path
) -> None:
    """What a backup job does before its sessions: then each session's puts are only its
    uploads, with no look for a twin folder after each create."""
    await store.make_folders(["p/sessions/warm"])  # the parents, as any first put makes them
    drive.traffic.reset()
    names = [f"session_{i}" for i in range(20)]

    await store.make_folders([f"p/sessions/{n}" for n in names] + ["p/sessions/warm"])

    assert drive.traffic.count("files.create") == 20  # not "warm": it was there
    assert drive.traffic.count("files.list") == 2  # before the creates, and after
    drive.traffic.reset()
    sources = [source(tmp_path, 2_000, seed=i) for i in range(20)]
    puts = [store.put(f"p/sessions/{n}/f", s) for n, s in zip(names, sources, strict=True)]
    await asyncio.gather(*puts)
    assert drive.traffic.count("upload.multipart") == 20
    assert drive.traffic.count("files.list") == drive.traffic.count("files.create") == 0
    folders = [f.name for f in drive.store.all_files() if f.is_folder]
    assert sorted(n for n in folders if n.startswith("session_")) == sorted(names)


async def test_folders_made_ahead_page_through_a_parent_that_holds_many(
    drive: DriveHarness, tmp_path: Path
) -> None:
    store = DriveStore(drive.credentials(), api_root=drive.base_url, page_size=5)
    try:
        await store.make_folders([f"p/sessions/old_{i}" for i in range(7)])
        drive.traffic.reset()

        await store.make_folders([f"p/sessions/old_{i}" for i in range(7)] + ["p/sessions/new"])

        assert drive.traffic.count("files.create") == 1  # all seven found, over two pages
        assert drive.traffic.count("files.list") == 2 + 2
    finally:
        await store.close()


async def test_a_twin_folder_made_meanwhile_by_another_writer_is_settled_on_the_oldest(
    drive: DriveHarness, store: DriveStore, tmp_path: Path
) -> None:
    """Two machines on one account make the same folder at the same moment: both must end
    up writing into one of them, the oldest; ours, the younger twin, is removed."""
    await store.make_folders(["p/sessions/warm"])
    (parent,) = [f for f in drive.store.all_files() if f.name == "sessions"]
    drive.traffic.reset()
    # the listing after our create waits; the other writer's folder appears meanwhile,
    # and it is older (made a moment before ours, its answer slower than ours)
    drive.faults.delay(0.5, endpoint="files.list", nth=2)
    task = asyncio.create_task(store.make_folders(["p/sessions/session_x"]))
    while not (made := [f for f in drive.store.all_files() if f.name == "session_x"]):
        await asyncio.sleep(0.01)
    (ours,) = made
    twin = drive.store.create(
        {"name": "session_x", "mimeType": "application/vnd.google-apps.folder",
         "parents": [parent.id], "appProperties": {"tierkeeper": "1"}},
        None,
    )  # fmt: skip
    twin.created = ours.created - timedelta(seconds=1)
    await task
    drive.traffic.reset()

    await store.put("p/sessions/session_x/f", source(tmp_path, 1_000, seed=1))

    # straight into the twin: one look for the file (the folder is not ours alone), no
    # put into a folder that is gone, no walk down from the top to find it again
    assert drive.traffic.count("files.list") == 1
    assert drive.traffic.count("upload.multipart") == 1

    left = [f for f in drive.store.all_files() if f.name == "session_x" and not f.trashed]
    assert [f.id for f in left] == [twin.id]
    (put,) = files_named(drive, "f")
    assert put.parents == [twin.id]
