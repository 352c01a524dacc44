"""Manifests: round trip, canonical bytes, refusal of unknown or malformed input, verify_file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from core import __version__
from core.errors import BadInputError
from core.packing.compress import compress_file
from core.packing.extract import safe_extract
from core.packing.manifest import Manifest, ManifestFile, verify_file
from core.packing.tarball import pack_tree

WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def _sample(tmp_path: Path) -> tuple[Manifest, Path]:
    (tmp_path / "transcript.jsonl").write_bytes(b'{"role":"user","text":"hi"}\n' * 200)
    (tmp_path / "snap001.json").write_bytes(b'{"step":1}' * 100)
    (tmp_path / "snap002.json").write_bytes(b'{"step":2}' * 100)
    t = compress_file(tmp_path / "transcript.jsonl", tmp_path / "transcript.jsonl.zst")
    s = pack_tree(
        [("snap001.json", tmp_path / "snap001.json"), ("snap002.json", tmp_path / "snap002.json")],
        tmp_path / "snapshots.tar.zst",
    )
    transcript = ManifestFile.from_packed("transcript.jsonl", "transcript.jsonl.zst", t)
    snapshots = ManifestFile.from_packed("snapshots.tar", "snapshots.tar.zst", s)
    manifest = Manifest(
        created_at=WHEN,
        phase="phase-1",
        session_id="20250301_123000",
        level=3,
        long_distance=True,
        files=(
            transcript.model_copy(update={"remote_md5": t.md5}),
            snapshots,
        ),
    )
    return manifest, tmp_path


def test_round_trip_and_canonical_bytes(tmp_path: Path) -> None:
    manifest, _ = _sample(tmp_path)
    data = manifest.to_bytes()
    back = Manifest.parse(data)
    assert back == manifest
    assert back.to_bytes() == data

    reordered = manifest.model_copy(update={"files": tuple(reversed(manifest.files))})
    assert Manifest.model_validate(reordered.model_dump()).to_bytes() == data

    raw = orjson.loads(data)
    assert raw["format_version"] == 1
    assert raw["tool_version"] == __version__
    assert raw["created_at"] == "2025-03-01T12:30:00Z"
    assert (raw["compression"], raw["encryption"]) == ("zstd", "none")
    assert [f["name"] for f in raw["files"]] == ["snapshots.tar", "transcript.jsonl"]
    assert list(raw) == sorted(raw)
    assert data.startswith(b"{\n  ")  # indented, readable by a person


def test_manifest_records_what_a_restore_needs(tmp_path: Path) -> None:
    manifest, folder = _sample(tmp_path)
    entry = Manifest.parse(manifest.to_bytes()).file("snapshots.tar.zst")
    assert entry is not None
    assert verify_file(entry, folder / "snapshots.tar.zst") == []
    out = safe_extract(
        folder / entry.stored_name, folder / "restore", expected=entry.member_digests()
    )
    assert sorted(p.name for p in out) == ["snap001.json", "snap002.json"]


@pytest.mark.parametrize("version", [3, 99])
def test_newer_format_version_is_refused_with_a_clear_message(tmp_path: Path, version: int) -> None:
    manifest, _ = _sample(tmp_path)
    raw = orjson.loads(manifest.to_bytes())
    raw["format_version"] = version
    with pytest.raises(BadInputError, match=f"format_version {version}") as err:
        Manifest.parse(orjson.dumps(raw))
    assert "update Tierkeeper" in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b'{"format_version": 1, "files": [', "not valid JSON"),
        (b"[1, 2]", "JSON list"),
        (b'{"files": []}', "no usable format_version"),
        (b'{"format_version": "1"}', "no usable format_version"),
        (b'{"format_version": true}', "no usable format_version"),
        (b'{"format_version": 0}', "format_version 0"),
    ],
)
def test_malformed_manifests_get_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        Manifest.parse(data)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda m: m["files"][0].update(sha256="XYZ"), "files.0.sha256"),
        (lambda m: m["files"][1].update(stored_size=-1), "files.1.stored_size"),
        (lambda m: m["files"][0].update(stored_name="../../etc/passwd"), "files.0.stored_name"),
        (lambda m: m.update(encryption="aes-gcm"), "encryption"),
        (lambda m: m.update(compression="gzip"), "compression"),
        (lambda m: m.update(created_at="2025-03-01T12:30:00"), "created_at"),
        (lambda m: m.update(surprise=True), "surprise"),
        (lambda m: m.update(phase=None, session_id=None), "phase, its session"),
        (lambda m: m["files"].append(dict(m["files"][0])), "listed twice"),
    ],
)
def test_invalid_fields_are_named_in_the_error(tmp_path: Path, change: object, where: str) -> None:
    manifest, _ = _sample(tmp_path)
    raw = orjson.loads(manifest.to_bytes())
    change(raw)  # type: ignore[operator]
    with pytest.raises(BadInputError, match="malformed") as err:
        Manifest.parse(orjson.dumps(raw))
    assert where in str(err.value)


def test_verify_file_reports_each_kind_of_problem(tmp_path: Path) -> None:
    manifest, folder = _sample(tmp_path)
    entry = manifest.file("transcript.jsonl")
    assert entry is not None
    stored = folder / "transcript.jsonl.zst"
    assert verify_file(entry, stored) == []
    assert verify_file(entry, folder / "transcript.jsonl", stored=False) == []

    assert verify_file(entry, folder / "gone.zst") == [
        f"transcript.jsonl.zst: missing ({folder / 'gone.zst'} does not exist)"
    ]

    blob = bytearray(stored.read_bytes())
    stored.write_bytes(bytes(blob[:-1]))
    (problem,) = verify_file(entry, stored)
    assert f"size is {len(blob) - 1} bytes, the manifest says {len(blob)}" in problem

    blob[10] ^= 0xFF
    stored.write_bytes(bytes(blob))
    (problem,) = verify_file(entry, stored)
    assert f"SHA-256 is {hashlib.sha256(blob).hexdigest()}" in problem

    (folder / "transcript.jsonl").write_bytes(b"edited locally")
    (problem,) = verify_file(entry, folder / "transcript.jsonl", stored=False)
    assert problem.startswith("transcript.jsonl: size is 14 bytes")
