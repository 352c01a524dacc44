"""DriveStore with the real google-api-python-client against the fake Drive server.

Faults are injected only where a real server cannot be made to misbehave on cue (rate
limits, 5xx, dropped connections, a lying md5); everything else is real: sockets, files,
OAuth refreshes, resumable sessions, and a child process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.remote.base import (
    NeedsReconnect,
    ObjectNotFound,
    PermanentError,
    PutSource,
    TransientError,
)
from core.remote.drive import DriveStore
from core.remote.drive_errors import human_bytes
from core.remote.retry import RetryingStore
from tests.drive_put_child import JsonFileSlot
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.drive_server.store import DriveFile
from tests.support import REPO

drive = drive_fixture()
small_drive = drive_fixture(name="small_drive", quota_limit=1_500_000)

CHUNK = 256 * 1024
MiB = 1024 * 1024
KEY = "phase-1/sessions/session_a/transcript.jsonl.zst"

MakeStore = Callable[..., DriveStore]


@pytest.fixture
async def stores() -> AsyncIterator[MakeStore]:
    """Build DriveStores against a harness; all are closed at teardown."""
    made: list[DriveStore] = []

    def make(harness: DriveHarness, **options: Any) -> DriveStore:
        options.setdefault("chunk_size", CHUNK)
        options.setdefault("timeout", 15.0)
        credentials = options.pop("credentials", None) or harness.credentials()
        store = DriveStore(credentials, api_root=harness.base_url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def retrying(store: DriveStore, **options: Any) -> RetryingStore:
    options.setdefault("base_delay", 0.01)
    options.setdefault("max_delay", 0.05)
    return RetryingStore(store, **options)


def make_source(folder: Path, size: int, seed: int = 0, name: str | None = None) -> PutSource:
    data = random.Random(seed).randbytes(size)
    path = folder / (name or f"src-{seed}-{size}.bin")
    path.write_bytes(data)
    return PutSource(path, size, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


def files_named(harness: DriveHarness, name: str) -> list[DriveFile]:
    return [f for f in harness.store.all_files() if f.name == name and not f.is_folder]


def folders_named(harness: DriveHarness, name: str) -> list[DriveFile]:
    return [f for f in harness.store.all_files() if f.name == name and f.is_folder]


def range_start(content_range: str | None) -> int:
    assert content_range is not None
    return int(content_range.split()[1].split("-")[0])


def range_end(content_range: str | None) -> int:
    assert content_range is not None
    return int(content_range.split()[1].split("-")[1].split("/")[0])


async def read_all(store: DriveStore | RetryingStore, key: str) -> bytes:
    buf = io.BytesIO()
    await store.get(key, buf)
    return buf.getvalue()


# -- the protocol, end to end ------------------------------------------------------


async def test_round_trip_put_stat_get_list_delete(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, MiB + 12_345)
    moved: list[int] = []

    info = await store.put(KEY, src, moved.append)

    assert (info.key, info.size, info.md5, info.sha256) == (KEY, src.size, src.md5, src.sha256)
    assert sum(moved) == src.size
    assert await store.stat(KEY) == info
    assert await read_all(store, KEY) == src.path.read_bytes()
    assert [i.key async for i in store.list()] == [KEY]
    (root,) = folders_named(drive, "Tierkeeper-backup")
    assert root.parents == [drive.store.root_id]
    (stored,) = files_named(drive, "transcript.jsonl.zst")
    assert stored.app_properties["sha256"] == src.sha256

    await store.delete(KEY)

    assert files_named(drive, "transcript.jsonl.zst") == []
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)
    with pytest.raises(ObjectNotFound):
        await store.delete(KEY)
    with pytest.raises(ObjectNotFound):
        await read_all(store, KEY)
    assert [i async for i in store.list()] == []


async def test_an_empty_file_round_trips(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, 0)

    info = await store.put("a/handoff.md", src)

    assert (info.size, info.md5) == (0, hashlib.md5(b"").hexdigest())
    assert await read_all(store, "a/handoff.md") == b""


async def test_names_with_quotes_are_escaped_in_queries(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive, root_folder="Bob's backups")
    src = make_source(tmp_path, 1000)
    key = "it's/a 'quoted' name.txt"

    await store.put(key, src)

    assert (await store.stat(key)).md5 == src.md5
    assert [i.key async for i in store.list("it's/")] == [key]


async def test_put_of_an_existing_key_uploads_a_new_revision_of_the_one_file(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    first = make_source(tmp_path, 300_000, seed=1)
    second = make_source(tmp_path, 700_000, seed=2)
    old = await store.put(KEY, first)

    new = await store.put(KEY, second)

    (stored,) = files_named(drive, "transcript.jsonl.zst")
    assert new.extra["id"] == old.extra["id"] == stored.id
    assert (new.size, new.md5, new.sha256) == (second.size, second.md5, second.sha256)
    assert await read_all(store, KEY) == second.path.read_bytes()
    assert stored.app_properties["sha256"] == second.sha256


async def test_putting_the_same_content_again_uploads_nothing(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, 600_000)
    first = await store.put(KEY, src)
    starts = drive.traffic.count("upload.start")
    moved: list[int] = []

    again = await store.put(KEY, src, moved.append)

    assert again == first
    assert drive.traffic.count("upload.start") == starts
    assert sum(moved) == src.size  # the caller still sees the object complete


async def test_concurrent_puts_into_a_new_folder_create_each_folder_once(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    sources = [make_source(tmp_path, 5_000, seed=i) for i in range(6)]

    infos = await asyncio.gather(
        *(store.put(f"phase-1/sessions/session_x/f{i}", s) for i, s in enumerate(sources))
    )

    assert [i.md5 for i in infos] == [s.md5 for s in sources]
    for name in ("Tierkeeper-backup", "phase-1", "sessions", "session_x"):
        assert len(folders_named(drive, name)) == 1, name
    listed = sorted([i.key async for i in store.list("phase-1/")])
    assert listed == [f"phase-1/sessions/session_x/f{i}" for i in range(6)]


async def test_a_second_store_finds_the_folders_the_first_made(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    src = make_source(tmp_path, 2_000)
    await stores(drive).put("a/b/one", src)

    await stores(drive).put("a/b/two", src)

    for name in ("Tierkeeper-backup", "a", "b"):
        assert len(folders_named(drive, name)) == 1, name


async def test_ranged_get_returns_exact_bytes(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, MiB + 777)
    data = src.path.read_bytes()
    await store.put(KEY, src)
    cases = [
        (0, None),
        (100, 1000),
        (CHUNK - 10, 20),  # across the boundary of two ranged requests
        (1000, 600_000),
        (src.size - 5, None),
        (src.size - 5, 1000),
        (src.size, None),
        (src.size + 10, 5),
        (0, 0),
    ]
    for offset, length in cases:
        buf = io.BytesIO()
        moved: list[int] = []
        n = await store.get(KEY, buf, offset=offset, length=length, progress=moved.append)
        want = data[offset : None if length is None else offset + length]
        assert buf.getvalue() == want, (offset, length)
        assert n == len(want) == sum(moved)
    with pytest.raises(PermanentError):
        await store.get(KEY, io.BytesIO(), offset=-1)


async def test_list_pages_through_every_folder(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive, page_size=2)
    src = make_source(tmp_path, 100)
    keys = [f"p/a/f{i}" for i in range(5)] + ["p/b/g", "p/c/d/h", "p/top", "q/x"]
    for key in keys:
        await store.put(key, src)
    drive.traffic.reset()

    listed = [i.key async for i in store.list()]

    assert sorted(listed) == sorted(keys)
    assert len(listed) == len(set(listed))
    paged = [r for r in drive.traffic.records("files.list") if "pageToken" in r.query]
    assert len(paged) > 2
    assert sorted([i.key async for i in store.list("p/")]) == sorted(keys[:-1])
    assert [i.key async for i in store.list("p/a/f3")] == ["p/a/f3"]
    assert [i.key async for i in store.list("p/c")] == ["p/c/d/h"]
    assert [i.key async for i in store.list("nothing/here/")] == []
    infos = {i.key: i async for i in store.list("p/b/")}
    assert (infos["p/b/g"].size, infos["p/b/g"].md5) == (src.size, src.md5)


# -- failures Google produces ----------------------------------------------------------


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda f: f.user_rate_limit(endpoint="upload.chunk", nth=2), id="403-rate"),
        pytest.param(lambda f: f.rate_limit(endpoint="upload.chunk", nth=2), id="429"),
        pytest.param(lambda f: f.server_error(500, endpoint="upload.chunk", nth=2), id="500"),
        pytest.param(
            lambda f: f.server_error(503, endpoint="upload.chunk", nth=3, times=2), id="503x2"
        ),
    ],
)
async def test_a_failed_chunk_resumes_the_session(
    drive: DriveHarness,
    stores: MakeStore,
    tmp_path: Path,
    inject: Callable[[Any], object],
) -> None:
    store = retrying(stores(drive))
    src = make_source(tmp_path, MiB + 100)
    inject(drive.faults)
    moved: list[int] = []

    info = await store.put(KEY, src, moved.append)

    assert info.md5 == src.md5
    assert drive.faults.pending() == []
    assert drive.traffic.count("upload.start") == 1
    assert drive.traffic.count("upload.status") >= 1
    assert len(files_named(drive, "transcript.jsonl.zst")) == 1
    assert sum(moved) == src.size
    chunks = drive.traffic.records("upload.chunk")
    starts = [range_start(r.content_range) for r in chunks]
    assert starts == sorted(starts)  # the failed chunk was sent again; nothing before it
    assert chunks[-1].status == 200 and range_end(chunks[-1].content_range) == src.size - 1


@pytest.mark.parametrize("how", ["user_rate_limit", "rate_limit"])
async def test_retry_after_from_google_is_honoured(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path, how: str
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    store = retrying(stores(drive), max_delay=1.0, sleep=sleep)
    getattr(drive.faults, how)(retry_after=0.8, endpoint="upload.chunk", nth=2)
    src = make_source(tmp_path, 600_000)

    await store.put(KEY, src)

    assert len(pauses) == 1 and pauses[0] >= 0.8
    assert drive.traffic.count("upload.start") == 1


async def test_connection_dropped_mid_chunk_resumes_from_the_servers_offset(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = retrying(stores(drive))
    src = make_source(tmp_path, MiB)
    drive.faults.drop_connection(
        after_bytes=100_000, keep_received=True, endpoint="upload.chunk", nth=2
    )

    info = await store.put(KEY, src)

    assert info.md5 == src.md5
    assert drive.traffic.count("upload.start") == 1
    chunks = drive.traffic.records("upload.chunk")
    dropped = [r for r in chunks if r.status is None]
    assert [range_start(r.content_range) for r in dropped] == [CHUNK]
    after = chunks[chunks.index(dropped[0]) + 1]
    assert range_start(after.content_range) == CHUNK + 100_000
    assert await read_all(store, KEY) == src.path.read_bytes()


async def test_a_dropped_download_resumes_where_it_stopped(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = retrying(stores(drive))
    src = make_source(tmp_path, MiB)
    await store.put(KEY, src)
    drive.faults.drop_connection(endpoint="files.get_media", nth=3)
    drive.traffic.reset()

    assert await read_all(store, KEY) == src.path.read_bytes()
    # 4 ranges of 256 KiB, one of them asked twice; nothing already written is fetched again
    assert drive.traffic.count("files.get_media") == 5


async def test_an_expired_access_token_is_refreshed_transparently(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, 600_000)
    await store.put("a/one", src)
    drive.server.tokens.expire_all()

    info = await store.put("a/two", src)

    assert info.md5 == src.md5
    assert (await store.stat("a/one")).md5 == src.md5
    assert drive.traffic.count("token") == 1


@pytest.mark.parametrize("how", ["revoked", "401-persists"])
async def test_a_sign_in_that_no_longer_works_needs_a_reconnect(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path, how: str
) -> None:
    credentials = drive.credentials()
    store = retrying(stores(drive, credentials=credentials, name="work-drive"))
    await store.put("a/one", make_source(tmp_path, 1000))
    if how == "revoked":
        drive.server.tokens.expire_all()
        drive.server.tokens.revoke(credentials.refresh_token)
    else:
        drive.faults.expired_token(endpoint="files.list", times=None)

    with pytest.raises(NeedsReconnect) as caught:
        await store.stat("a/one")

    text = str(caught.value)
    assert "tierkeeper target reconnect work-drive" in text
    assert credentials.token not in text and credentials.refresh_token not in text
    assert caught.value.exit_code == 3


async def test_a_full_drive_is_a_permanent_error_with_the_numbers(
    small_drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    drive_store = stores(small_drive)
    store = retrying(drive_store)
    await store.put("a/first", make_source(tmp_path, MiB, seed=1))
    big = make_source(tmp_path, MiB, seed=2)

    with pytest.raises(PermanentError) as caught:
        await store.put("a/second", big)

    used, limit = await drive_store.quota()
    assert (used, limit) == (MiB, 1_500_000)
    text = str(caught.value)
    assert f"{human_bytes(used)} of {human_bytes(limit)} used" in text
    assert human_bytes(big.size) in text and "a/second" in text
    assert small_drive.traffic.count("upload.start") == 2  # not retried
    assert files_named(small_drive, "second") == []


async def test_a_wrong_md5_from_drive_is_reported_not_mended(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, 400_000)
    drive.faults.wrong_md5()

    info = await store.put(KEY, src)

    assert info.md5 != src.md5
    assert (await store.stat(KEY)).md5 == info.md5
    assert info.sha256 == src.sha256


async def test_bad_settings_are_refused(drive: DriveHarness) -> None:
    credentials = drive.credentials()
    with pytest.raises(ValueError, match="multiple"):
        DriveStore(credentials, chunk_size=100_000)
    with pytest.raises(ValueError, match="page_size"):
        DriveStore(credentials, page_size=0)


# -- resuming across cancellation, restarts and crashes ---------------------------------


async def test_a_cancelled_put_stops_between_chunks_and_resumes_later(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    store = stores(drive)
    src = make_source(tmp_path, MiB + 10)
    slot = JsonFileSlot(tmp_path / "slot.json")
    drive.faults.delay(0.3, endpoint="upload.chunk", nth=3)
    moved: list[int] = []
    task = asyncio.create_task(store.put(KEY, src, moved.append, resume=slot))
    while drive.faults.pending():  # until the 3rd chunk is in flight (held by the delay)
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert slot.load() is not None
    sent = len(drive.traffic.records("upload.chunk"))
    assert sent == 3  # the chunk in flight finished; no further chunk was sent

    info = await store.put(KEY, src, moved.append, resume=slot)

    assert info.md5 == src.md5
    assert drive.traffic.count("upload.start") == 1
    starts = [range_start(r.content_range) for r in drive.traffic.records("upload.chunk")]
    assert starts == sorted(set(starts))  # no chunk sent twice
    assert sum(moved) == src.size
    assert slot.load() is None


async def test_a_new_store_resumes_the_session_from_the_slot_file(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    src = make_source(tmp_path, MiB + 10)
    slot_file = tmp_path / "slot.json"
    drive.faults.server_error(503, endpoint="upload.chunk", nth=3, times=None)
    with pytest.raises(TransientError):
        await stores(drive).put(KEY, src, resume=JsonFileSlot(slot_file))
    assert JsonFileSlot(slot_file).load() is not None
    drive.faults.clear()
    failed_at = len(drive.traffic.records("upload.chunk"))
    fresh = stores(drive)  # as after a restart: nothing in memory, only the slot file
    slot = JsonFileSlot(slot_file)
    moved: list[int] = []

    info = await fresh.put(KEY, src, moved.append, resume=slot)

    assert info.md5 == src.md5
    assert drive.traffic.count("upload.start") == 1
    resumed = drive.traffic.records("upload.chunk")[failed_at:]
    assert range_start(resumed[0].content_range) == 2 * CHUNK
    assert sum(moved) == src.size
    assert slot.saved[-1] is None and slot.load() is None
    assert len(files_named(drive, "transcript.jsonl.zst")) == 1


async def test_a_session_google_forgot_starts_over(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    src = make_source(tmp_path, 600_000)
    slot = JsonFileSlot(tmp_path / "slot.json")
    await slot.save(drive.base_url + "upload/drive/v3/files?uploadType=resumable&upload_id=gone")

    info = await stores(drive).put(KEY, src, resume=slot)

    assert info.md5 == src.md5
    assert drive.traffic.count("upload.status") == 1
    assert drive.traffic.count("upload.start") == 1
    assert slot.load() is None


async def test_an_upload_killed_with_sigkill_resumes_in_a_new_process(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path
) -> None:
    src = make_source(tmp_path, 3 * MiB + 1000)
    slot_file = tmp_path / "slot.json"
    # The 4th chunk hangs in the server, so the child dies with 3 chunks acknowledged
    # and one in flight (test teardown cancels the hanging handler).
    drive.faults.delay(30, endpoint="upload.chunk", nth=4)
    credentials = drive.credentials()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TK_DRIVE_URL": drive.base_url,
        "TK_DRIVE_TOKEN": credentials.token,
        "TK_DRIVE_REFRESH": credentials.refresh_token,
        "TK_DRIVE_TOKEN_URI": drive.server.token_uri,
        "TK_DRIVE_CLIENT_ID": drive.server.client_id,
        "TK_DRIVE_CLIENT_SECRET": drive.server.client_secret,
    }
    args = [str(src.path), src.sha256, src.md5, str(slot_file), KEY]
    with open(tmp_path / "child.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("drive_put_child.py")), *args],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            # until the 4th chunk is held by the delay (so the resumed put won't be)
            while drive.faults.pending() or len(acked_chunks(drive)) < 3:
                assert child.poll() is None, (tmp_path / "child.log").read_text()
                assert time.monotonic() < deadline, "the child never got 3 chunks through"
                await asyncio.sleep(0.02)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL
    last_acked = max(range_end(r.content_range) for r in acked_chunks(drive)) + 1
    before = len(drive.traffic.records("upload.chunk"))
    slot = JsonFileSlot(slot_file)
    assert slot.load() is not None

    info = await stores(drive).put(KEY, src, resume=slot)

    assert (info.size, info.md5) == (src.size, src.md5)
    (stored,) = files_named(drive, "transcript.jsonl.zst")
    assert stored.content == src.path.read_bytes()
    assert drive.traffic.count("upload.start") == 1
    resumed = drive.traffic.records("upload.chunk")[before:]
    assert range_start(resumed[0].content_range) >= last_acked == 3 * CHUNK
    assert slot.load() is None


def acked_chunks(harness: DriveHarness) -> list[Any]:
    return [r for r in harness.traffic.records("upload.chunk") if r.status == 308]


@pytest.mark.parametrize("tail", [b"\r", b"\n", b"\r\n", b"-"])
async def test_a_small_file_ending_in_a_line_end_byte_arrives_whole(
    drive: DriveHarness, stores: MakeStore, tmp_path: Path, tail: bytes
) -> None:
    """Small files go up in one multipart request, whose parts end in line breaks."""
    path = tmp_path / "blob"
    data = os.urandom(5000) + tail
    path.write_bytes(data)
    src = PutSource(path, len(data), hashlib.sha256(data).hexdigest(),
                    hashlib.md5(data).hexdigest())  # fmt: skip
    store = stores(drive)
    info = await store.put("a/blob", src)
    assert info.size == len(data) and info.md5 == src.md5
    back = io.BytesIO()
    await store.get("a/blob", back)
    assert back.getvalue() == data
