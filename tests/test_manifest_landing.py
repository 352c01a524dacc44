"""A manifest counts as landed only once the store holds it byte for byte
(core/tier2/manifest_landing.py): on Drive the put's own md5Checksum, computed by the
server from what it stored, is the proof; any other store gives the manifest back."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from core.packing import IntegrityError
from core.remote.base import digests_what_it_holds
from core.remote.drive import DriveStore
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore
from core.tier2.manifest_landing import put_manifest
from tests.drive_server.fixture import DriveHarness, drive_fixture

drive = drive_fixture()

MANIFEST = b'{"files": [], "session_id": "20261127_120000"}'
KEY = "p/sessions/session_20261127_120000/manifest.json"


@pytest.fixture
async def drive_store(drive: DriveHarness) -> AsyncIterator[RetryingStore]:
    inner = DriveStore(drive.credentials(), api_root=drive.base_url, timeout=15.0)
    yield RetryingStore(inner, attempts=2, base_delay=0.01, max_delay=0.01)
    await inner.close()


def written(tmp_path: Path, data: bytes = MANIFEST) -> Path:
    path = tmp_path / "manifest.json"
    path.write_bytes(data)
    return path


async def test_on_drive_the_puts_md5_is_the_proof_and_nothing_is_read_back(
    drive: DriveHarness, drive_store: RetryingStore, tmp_path: Path
) -> None:
    assert digests_what_it_holds(drive_store)  # seen through the wrapper
    drive.traffic.reset()

    await put_manifest(drive_store, KEY, written(tmp_path), MANIFEST)

    assert drive.traffic.count("upload.multipart") == 1
    assert drive.traffic.count("files.get_media") == 0
    back = io.BytesIO()
    await drive_store.get(KEY, back)
    assert back.getvalue() == MANIFEST


async def test_a_manifest_whose_md5_drive_reports_otherwise_is_refused(
    drive: DriveHarness, drive_store: RetryingStore, tmp_path: Path
) -> None:
    """The bytes Google holds may even be right: what it says of them is all there is to
    go by without a read, and a backup is not recorded on a report that disagrees."""
    drive.faults.wrong_md5()

    with pytest.raises(IntegrityError, match="reports a manifest other") as caught:
        await put_manifest(drive_store, KEY, written(tmp_path), MANIFEST)

    assert f"sent {len(MANIFEST)} bytes" in str(caught.value)
    assert caught.value.hint is not None and "run the backup again" in caught.value.hint


class ReadsOtherBytes(FolderStore):
    """A disk that hands back something other than what was written to it: a fault no
    test can make a real disk produce on demand."""

    async def get(self, key: str, dest: BinaryIO, **ranged: Any) -> int:
        scratch = io.BytesIO()
        n = await super().get(key, scratch, **ranged)
        dest.write(scratch.getvalue()[:-1] + b"!")
        return n


async def test_a_folder_only_echoes_the_digest_so_its_manifest_is_read_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "sound").mkdir()
    (tmp_path / "lying").mkdir()
    sound = FolderStore(tmp_path / "sound")
    assert not digests_what_it_holds(sound)
    await put_manifest(sound, KEY, written(tmp_path), MANIFEST)
    assert (tmp_path / "sound" / KEY).read_bytes() == MANIFEST

    lying = ReadsOtherBytes(tmp_path / "lying")
    with pytest.raises(IntegrityError, match="read back from the store differs"):
        await put_manifest(lying, KEY, written(tmp_path), MANIFEST)
