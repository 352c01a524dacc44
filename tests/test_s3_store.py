"""S3Store against real S3 servers: SeaweedFS for data paths (it checks signatures and
checksums), moto for Glacier's restore rules. boto3 is real; only a dropped connection
and a stalled network are simulated, by wrapping the client's upload_part."""

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
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from core.remote.base import ObjectNotFound, PermanentError, PutSource
from core.remote.retry import RetryingStore
from core.remote.s3 import ArchivedError, S3Settings, S3Store
from tests.drive_put_child import JsonFileSlot
from tests.s3_server.fixtures import SeaweedHarness, moto_s3, seaweed
from tests.s3_server.moto import MotoS3Server
from tests.support import REPO

__all__ = ["moto_s3", "seaweed"]  # pytest finds the fixtures through this module

MiB = 1024 * 1024
PART = 5 * MiB
BIG = 12 * MiB + 12345  # three parts: 5 + 5 + 2 MiB and a bit
KEY = "phase-1/archive.tar.zst"

MakeStore = Callable[..., S3Store]


class MemorySlot:
    """A ResumeSlot in memory that records every handle it was given."""

    def __init__(self, handle: str | None = None) -> None:
        self.handle = handle
        self.saved: list[str | None] = []

    def load(self) -> str | None:
        return self.handle

    async def save(self, handle: str | None) -> None:
        self.saved.append(handle)
        self.handle = handle


