"""Streaming a phase archive to S3 while it is built: SeaweedFS checks every part's checksum.

The producer here is the caller's own code (seeded random bytes written in
blocks, as a phase tarball is written by its builder), so what is tested is
the store: parts go up while the producer writes, a cancel or a failed build
leaves no multipart upload behind, a killed process resumes from the parts S3
holds, and a part damaged on the way is refused. The archive-level tests run
`archive_phase` itself against the same server.
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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from core.packing import IntegrityError
from core.packing.keys import new_key_params
from core.packing.manifest import Manifest
from core.remote.base import ObjectNotFound, PermanentError
from core.remote.folder import FolderStore
from core.remote.s3 import S3Settings, S3Store
from core.remote.s3_objects import COMPOSITE_EXTRA
from core.remote.s3_stream import composite_checksum
from core.service import Service
from core.tier3.archive import archive_phase, manifest_key, phase_sources
from core.tier3.archive_restore import restore_from_archive
from core.tier3.phase_pack import build_phase_tarball
from tests.drive_put_child import JsonFileSlot
from tests.s3_server.fixtures import SeaweedHarness, seaweed
from tests.s3_stream_child import seeded_producer
from tests.support import REPO
from tests.test_archive_phase import closed_phase
from tests.test_s3_store import (
    BIG,
    PART,
    MakeStore,
    MemorySlot,
    read_object,
    stores,
    uploads_in_flight,
)

__all__ = ["closed_phase", "seaweed", "stores"]  # pytest finds the fixtures through this module

KEY = "p1.tar.zst"
TAG = "a" * 64


def seeded(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def record(
    client: Any, method: str, change: Callable[[dict[str, Any]], None] | None = None
) -> list[int]:
    """The PartNumber of each call of one client method; `change` may alter a call's
    arguments first (to damage a body on the way, which no real network does on cue)."""
    real = getattr(client, method)
    calls: list[int] = []

    def wrapper(**kwargs: Any) -> Any:
        calls.append(int(kwargs.get("PartNumber", 0)))
        if change is not None:
            change(kwargs)
        return real(**kwargs)

    setattr(client, method, wrapper)
    return calls


# -- the streamed put ---------------------------------------------------------------------


async def test_parts_go_up_while_the_producer_is_still_writing(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    store = stores()
    bucket = store.settings.bucket
    seen_while_writing: list[int] = []

    def produce(sink: Any) -> str:
        data = seeded(BIG, 1)
        for at in range(0, BIG, 256 * 1024):
            sink.write(data[at : at + 256 * 1024])
            if at >= 2 * PART and not seen_while_writing:
                deadline = time.monotonic() + 10  # part 1 must be on S3 before the end
                while time.monotonic() < deadline:
                    upload = uploads_in_flight(seaweed, bucket)
                    if upload and seaweed.client().list_parts(
                        Bucket=bucket, Key=KEY, UploadId=upload[0]["UploadId"]
                    ).get("Parts"):
                        seen_while_writing.append(at)
                        break
                    time.sleep(0.02)
        return "built"

    slot = MemorySlot()
    result, info = await store.put_stream(KEY, produce, tag=TAG, size_bound=BIG, resume=slot)

    data = seeded(BIG, 1)
    assert result == "built" and seen_while_writing
    assert info.size == BIG
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 is None  # S3 keeps no MD5 of a multipart object: nothing to check one
    assert read_object(seaweed, bucket, KEY) == data
    parts = [hashlib.sha256(data[i : i + PART]).digest() for i in range(0, BIG, PART)]
    stat = await store.stat(KEY)
    assert stat.extra[COMPOSITE_EXTRA] == info.extra[COMPOSITE_EXTRA] == composite_checksum(parts)
    assert slot.saved[0] is not None and slot.handle is None
    assert uploads_in_flight(seaweed, bucket) == []


async def test_a_cancel_mid_build_leaves_no_multipart_upload(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    store = stores()
    bucket = store.settings.bucket
    gate = threading.Event()
    written = threading.Event()

    def produce(sink: Any) -> None:
        data = seeded(2 * PART, 2)
        sink.write(data)  # two whole parts, handed to the uploaders
        written.set()
        gate.wait(10)  # the build goes on (a slow session download) …
        sink.write(b"more")  # … and learns of the cancel at its next write

    slot = MemorySlot()
    task = asyncio.create_task(store.put_stream(KEY, produce, tag=TAG, size_bound=BIG, resume=slot))
    while not written.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert uploads_in_flight(seaweed, bucket) == []
    assert slot.saved[0] is not None and slot.handle is None
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)


async def test_a_failed_build_aborts_the_upload_and_says_why(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    store = stores()
    bucket = store.settings.bucket

    def produce(sink: Any) -> None:
        sink.write(seeded(PART + 10, 3))
        raise IntegrityError("session x does not match its Tier 2 manifest")

    slot = MemorySlot()
    with pytest.raises(IntegrityError, match="does not match its Tier 2 manifest"):
        await store.put_stream(KEY, produce, tag=TAG, size_bound=BIG, resume=slot)
    assert uploads_in_flight(seaweed, bucket) == []
    assert slot.handle is None
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)


def _damage(kwargs: dict[str, Any]) -> None:
    body = bytearray(b"".join(iter(lambda: kwargs["Body"].read(1 << 20), b"")))
    body[len(body) // 2] ^= 0x01
    kwargs["Body"] = bytes(body)


async def test_a_part_damaged_once_is_sent_again(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    store = stores()
    damaged = 0

    def once(kwargs: dict[str, Any]) -> None:
        nonlocal damaged
        if kwargs["PartNumber"] == 2 and damaged == 0:
            damaged += 1
            _damage(kwargs)

    sent = record(store._client(), "upload_part", once)
    _, info = await store.put_stream(KEY, seeded_producer(BIG, 4), tag=TAG, size_bound=BIG)

    assert sorted(sent) == [1, 2, 2, 3]
    assert info.sha256 == hashlib.sha256(seeded(BIG, 4)).hexdigest()
    assert read_object(seaweed, store.settings.bucket, KEY) == seeded(BIG, 4)


async def test_a_part_damaged_again_is_refused_and_nothing_stored(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    store = stores()
    bucket = store.settings.bucket
    record(store._client(), "upload_part", _damage)
    slot = MemorySlot()

    with pytest.raises(PermanentError, match="again received damaged data") as err:
        await store.put_stream(KEY, seeded_producer(BIG, 5), tag=TAG, size_bound=BIG, resume=slot)

    assert err.value.hint and "corrupting uploads" in err.value.hint
    assert uploads_in_flight(seaweed, bucket) == []
    assert slot.handle is None
    with pytest.raises(ObjectNotFound):
        await store.stat(KEY)


# -- restarts -------------------------------------------------------------------------------


async def test_a_killed_stream_resumes_in_a_new_process_without_resending_parts(
    stores: MakeStore, seaweed: SeaweedHarness, tmp_path: Path
) -> None:
    store = stores()
    bucket = store.settings.bucket
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
    slot = JsonFileSlot(slot_file)
    child_args = [str(slot_file), KEY, str(BIG), "6", TAG]
    with open(tmp_path / "child.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("s3_stream_child.py")), *child_args],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
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
    held = seaweed.client().list_parts(Bucket=bucket, Key=KEY, UploadId=upload_id)["Parts"]

    sent = record(store._client(), "upload_part")
    created = record(store._client(), "create_multipart_upload")
    _, info = await store.put_stream(
        KEY, seeded_producer(BIG, 6), tag=TAG, size_bound=BIG, resume=slot
    )

    # the same bytes again: only the parts S3 did not hold go up (held may be 1 or 2,
    # whichever of the two uploaders got through before the network stalled)
    assert sorted(sent) == sorted({1, 2, 3} - {int(p["PartNumber"]) for p in held})
    assert created == []
    assert info.sha256 == hashlib.sha256(seeded(BIG, 6)).hexdigest()
    assert read_object(seaweed, bucket, KEY) == seeded(BIG, 6)
    assert uploads_in_flight(seaweed, bucket) == [] and slot.load() is None


async def test_other_bytes_under_a_kept_upload_id_are_all_sent_again(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    """An encrypted tarball differs on every build (a fresh salt): the kept upload is
    reused, but no part S3 holds matches, so every part goes again — none is trusted."""
    first = stores(abort_on_cancel=False)
    bucket = first.settings.bucket
    slot = MemorySlot()
    gate, resume_build = threading.Event(), threading.Event()

    def interrupted(sink: Any) -> None:
        sink.write(seeded(2 * PART, 7))
        gate.set()
        resume_build.wait(10)
        sink.write(b"more")  # where the cancel is noticed

    task = asyncio.create_task(
        first.put_stream(KEY, interrupted, tag=TAG, size_bound=BIG, resume=slot)
    )
    while not gate.is_set() or slot.handle is None:  # the upload opens beside the build
        await asyncio.sleep(0.01)
    while (
        not seaweed.client()
        .list_parts(Bucket=bucket, Key=KEY, UploadId=slot.handle or "")
        .get("Parts")
    ):
        await asyncio.sleep(0.02)
    task.cancel()
    resume_build.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    kept = slot.handle
    assert kept is not None and [u["UploadId"] for u in uploads_in_flight(seaweed, bucket)] == [
        kept
    ]

    second = stores(bucket)
    sent = record(second._client(), "upload_part")
    await second.put_stream(KEY, seeded_producer(BIG, 8), tag=TAG, size_bound=BIG, resume=slot)
    assert sorted(sent) == [1, 2, 3]
    assert read_object(seaweed, bucket, KEY) == seeded(BIG, 8)
    assert uploads_in_flight(seaweed, bucket) == []


async def test_an_upload_no_slot_names_any_more_is_aborted(
    stores: MakeStore, seaweed: SeaweedHarness
) -> None:
    """A slot for other inputs (the phase changed since) does not name the old upload:
    it is aborted when the new one starts, never left to bill for its parts."""
    store = stores()
    bucket = store.settings.bucket
    old = seaweed.client().create_multipart_upload(Bucket=bucket, Key=KEY)["UploadId"]
    _, info = await store.put_stream(KEY, seeded_producer(100_000, 9), tag=TAG, size_bound=BIG)
    assert info.size == 100_000
    assert old not in [u["UploadId"] for u in uploads_in_flight(seaweed, bucket)]
    assert uploads_in_flight(seaweed, bucket) == []


# -- the archive job on S3 ------------------------------------------------------------------

ClosedPhase = tuple[Path, Path, list[str]]


def s3_store(seaweed: SeaweedHarness, bucket: str) -> S3Store:
    settings = S3Settings(bucket=bucket, endpoint_url=seaweed.endpoint, region=seaweed.region,
                          storage_class="STANDARD")  # fmt: skip
    return S3Store(settings, name="deep", access_key=seaweed.access_key,
                   secret_key=seaweed.secret_key, part_size=PART)  # fmt: skip


def build_bytes(db_sources: Any, tier2: Path) -> bytes:
    store = FolderStore(tier2, name="t2")
    out = io.BytesIO()

    def fetch(key: str, dest: Any) -> None:
        asyncio.run(store.get(key, dest))

    build_phase_tarball("p1", db_sources, out, fetch)
    return out.getvalue()


async def test_the_phase_tarball_is_rebuilt_byte_for_byte(
    closed_phase: ClosedPhase,
) -> None:
    """What lets a restarted archive skip the parts S3 already holds."""
    ws, tier2, _ = closed_phase
    async with await Service.start(ws) as svc:
        sources = await phase_sources(svc.db, "p1", "t2")
    first = await asyncio.to_thread(build_bytes, sources, tier2)
    again = await asyncio.to_thread(build_bytes, sources, tier2)
    assert first == again and zstandard.get_frame_parameters(first).has_checksum


async def test_an_encrypted_phase_streams_to_s3_and_comes_back(
    closed_phase: ClosedPhase,
    seaweed: SeaweedHarness,
    tmp_path: Path,
) -> None:
    ws, tier2, ids = closed_phase
    key = new_key_params(n=2**10).derive("correct horse battery staple")
    bucket = seaweed.make_bucket()
    store = s3_store(seaweed, bucket)
    try:
        async with await Service.start(ws) as svc:
            result = await archive_phase(
                svc.db, "p1", source=FolderStore(tier2, name="t2"), source_name="t2",
                archive=store, archive_name="deep-enc", archive_key=key,
            )  # fmt: skip
        assert result.key == "p1.tar.zst.enc"
        stored = read_object(seaweed, bucket, result.key)
        manifest = Manifest.parse(read_object(seaweed, bucket, manifest_key("p1")))
        (entry,) = manifest.files
        assert manifest.encryption != "none" and manifest.key_id == key.key_id
        assert hashlib.sha256(stored).hexdigest() == entry.stored_sha256
        assert len(stored) == entry.stored_size and not stored.startswith(b"\x28\xb5\x2f\xfd")
        restored = await restore_from_archive(
            store, result.key, manifest, tmp_path / "back", sessions=[ids[0]], secret=key
        )
        log = ws / "logs" / f"session_{ids[0]}.jsonl"
        back = tmp_path / "back" / "p1" / "sessions" / f"session_{ids[0]}" / log.name
        assert back in restored and back.read_bytes() == log.read_bytes()
        assert uploads_in_flight(seaweed, bucket) == []
    finally:
        await store.close()


async def test_a_damaged_tier2_copy_leaves_nothing_on_s3(
    closed_phase: ClosedPhase,
    seaweed: SeaweedHarness,
    tmp_path: Path,
) -> None:
    """Parts may already be up when the damage is found: the upload is aborted, so no
    object (and no upload to bill for) is left, and no archive is recorded."""
    ws, tier2, ids = closed_phase
    copy = tmp_path / "t2copy"
    subprocess.run(["cp", "-a", str(tier2), str(copy)], check=True)
    victim = next((copy / "Tierkeeper").rglob(f"session_{ids[1]}.jsonl.zst"))
    data = bytearray(victim.read_bytes())
    data[-20] ^= 0x55
    victim.write_bytes(bytes(data))
    bucket = seaweed.make_bucket()
    store = s3_store(seaweed, bucket)
    try:
        async with await Service.start(ws) as svc:
            with pytest.raises(IntegrityError):
                await archive_phase(
                    svc.db, "p1", source=FolderStore(copy, name="t2"), source_name="t2",
                    archive=store, archive_name="deep-bad",
                )  # fmt: skip
            assert (
                await svc.db.scalar("SELECT count(*) FROM archives WHERE target = 'deep-bad'") == 0
            )
    finally:
        await store.close()
    assert uploads_in_flight(seaweed, bucket) == []
    assert "Contents" not in seaweed.client().list_objects_v2(Bucket=bucket)
