"""A source packed for backup from the frames the DB holds: the digest a restore checks
is always that of the bytes the artifact decompresses to, whether it was taken from
the import's record or by decompressing, and a chunk that disagrees with its source
row is refused before anything is stored."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import zstandard

from core.errors import TierkeeperError
from core.local.db.read_pool import ReadPool
from core.local.packed_export import _known_digest, pack_source_with
from core.service import Service

# Built from pieces so no key-shaped literal sits in the repository.
KEY = "sk-ant-" + "api03-" + "Zq7" * 30


def line(n: int, content: str = "") -> bytes:
    message = {"role": "user", "content": content or f"line {n}"}
    record = {"type": "user", "uuid": f"u{n}", "timestamp": "2026-01-01T00:00:00Z",
              "message": message}  # fmt: skip
    return orjson.dumps(record) + b"\n"


def transcript(tmp_path: Path) -> Path:
    proj = tmp_path / "p" / "-proj"
    proj.mkdir(parents=True)
    return proj / "s1.jsonl"


async def damaged_chunk(service: Service, tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    """Ten lines imported, then the first stored chunk's frame replaced by `damage(frame)`
    behind the service's back; the chunk's row keeps its old size."""
    f = transcript(tmp_path)
    f.write_bytes(b"".join(line(n) for n in range(10)))
    await service.import_now([str(f)])
    await service.db.checkpoint()
    con = sqlite3.connect(service.workspace.db_path)
    (chunk_id, frame) = con.execute("SELECT id, data FROM raw_chunks LIMIT 1").fetchone()
    with con:
        con.execute("UPDATE raw_chunks SET data = ? WHERE id = ?", (damage(frame), chunk_id))
    con.close()


def same_length_other_bytes(frame: bytes) -> bytes:
    plain = zstandard.ZstdDecompressor().decompress(frame)
    other = plain.replace(b"line 1", b"LINE 1")
    assert other != plain and len(other) == len(plain)
    return zstandard.ZstdCompressor().compress(other)


async def packed(service: Service, tmp_path: Path) -> tuple[bytes, str, int, bool]:
    """(what the artifact decompresses to, the raw digest packed, its raw size, whether
    the import's digest stood in for decompressing)."""
    await service.db.checkpoint()
    (source_id,) = [int(r[0]) for r in await service.db.fetchall("SELECT id FROM sources")]
    pool = ReadPool(service.workspace.db_path)
    try:
        with pool.borrow() as conn:
            trusted = _known_digest(conn, source_id) is not None
        out = tmp_path / "artifact.zst"
        result = pack_source_with(pool, source_id, "lines", out)
    finally:
        pool.close()
    with open(out, "rb") as fh:
        plain = zstandard.ZstdDecompressor().stream_reader(fh).read()
    assert result.raw_sha256 is not None
    return plain, result.raw_sha256, result.raw_size, trusted


async def test_a_whole_file_is_packed_with_the_digest_the_import_took(
    service: Service, tmp_path: Path
) -> None:
    f = transcript(tmp_path)
    f.write_bytes(b"".join(line(n) for n in range(50)))
    await service.import_now([str(f)])

    plain, digest, size, trusted = await packed(service, tmp_path)

    assert trusted  # nothing decompressed to hash it
    assert plain == f.read_bytes()
    assert (digest, size) == (hashlib.sha256(plain).hexdigest(), len(plain))


async def test_a_file_read_half_a_line_at_a_time_then_appended_to_keeps_true_digests(
    service: Service, tmp_path: Path
) -> None:
    f = transcript(tmp_path)
    whole = b"".join(line(n) for n in range(20))
    f.write_bytes(whole[:-30])  # the last line cut short, as an agent mid-write leaves it
    await service.import_now([str(f)])
    plain, digest, size, _ = await packed(service, tmp_path)
    assert (digest, size) == (hashlib.sha256(plain).hexdigest(), len(plain))

    f.write_bytes(whole + line(20) + line(21))  # the line finished, two more after it
    await service.import_now([str(f)])
    plain, digest, size, trusted = await packed(service, tmp_path)

    assert trusted and plain == f.read_bytes()
    assert (digest, size) == (hashlib.sha256(plain).hexdigest(), len(plain))


async def test_a_redacted_file_is_hashed_as_stored_not_as_it_was_on_disk(
    service: Service, tmp_path: Path
) -> None:
    f = transcript(tmp_path)
    f.write_bytes(line(1) + line(2, f"use the key {KEY} to deploy") + line(3))
    await service.import_now([str(f)])

    plain, digest, size, trusted = await packed(service, tmp_path)

    assert not trusted  # the import's digest is of the secret-bearing file
    assert KEY.encode() not in plain
    assert (digest, size) == (hashlib.sha256(plain).hexdigest(), len(plain))
    assert digest != hashlib.sha256(f.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda frame: zstandard.ZstdCompressor().compress(b"other bytes\n"), "not the"),
        (lambda frame: b"not a zstd frame at all", "damaged"),
    ],
    ids=["frame-of-another-size", "garbage"],
)
async def test_a_chunk_that_disagrees_with_its_source_row_is_refused(
    service: Service, tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    await damaged_chunk(service, tmp_path, damage)  # only the frame itself tells

    with pytest.raises(TierkeeperError, match=message) as caught:
        await packed(service, tmp_path)
    assert caught.value.hint is not None and "re-import" in caught.value.hint


async def test_a_chunk_changed_in_the_db_since_import_is_caught_by_deep_verify_and_restore(
    service: Service, tmp_path: Path
) -> None:
    """The frames are copied as they are, so a chunk rewritten with other bytes of the same
    length goes into the backup; the digest it is checked against is the original file's."""
    await damaged_chunk(service, tmp_path, same_length_other_bytes)
    await service.add_folder_target("disk", str(tmp_path / "disk"))
    job = await service.start_backup(["s1"], "disk")
    assert (await service.jobs.wait(job.id)).state.value == "done"

    (shallow,) = await service.verify("disk")
    (deep,) = await service.verify("disk", deep=True)
    assert shallow.ok  # the target holds exactly what was sent
    assert not deep.ok and "decompresses to other bytes" in deep.problems[0]
    with pytest.raises(TierkeeperError, match="SHA-256"):
        await service.restore("s1", tmp_path / "back", target="disk")
    assert not (tmp_path / "back" / "s1.jsonl").exists()  # nothing written from bad bytes


async def test_deep_verify_passes_a_sound_backup(service: Service, tmp_path: Path) -> None:
    """Imported in two goes, the transcript is stored as two frames: every one of them is
    decompressed and hashed, not only the first."""
    f = transcript(tmp_path)
    f.write_bytes(b"".join(line(n) for n in range(10)))
    await service.import_now([str(f)])
    with open(f, "ab") as fh:
        fh.write(b"".join(line(n) for n in range(10, 20)))
    await service.import_now([str(f)])
    assert await service.db.scalar("SELECT count(*) FROM raw_chunks") == 2
    await service.add_folder_target("disk", str(tmp_path / "disk"))
    job = await service.start_backup(["s1"], "disk")
    assert (await service.jobs.wait(job.id)).state.value == "done"

    (deep,) = await service.verify("disk", deep=True)

    assert deep.ok, deep.problems
    restored = await service.restore("s1", tmp_path / "back", target="disk")
    assert [p.read_bytes() for p in restored if p.suffix == ".jsonl"] == [f.read_bytes()]
