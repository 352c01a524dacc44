"""safe_extract against hostile, damaged and colliding archives."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from core.errors import BadInputError, NotFoundError
from core.packing import IntegrityError, Packed
from core.packing.extract import UnsafeArchiveError, safe_extract
from core.packing.tarball import pack_tree


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hostile(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """Write a .tar.zst exactly as given, bypassing every check pack_tree makes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(buf.getvalue()))
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def _tree(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(archive folder, dest) inside an outer folder whose contents we watch."""
    outer = tmp_path / "outer"
    (outer / "archives").mkdir(parents=True)
    return outer / "archives", outer / "dest"


HOSTILE = {
    "parent": ([("ok.txt", b"fine"), ("../evil", b"pwned")], "'..'"),
    "nested_parent": ([("a/../../evil", b"pwned")], "'..'"),
    "absolute": ([("/tmp/evil-abs", b"pwned")], "absolute"),
    "symlink": ([_special("passwd", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
    "symlink_relative": ([_special("up", tarfile.SYMTYPE, "..")], "symbolic link"),
    "hardlink": ([("ok.txt", b"x"), _special("h", tarfile.LNKTYPE, "ok.txt")], "hard link"),
    "hardlink_out": ([_special("h", tarfile.LNKTYPE, "/etc/passwd")], "hard link"),
    "chardev": ([_special("null", tarfile.CHRTYPE)], "device node"),
    "blockdev": ([_special("sda", tarfile.BLKTYPE)], "device node"),
    "fifo": ([_special("pipe", tarfile.FIFOTYPE)], "FIFO"),
    "backslash": ([("..\\evil", b"pwned")], "backslash"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_nothing_is_written(
    sandbox: tuple[Path, Path], case: str
) -> None:
    archives, dest = sandbox
    entries, message = HOSTILE[case]
    archive = _hostile(archives / f"{case}.tar.zst", entries)
    outer_before = _tree(archives.parent)

    with pytest.raises(UnsafeArchiveError, match=message) as err:
        safe_extract(archive, dest)

    assert "Refusing" in str(err.value)
    assert _tree(dest) == set()  # not even the harmless member that came first
    assert _tree(archives.parent) - {"dest"} == outer_before
    assert not Path("/tmp/evil-abs").exists()


def test_hostile_member_refuses_even_when_not_selected(sandbox: tuple[Path, Path]) -> None:
    archives, dest = sandbox
    archive = _hostile(
        archives / "mixed.tar.zst",
        [("good.txt", b"good"), _special("link", tarfile.SYMTYPE, "/etc/passwd")],
    )
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest, members={"good.txt"})
    assert _tree(dest) == set()


def test_symlink_already_in_dest_cannot_be_followed_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    archive = _hostile(tmp_path / "a.tar.zst", [("sub/evil", b"pwned")])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "dup.tar.zst", [("a.txt", b"one"), ("./a.txt", b"two")])
    with pytest.raises(UnsafeArchiveError, match="twice"):
        safe_extract(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


def test_directories_in_an_archive_are_created(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("empty-folder")
    folder.type = tarfile.DIRTYPE
    archive = _hostile(tmp_path / "d.tar.zst", [folder, ("deep/er/file.txt", b"hi")])
    out = safe_extract(archive, tmp_path / "dest")
    assert out == [tmp_path / "dest" / "deep" / "er" / "file.txt"]
    assert (tmp_path / "dest" / "empty-folder").is_dir()
    assert (tmp_path / "dest" / "deep" / "er" / "file.txt").read_bytes() == b"hi"


# --- our own tarballs -------------------------------------------------------------------


def _session(tmp_path: Path) -> tuple[Path, Packed, dict[str, bytes]]:
    contents = {
        "activity.jsonl": b'{"event":"start"}\n' * 500,
        "snapshots/snap001.json": b'{"step":1}' * 300,
        "snapshots/snap002.json": b'{"step":2}' * 300,
        "handoff.md": "# Handoff ✓\n".encode(),
    }
    src = tmp_path / "src"
    files = []
    for name, data in contents.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append((name, path))
    archive = tmp_path / "session.tar.zst"
    return archive, pack_tree(files, archive), contents


def test_member_selection_extracts_only_those(tmp_path: Path) -> None:
    archive, _, contents = _session(tmp_path)
    dest = tmp_path / "dest"
    out = safe_extract(archive, dest, members={"snapshots/snap002.json", "handoff.md"})
    assert sorted(out) == [dest / "handoff.md", dest / "snapshots" / "snap002.json"]
    assert _tree(dest) == {"handoff.md", "snapshots", "snapshots/snap002.json"}
    assert (dest / "snapshots" / "snap002.json").read_bytes() == contents["snapshots/snap002.json"]


def test_selecting_a_missing_member_names_it_and_writes_nothing(tmp_path: Path) -> None:
    archive, _, _ = _session(tmp_path)
    with pytest.raises(NotFoundError, match=r"nope\.txt"):
        safe_extract(archive, tmp_path / "dest", members={"handoff.md", "nope.txt"})
    assert _tree(tmp_path / "dest") == set()


def test_expected_digests_pass_and_are_enforced(tmp_path: Path) -> None:
    archive, packed, contents = _session(tmp_path)
    good = {m.name: m.sha256 for m in packed.members}
    out = safe_extract(archive, tmp_path / "ok", expected=good)
    assert len(out) == len(contents)

    bad = dict(good, **{"snapshots/snap001.json": _sha256(b"something else")})
    with pytest.raises(IntegrityError, match=r"snapshots/snap001\.json.*SHA-256"):
        safe_extract(archive, tmp_path / "bad", expected=bad)
    assert _tree(tmp_path / "bad") == set()


def test_expected_digests_must_cover_the_archive_and_vice_versa(tmp_path: Path) -> None:
    archive, packed, _ = _session(tmp_path)
    good = {m.name: m.sha256 for m in packed.members}
    fewer = {k: v for k, v in good.items() if k != "handoff.md"}
    with pytest.raises(IntegrityError, match=r"handoff\.md.*does not list"):
        safe_extract(archive, tmp_path / "a", expected=fewer)
    more = dict(good, **{"transcript.jsonl": _sha256(b"")})
    with pytest.raises(IntegrityError, match=r"lacks.*transcript\.jsonl"):
        safe_extract(archive, tmp_path / "b", expected=more)
    # a selection only needs its own files listed
    out = safe_extract(archive, tmp_path / "c", members={"handoff.md"}, expected=more)
    assert out == [tmp_path / "c" / "handoff.md"]


def test_existing_files_are_not_overwritten_unless_asked(tmp_path: Path) -> None:
    archive, _, contents = _session(tmp_path)
    dest = tmp_path / "dest"
    (dest / "snapshots").mkdir(parents=True)
    (dest / "snapshots" / "snap002.json").write_bytes(b"local edit")

    with pytest.raises(BadInputError, match=r"snap002\.json already exists"):
        safe_extract(archive, dest)
    assert (dest / "snapshots" / "snap002.json").read_bytes() == b"local edit"
    assert _tree(dest) == {"snapshots", "snapshots/snap002.json"}  # nothing else landed

    out = safe_extract(archive, dest, overwrite=True)
    assert len(out) == len(contents)
    for name, data in contents.items():
        assert (dest / name).read_bytes() == data
    assert not [p for p in dest.rglob("*.part")]


def test_a_folder_in_the_way_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    archive, _, _ = _session(tmp_path)
    (tmp_path / "dest" / "handoff.md").mkdir(parents=True)
    with pytest.raises(BadInputError, match="folder"):
        safe_extract(archive, tmp_path / "dest", overwrite=True)


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75, -3])
def test_corrupt_archive_writes_nothing_even_without_digests(tmp_path: Path, where: float) -> None:
    archive, _, _ = _session(tmp_path)
    blob = bytearray(archive.read_bytes())
    pos = int(len(blob) * where) if where > 0 else len(blob) + int(where)
    blob[pos] ^= 0x01
    archive.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        safe_extract(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_archive_writes_nothing(tmp_path: Path, fraction: float) -> None:
    archive, _, _ = _session(tmp_path)
    blob = archive.read_bytes()
    archive.write_bytes(blob[: int(len(blob) * fraction)])
    with pytest.raises(IntegrityError, match="truncated"):
        safe_extract(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


def test_zstd_of_something_that_is_not_tar_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "x.tar.zst"
    archive.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(4096)))
    with pytest.raises(IntegrityError, match="not a readable tar archive"):
        safe_extract(archive, tmp_path / "dest")


def test_refused_archive_leaves_no_dest_folder_it_created(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "a.tar.zst", [("fine.txt", b"ok"), ("../evil", b"x")])
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "new" / "dest")
    assert not (tmp_path / "new").exists()


def test_archive_root_entry_is_accepted(tmp_path: Path) -> None:
    root = tarfile.TarInfo("./")
    root.type = tarfile.DIRTYPE
    archive = _hostile(tmp_path / "a.tar.zst", [root, ("./notes.md", b"hello")])
    assert safe_extract(archive, tmp_path / "dest") == [tmp_path / "dest" / "notes.md"]


def test_selecting_a_folder_entry_creates_it(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("logs")
    folder.type = tarfile.DIRTYPE
    archive = _hostile(tmp_path / "a.tar.zst", [folder, ("other.txt", b"x")])
    assert safe_extract(archive, tmp_path / "dest", members={"logs"}) == []
    assert _tree(tmp_path / "dest") == {"logs"}