def make_source(folder: Path, size: int, seed: int = 0) -> PutSource:
    data = random.Random(seed).randbytes(size)
    path = folder / f"src-{seed}-{size}.bin"
    path.write_bytes(data)
    return PutSource(path, size, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


@pytest.fixture
async def stores(seaweed: SeaweedHarness) -> AsyncIterator[MakeStore]:
    """Build S3Stores on SeaweedFS (a fresh bucket unless given); closed at teardown."""
    made: list[S3Store] = []

    def make(bucket: str | None = None, **options: Any) -> S3Store:
        settings = S3Settings(
            bucket=bucket or seaweed.make_bucket(),
            prefix=options.pop("prefix", ""),
            endpoint_url=seaweed.endpoint,
            region=seaweed.region,
        )
        options.setdefault("access_key", seaweed.access_key)
        options.setdefault("secret_key", seaweed.secret_key)
        options.setdefault("part_size", PART)
        options.setdefault("timeout", 15.0)
        store = S3Store(settings, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def count_calls(client: Any, method: str, *, fail_on: Collection[int] = ()) -> list[int]:
    """Record calls of one client method (their PartNumber, or 0); the calls numbered in
    `fail_on` (1-based) fail as a dropped connection would, without reaching the server."""
    real = getattr(client, method)
    calls: list[int] = []

    def wrapper(**kwargs: Any) -> Any:
        calls.append(int(kwargs.get("PartNumber", 0)))
        if len(calls) in fail_on:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return real(**kwargs)

    setattr(client, method, wrapper)
    return calls


def uploads_in_flight(seaweed: SeaweedHarness, bucket: str) -> list[dict[str, Any]]:
    return list(seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads") or [])


def read_object(seaweed: SeaweedHarness, bucket: str, key: str) -> bytes:
    body: bytes = seaweed.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


async def fetch(store: S3Store, key: str, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    await store.get(key, out, **kwargs)
    return out.getvalue()


# -- round trips -----------------------------------------------------------------------


async def test_small_object_round_trip_with_checksums(stores: MakeStore, tmp_path: Path) -> None:
    store = stores()
    src = make_source(tmp_path, 300_000)
    moved: list[int] = []

    info = await store.put(KEY, src, moved.append)

    assert (info.size, info.sha256, info.md5) == (src.size, src.sha256, src.md5)
    assert sum(moved) == src.size
    stat = await store.stat(KEY)
    assert (stat.size, stat.sha256, stat.md5) == (src.size, src.sha256, src.md5)
    assert stat.extra["storage_class"] == "DEEP_ARCHIVE"
    assert await fetch(store, KEY) == src.path.read_bytes()


async def test_manifests_can_go_up_in_standard_class(stores: MakeStore, tmp_path: Path) -> None:
    store = stores()
    src = make_source(tmp_path, 1000)
    await store.put("metadata/phase-1_manifest.json", src, storage_class="STANDARD")
    stat = await store.stat("metadata/phase-1_manifest.json")
    assert stat.extra["storage_class"] == "STANDARD"


async def test_multipart_round_trip(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    src = make_source(tmp_path, BIG, seed=1)
    slot = MemorySlot()
    moved: list[int] = []
    parts = count_calls(store._client(), "upload_part")

    info = await store.put(KEY, src, moved.append, resume=slot)

    assert parts == [1, 2, 3]
    assert (info.size, info.sha256, info.md5) == (src.size, src.sha256, None)
    assert sum(moved) == src.size
    assert len(slot.saved) == 2 and slot.saved[0] and slot.saved[1] is None
    stat = await store.stat(KEY)
    assert (stat.size, stat.sha256) == (src.size, src.sha256)  # from the recorded metadata
    assert stat.extra["etag"].endswith("-3")
    assert await fetch(store, KEY) == src.path.read_bytes()
    assert uploads_in_flight(seaweed, store.settings.bucket) == []


async def test_ranged_reads(stores: MakeStore, tmp_path: Path) -> None:
    store = stores()
    src = make_source(tmp_path, BIG, seed=2)
    data = src.path.read_bytes()
    await store.put(KEY, src)

    across_parts = await fetch(store, KEY, offset=PART - 100, length=300)
    assert across_parts == data[PART - 100 : PART + 200]
    assert await fetch(store, KEY, offset=BIG - 10) == data[-10:]
    assert await fetch(store, KEY, offset=BIG + 5) == b""
    assert await fetch(store, KEY, offset=7, length=0) == b""
    with pytest.raises(ObjectNotFound):
        await fetch(store, "phase-1/missing.bin")
    with pytest.raises(ObjectNotFound):
        await fetch(store, "phase-1/missing.bin", length=0)


async def test_list_pages_through_keys_under_the_store_prefix(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores(prefix="team/archive", page_size=2)
    bucket = store.settings.bucket
    seaweed.client().put_object(Bucket=bucket, Key="team/other/x.bin", Body=b"not ours")
    src = make_source(tmp_path, 100)
    keys = ["a/1.bin", "a/2.bin", "a/3.bin", "b/1.bin", "c.bin"]
    for key in keys:
        await store.put(key, src)
    requests = count_calls(store._client(), "list_objects_v2")

    listed = [info async for info in store.list()]
    assert [i.key for i in listed] == keys
    assert all(i.size == 100 and i.md5 == src.md5 for i in listed)
    assert len(requests) == 3  # 5 keys, 2 a page
    assert [i.key async for i in store.list("a/")] == keys[:3]
    assert [i.key async for i in store.list("nothing/")] == []
    raw = seaweed.client().list_objects_v2(Bucket=bucket, Prefix="team/archive/")
    assert {o["Key"] for o in raw["Contents"]} == {f"team/archive/{k}" for k in keys}


async def test_delete_removes_and_reports_missing_keys(stores: MakeStore, tmp_path: Path) -> None:
    store = stores()
    await store.put(KEY, make_source(tmp_path, 10))
    await store.delete(KEY)
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)
    with pytest.raises(ObjectNotFound):
        await store.delete(KEY)


# -- integrity and clear errors ----------------------------------------------------------


async def test_a_wrong_checksum_is_rejected_and_nothing_stored(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    bucket = store.settings.bucket
    small = make_source(tmp_path, 1000)
    big = make_source(tmp_path, BIG, seed=3)
    wrong = "0" * 64

    with pytest.raises(PermanentError, match="no longer matches") as small_err:
        await store.put("small.bin", PutSource(small.path, small.size, wrong, small.md5))
    with pytest.raises(PermanentError, match="no longer matches"):
        await store.put(KEY, PutSource(big.path, big.size, wrong, big.md5))

    assert isinstance(small_err.value.__cause__, Exception)
    assert "BadDigest" in repr(small_err.value.__cause__)  # the server refused it
    assert "Contents" not in seaweed.client().list_objects_v2(Bucket=bucket)
    assert uploads_in_flight(seaweed, bucket) == []  # the multipart upload was aborted


async def test_wrong_credentials_give_a_clear_permanent_error(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    bad_secret = "not-the-secret-" + "x" * 20
    store = stores(secret_key=bad_secret)
    with pytest.raises(PermanentError) as err:
        await store.put(KEY, make_source(tmp_path, 10))
    text = str(err.value)
    assert "credentials" in text and "access key" in text
    assert bad_secret not in text and seaweed.secret_key not in text
    with pytest.raises(PermanentError, match="credentials"):
        await store.head_bucket()


async def test_a_missing_bucket_is_named_in_the_error(stores: MakeStore, tmp_path: Path) -> None:
    store = stores(bucket="tk-no-such-bucket")
    with pytest.raises(PermanentError, match="'tk-no-such-bucket' does not exist") as err:
        await store.put(KEY, make_source(tmp_path, 10))
    assert err.value.hint and "create the bucket" in err.value.hint
    report = await store.head_bucket()
    assert not report.exists


async def test_bucket_report(stores: MakeStore, seaweed: SeaweedHarness) -> None:
    store = stores(prefix="archive")
    report = await store.head_bucket()
    assert report.exists and report.writable
    assert report.versioning == "Disabled"
    assert report.object_lock is False
    listing = seaweed.client().list_objects_v2(Bucket=store.settings.bucket)
    assert "Contents" not in listing  # the write probe left nothing behind


# -- resuming, cancelling, crashing ---------------------------------------------------------


async def cancel_after_first_part(store: S3Store, src: PutSource, slot: MemorySlot) -> None:
    task: asyncio.Task[Any] | None = None

    def progress(_n: int) -> None:
        assert task is not None
        task.cancel()

    task = asyncio.create_task(store.put(KEY, src, progress, resume=slot))
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancel_aborts_the_multipart_upload(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    src = make_source(tmp_path, BIG, seed=4)
    slot = MemorySlot()

    await cancel_after_first_part(store, src, slot)

    assert slot.saved[0] is not None and slot.saved[-1] is None
    assert uploads_in_flight(seaweed, store.settings.bucket) == []
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)


async def test_a_kept_upload_resumes_in_a_new_store_without_resending_parts(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    first = stores(abort_on_cancel=False)
    bucket = first.settings.bucket
    src = make_source(tmp_path, BIG, seed=5)
    slot = MemorySlot()
    await cancel_after_first_part(first, src, slot)
    upload_id = slot.load()
    assert upload_id is not None
    held = seaweed.client().list_parts(Bucket=bucket, Key=KEY, UploadId=upload_id)["Parts"]
    assert 1 <= len(held) <= 3  # the part in flight when the cancel came may have finished

    second = stores(bucket)
    sent = count_calls(second._client(), "upload_part")
    created = count_calls(second._client(), "create_multipart_upload")
    moved: list[int] = []
    info = await second.put(KEY, src, moved.append, resume=slot)

    assert sent == list(range(len(held) + 1, 4))  # only the parts S3 did not hold
    assert created == []
    assert sum(moved) == src.size
    assert info.sha256 == src.sha256 and slot.load() is None
    assert read_object(seaweed, bucket, KEY) == src.path.read_bytes()
    assert uploads_in_flight(seaweed, bucket) == []


async def test_a_dropped_connection_is_retried_from_the_failed_part(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    src = make_source(tmp_path, BIG, seed=6)
    sent = count_calls(store._client(), "upload_part", fail_on={2})
    created = count_calls(store._client(), "create_multipart_upload")
    retrying = RetryingStore(store, base_delay=0.0)

    info = await retrying.put(KEY, src)

    assert sent == [1, 2, 2, 3]  # part 1 was not sent again
    assert len(created) == 1
    assert info.size == src.size
    assert read_object(seaweed, store.settings.bucket, KEY) == src.path.read_bytes()


async def test_a_stale_upload_id_in_the_slot_is_handled(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    """A process that died between completing an upload and clearing its slot: the next
    put finds the object already there and sends nothing. An id S3 never heard of (or
    that was aborted) means starting over."""
    store = stores()
    src = make_source(tmp_path, BIG, seed=8)
    first = MemorySlot()
    await store.put(KEY, src, resume=first)
    completed_id = first.saved[0]
    sent = count_calls(store._client(), "upload_part")
    created = count_calls(store._client(), "create_multipart_upload")

    again = MemorySlot(completed_id)
    info = await store.put(KEY, src, resume=again)
    assert (sent, created, again.saved) == ([], [], [None])
    assert info.sha256 == src.sha256

    other = make_source(tmp_path, BIG, seed=9)
    bogus = MemorySlot("no-such-upload-id")
    await store.put(KEY, other, resume=bogus)
    assert sent == [1, 2, 3] and len(created) == 1
    assert bogus.saved[0] is None and bogus.saved[-1] is None and len(bogus.saved) == 3
    assert read_object(seaweed, store.settings.bucket, KEY) == other.path.read_bytes()


async def test_an_upload_killed_with_sigkill_resumes_in_a_new_process(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    bucket = store.settings.bucket
    src = make_source(tmp_path, BIG, seed=7)
    slot_file = tmp_path / "slot.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TK_S3_ENDPOINT": seaweed.endpoint,
        "TK_S3_BUCKET": bucket,
        "TK_S3_ACCESS": seaweed.access_key,
        "TK_S3_SECRET": seaweed.secret_key,
        "TK_S3_STALL_AFTER": "1",
    }
    args = [str(src.path), src.sha256, src.md5, str(slot_file), KEY]
    slot = JsonFileSlot(slot_file)
    with open(tmp_path / "child.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("s3_put_child.py")), *args],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:  # until S3 holds a part of the upload named in the slot
                assert child.poll() is None, (tmp_path / "child.log").read_text()
                assert time.monotonic() < deadline, "the child never got a part through"
                upload_id = slot.load()
                if upload_id and seaweed.client().list_parts(
                    Bucket=bucket, Key=KEY, UploadId=upload_id
                ).get("Parts"):
                    break
                await asyncio.sleep(0.02)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    sent = count_calls(store._client(), "upload_part")
    info = await store.put(KEY, src, resume=slot)

    assert sent == [2, 3]
    assert info.sha256 == src.sha256
    listing = seaweed.client().list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listing["Contents"]] == [KEY]
    assert read_object(seaweed, bucket, KEY) == src.path.read_bytes()
    assert uploads_in_flight(seaweed, bucket) == []
    assert slot.load() is None


# -- Glacier rules (moto) --------------------------------------------------------------------


@pytest.fixture
async def moto_store(moto_s3: MotoS3Server) -> AsyncIterator[S3Store]:
    store = S3Store(
        S3Settings(bucket=moto_s3.make_bucket(), endpoint_url=moto_s3.endpoint,
                   region=moto_s3.region, prefix="tk"),
        access_key=moto_s3.access_key,
        secret_key=moto_s3.secret_key,
        part_size=PART,
    )  # fmt: skip
    yield store
    await store.close()


async def test_an_archived_object_is_read_only_after_a_restore(
    moto_store: S3Store, moto_s3: MotoS3Server, tmp_path: Path
) -> None:
    store = moto_store
    src = make_source(tmp_path, 2000)
    await store.put(KEY, src)
    bucket, s3_key = store.settings.bucket, f"tk/{KEY}"

    with pytest.raises(ArchivedError) as err:
        await fetch(store, KEY)
    assert err.value.hint and "restore" in err.value.hint
    assert (await store.restore_status(KEY)).state == "not_requested"

    moto_s3.hold_restore(bucket, s3_key)
    await store.request_restore(KEY, days=2, tier="Bulk")
    status = await store.restore_status(KEY)
    assert (status.state, status.readable, status.storage_class) == (
        "ongoing",
        False,
        "DEEP_ARCHIVE",
    )
    with pytest.raises(ArchivedError):
        await fetch(store, KEY)
    await store.request_restore(KEY, days=2, tier="Bulk")  # asking again is harmless

    moto_s3.complete_restore(bucket, s3_key)
    status = await store.restore_status(KEY)
    assert status.state == "restored" and status.readable and status.expiry is not None
    assert await fetch(store, KEY) == src.path.read_bytes()
    assert "ongoing-request" in (await store.stat(KEY)).extra["restore"]


async def test_a_standard_object_needs_no_restore(moto_store: S3Store, tmp_path: Path) -> None:
    store = moto_store
    src = make_source(tmp_path, 100)
    await store.put("metadata/m.json", src, storage_class="STANDARD")
    await store.request_restore("metadata/m.json", days=1)
    status = await store.restore_status("metadata/m.json")
    assert status.state == "not_archived" and status.readable
    assert await fetch(store, "metadata/m.json") == src.path.read_bytes()


async def test_versioned_kms_bucket(moto_s3: MotoS3Server, tmp_path: Path) -> None:
    """With SSE-KMS the ETag is no MD5; the bucket check reports versioning and its probe
    deletes the version it wrote, so nothing (not even a delete marker) is left."""
    bucket = moto_s3.make_bucket()
    raw = moto_s3.client()
    raw.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    settings = S3Settings(bucket=bucket, endpoint_url=moto_s3.endpoint, region=moto_s3.region,
                          sse="aws:kms", kms_key_id="alias/tierkeeper")  # fmt: skip
    store = S3Store(settings, access_key=moto_s3.access_key, secret_key=moto_s3.secret_key)
    try:
        src = make_source(tmp_path, 500)
        info = await store.put(KEY, src)
        assert (info.md5, info.sha256) == (None, src.sha256)
        assert (await store.stat(KEY)).sha256 == src.sha256

        report = await store.head_bucket()
        assert (report.exists, report.writable, report.versioning) == (True, True, "Enabled")
        versions = raw.list_object_versions(Bucket=bucket)
        left = [v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
        assert left == [KEY]
    finally:
        await store.close()
