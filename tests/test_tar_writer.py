"""The phase archive's tar writer: what it writes must read back with any tar reader."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from core.packing.tar_writer import ShortMemberError, TarWriter, fixed_member

FILES = {
    "p1/sessions/session_a/transcript.jsonl": b'{"role":"user","text":"hi"}\n' * 5000,
    "p1/sessions/session_a/empty.md": b"",
    "p1/sessions/session_b/exactly-one-block": b"x" * 512,
    "p1/sessions/session_b/" + "long-name-" * 12 + ".json": b"{}",  # > 100 chars: PAX header
    "p1/sessions/session_b/ünïcode.md": "naïve — ✓\n".encode(),
}


def _write(files: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    out = io.BytesIO()
    tar = TarWriter(out)
    digests = {}
    for name, data in files.items():
        sha = hashlib.sha256()
        tar.add(fixed_member(name, len(data)), io.BytesIO(data), sha)
        digests[name] = sha.hexdigest()
    tar.close()
    assert tar.size == len(out.getvalue())
    return out.getvalue(), digests


def test_members_read_back_whole_in_stream_and_random_mode() -> None:
    blob, digests = _write(FILES)
    assert digests == {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    assert len(blob) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r|") as tar:
        seen = {}
        for info in tar:
            f = tar.extractfile(info)
            assert f is not None
            seen[info.name] = f.read()
            assert (info.uid, info.uname, info.mode) == (0, "", 0o644)
    assert seen == FILES
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        assert tar.getnames() == list(FILES)


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_extracts_it(tmp_path: Path) -> None:
    blob, _ = _write(FILES)
    (tmp_path / "a.tar").write_bytes(blob)
    subprocess.run(["tar", "-xf", "a.tar"], cwd=tmp_path, check=True)
    for name, data in FILES.items():
        assert (tmp_path / name).read_bytes() == data


def test_a_source_shorter_than_promised_is_refused() -> None:
    tar = TarWriter(io.BytesIO())
    with pytest.raises(ShortMemberError, match="3 bytes missing"):
        tar.add(fixed_member("x", 10), io.BytesIO(b"1234567"), hashlib.sha256())
