"""Compression and tarballs: round trips, digests, LDM, damaged streams, bounded memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from core.errors import BadInputError
from core.packing import IntegrityError
from core.packing.compress import compress_file, decompress_file
from core.packing.extract import safe_extract
from core.packing.tarball import pack_tree

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _transcripts() -> list[Path]:
    return sorted((FIXTURES / "claude-code").rglob("*.jsonl"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def _snapshot_series(directory: Path, count: int, approx_size: int) -> list[tuple[str, Path]]:
    """`count` JSON snapshots of one evolving state: each differs from the last by ~1%."""
    rnd = random.Random(7)
    entries = approx_size // 64
    state = {f"key{i:06d}": rnd.getrandbits(160).to_bytes(20, "big").hex() for i in range(entries)}
    keys = list(state)
    files = []
    for n in range(count):
        for key in rnd.sample(keys, entries // 100):
            state[key] = rnd.getrandbits(160).to_bytes(20, "big").hex()
        path = directory / f"snap{n:03d}.json"
        path.write_bytes(json.dumps(state).encode())
        files.append((f"snapshots/{path.name}", path))
    return files


# --- single files -----------------------------------------------------------------------


@pytest.mark.parametrize("long_distance", [False, True])
def test_compress_round_trip_real_transcript_with_matching_digests(
    tmp_path: Path, long_distance: bool
) -> None:
    src = max(_transcripts(), key=lambda p: p.stat().st_size)
    data = src.read_bytes()
    packed = compress_file(src, tmp_path / "t.jsonl.zst", long_distance=long_distance)

    stored = (tmp_path / "t.jsonl.zst").read_bytes()
    assert packed.raw_size == len(data)
    assert packed.raw_sha256 == _sha256(data)
    assert packed.size == len(stored)
    assert packed.sha256 == _sha256(stored)
    assert packed.md5 == hashlib.md5(stored).hexdigest()
    assert packed.ratio == pytest.approx(len(stored) / len(data))
    assert packed.ratio < 1

    # any zstd reader can read it (no Tierkeeper-specific framing)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == data

    out = decompress_file(
        tmp_path / "t.jsonl.zst", tmp_path / "t.jsonl", expect_sha256=_sha256(data)
    )
    assert (tmp_path / "t.jsonl").read_bytes() == data
    assert (out.size, out.sha256) == (len(data), _sha256(data))
    assert _leftovers(tmp_path) == []


def test_empty_file_round_trips(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    packed = compress_file(tmp_path / "empty", tmp_path / "empty.zst")
    assert (packed.raw_size, packed.raw_sha256, packed.ratio) == (0, _sha256(b""), 1.0)
    decompress_file(tmp_path / "empty.zst", tmp_path / "back", expect_sha256=_sha256(b""))
    assert (tmp_path / "back").read_bytes() == b""


def test_compress_replaces_destination_only_when_done(tmp_path: Path) -> None:
    (tmp_path / "out.zst").write_bytes(b"previous artifact")
    with pytest.raises(FileNotFoundError):
        compress_file(tmp_path / "missing.jsonl", tmp_path / "out.zst")
    assert (tmp_path / "out.zst").read_bytes() == b"previous artifact"
    with pytest.raises(BadInputError, match="level 99"):
        compress_file(_transcripts()[0], tmp_path / "out.zst", level=99)
    assert _leftovers(tmp_path) == []


def test_decompress_digest_mismatch_writes_nothing(tmp_path: Path) -> None:
    src = _transcripts()[0]
    compress_file(src, tmp_path / "a.zst")
    (tmp_path / "keep").write_bytes(b"older good copy")
    with pytest.raises(IntegrityError, match="SHA-256") as err:
        decompress_file(tmp_path / "a.zst", tmp_path / "out", expect_sha256="0" * 64)
    assert "was not written" in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(IntegrityError):
        decompress_file(tmp_path / "a.zst", tmp_path / "keep", expect_sha256="0" * 64)
    assert (tmp_path / "keep").read_bytes() == b"older good copy"
    assert _leftovers(tmp_path) == []


def _compressed_sample(tmp_path: Path) -> bytes:
    src = tmp_path / "sample.jsonl"
    src.write_bytes(b"".join(p.read_bytes() for p in _transcripts()[:6]))
    compress_file(src, tmp_path / "sample.zst")
    return (tmp_path / "sample.zst").read_bytes()


@pytest.mark.parametrize("keep", ["half", "all_but_1", "all_but_4", "all_but_5", "header_only"])
def test_truncated_zst_is_refused_and_nothing_is_written(tmp_path: Path, keep: str) -> None:
    blob = _compressed_sample(tmp_path)
    cut = {
        "half": len(blob) // 2,
        "all_but_1": len(blob) - 1,
        "all_but_4": len(blob) - 4,  # exactly the checksum missing
        "all_but_5": len(blob) - 5,
        "header_only": 6,
    }[keep]
    (tmp_path / "cut.zst").write_bytes(blob[:cut])
    with pytest.raises(IntegrityError, match="truncated"):
        decompress_file(tmp_path / "cut.zst", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", [0.3, 0.5, 0.9, -2])
def test_corrupt_byte_is_detected(tmp_path: Path, where: float) -> None:
    blob = bytearray(_compressed_sample(tmp_path))
    pos = int(len(blob) * where) if where > 0 else len(blob) + int(where)
    blob[pos] ^= 0x20
    (tmp_path / "bad.zst").write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        decompress_file(tmp_path / "bad.zst", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"not zstd at all, just text", "not a zstd stream")],
)
def test_non_zstd_input_gets_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "x.zst").write_bytes(content)
    with pytest.raises(IntegrityError, match=message):
        decompress_file(tmp_path / "x.zst", tmp_path / "out")


def test_trailing_garbage_after_the_frame_is_refused(tmp_path: Path) -> None:
    blob = _compressed_sample(tmp_path)
    (tmp_path / "x.zst").write_bytes(blob + b"\x00junk")
    with pytest.raises(IntegrityError):
        decompress_file(tmp_path / "x.zst", tmp_path / "out")


# --- tarballs ---------------------------------------------------------------------------


def test_pack_tree_round_trip_is_byte_identical(tmp_path: Path) -> None:
    sources = _transcripts()[:8]
    files = [(f"transcripts/{p.name}", p) for p in sources]
    files.append(("handoff.md", tmp_path / "handoff.md"))
    (tmp_path / "handoff.md").write_text("# Handoff\n\nnext: résumé ✓\n")
    packed = pack_tree(files, tmp_path / "s.tar.zst")

    stored = (tmp_path / "s.tar.zst").read_bytes()
    assert (packed.size, packed.sha256) == (len(stored), _sha256(stored))
    assert packed.md5 == hashlib.md5(stored).hexdigest()
    tar_bytes = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
    assert (packed.raw_size, packed.raw_sha256) == (len(tar_bytes), _sha256(tar_bytes))

    by_name = dict(files)
    assert [m.name for m in packed.members] == sorted(by_name)
    for m in packed.members:
        data = by_name[m.name].read_bytes()
        assert (m.size, m.sha256) == (len(data), _sha256(data))

    out = safe_extract(tmp_path / "s.tar.zst", tmp_path / "restore")
    assert sorted(out) == sorted(tmp_path / "restore" / name for name in by_name)
    for name, src in files:
        restored = tmp_path / "restore" / name
        assert restored.read_bytes() == src.read_bytes()
        assert int(restored.stat().st_mtime) == int(src.stat().st_mtime)


def test_pack_tree_is_deterministic_and_plain_tar(tmp_path: Path) -> None:
    sources = _transcripts()[:5]
    files = [(p.name, p) for p in sources]
    a = pack_tree(files, tmp_path / "a.tar.zst")
    b = pack_tree(list(reversed(files)), tmp_path / "b.tar.zst")
    assert a.sha256 == b.sha256
    assert (tmp_path / "a.tar.zst").read_bytes() == (tmp_path / "b.tar.zst").read_bytes()

    tar_bytes = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((tmp_path / "a.tar.zst").read_bytes())
    )
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tf:
        infos = tf.getmembers()
    assert [i.name for i in infos] == sorted(p.name for p in sources)
    for info, src in zip(infos, sorted(sources, key=lambda p: p.name), strict=True):
        assert info.isreg()
        assert (info.uid, info.gid, info.uname, info.gname, info.mode) == (0, 0, "", "", 0o644)
        assert info.mtime == int(src.stat().st_mtime)


def test_pack_tree_refuses_bad_names_and_non_files(tmp_path: Path) -> None:
    src = _transcripts()[0]
    for name in ["../up.jsonl", "/abs.jsonl", "a/../../b", "", "dir\\x"]:
        with pytest.raises(BadInputError, match="not allowed"):
            pack_tree([(name, src)], tmp_path / "x.tar.zst")
    with pytest.raises(BadInputError, match="twice"):
        pack_tree([("a", src), ("./a", src)], tmp_path / "x.tar.zst")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BadInputError, match="not a regular file"):
        pack_tree([("fifo", tmp_path / "fifo")], tmp_path / "x.tar.zst")
    assert not (tmp_path / "x.tar.zst").exists()
    assert _leftovers(tmp_path) == []


def test_long_distance_matching_makes_near_duplicate_snapshots_cheap(tmp_path: Path) -> None:
    files = _snapshot_series(tmp_path, count=20, approx_size=2 * 2**20)
    plain = pack_tree(files, tmp_path / "plain.tar.zst", long_distance=False)
    ldm = pack_tree(files, tmp_path / "ldm.tar.zst", long_distance=True)
    assert plain.raw_sha256 == ldm.raw_sha256  # same tar, only the compression differs
    assert ldm.ratio < 0.5 * plain.ratio
    out = decompress_file(
        tmp_path / "ldm.tar.zst", tmp_path / "ldm.tar", expect_sha256=ldm.raw_sha256
    )
    assert out.size == ldm.raw_size


def _big_tree(directory: Path, files: int, size: int) -> list[tuple[str, Path]]:
    """Compressible but not trivially so: text with random words, no repeats within 2 MiB."""
    rnd = random.Random(3)
    words = [rnd.getrandbits(40).to_bytes(5, "big").hex().encode() for _ in range(50_000)]
    out = []
    for n in range(files):
        path = directory / f"part{n}.jsonl"
        with open(path, "wb") as fh:
            written = 0
            while written < size:
                line = b'{"n":%d,"t":"%s"}\n' % (written, b" ".join(rnd.choices(words, k=40)))
                fh.write(line)
                written += len(line)
        out.append((path.name, path))
    return out


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return _big_tree(tmp_path_factory.mktemp("big"), files=4, size=50 * 2**20)


def test_packing_200_mb_keeps_python_memory_flat(
    tmp_path: Path, big_tree: list[tuple[str, Path]]
) -> None:
    files = big_tree
    tracemalloc.start()
    try:
        packed = pack_tree(files, tmp_path / "big.tar.zst", long_distance=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert packed.raw_size > 200 * 2**20
    assert peak < 16 * 2**20, f"peak Python allocation {peak / 2**20:.1f} MiB"

    tracemalloc.start()
    try:
        safe_extract(
            tmp_path / "big.tar.zst",
            tmp_path / "out",
            expected={m.name: m.sha256 for m in packed.members},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak Python allocation {peak / 2**20:.1f} MiB"


_RSS_PROBE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from core.packing.compress import decompress_file
    from core.packing.tarball import pack_tree

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    work = Path(sys.argv[1])
    files = [(p.name, p) for p in sorted(work.glob("part*.jsonl"))]
    base = peak()
    pack_tree(files, work / "plain.tar.zst", long_distance=False)
    decompress_file(work / "plain.tar.zst", work / "plain.tar")
    plain = peak() - base
    pack_tree(files, work / "ldm.tar.zst", long_distance=True)
    decompress_file(work / "ldm.tar.zst", work / "ldm.tar")
    print(plain, peak() - base)
    """
)


def test_packing_200_mb_keeps_process_memory_flat(
    tmp_path: Path, big_tree: list[tuple[str, Path]]
) -> None:
    """Counts zstd's own (C) buffers too: only the window, never the data, may be held."""
    for name, src in big_tree:
        (tmp_path / name).symlink_to(src)
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(tmp_path)],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    plain, ldm = (int(v) for v in done.stdout.split())
    assert plain < 32 * 2**20, f"RSS grew {plain / 2**20:.0f} MiB packing 200 MiB"
    # long-distance matching may hold its 128 MiB window, and nothing like the data
    assert ldm < (128 + 32) * 2**20, f"RSS grew {ldm / 2**20:.0f} MiB packing 200 MiB with LDM"
