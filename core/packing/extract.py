"""Extracting a `.tar.zst` without trusting it.

An archive coming back from a remote may be damaged, cut short, or (if the
remote was tampered with) hostile. So, in one streaming pass:

- every member is checked, selected or not: absolute names, `..`, names that
  resolve outside the target (through a symlink already there), links of any
  kind, devices, FIFOs and sparse files refuse the whole archive;
- every selected file is written to a temp name beside its target and, when
  digests are given, hashed and compared;
- nothing is published until the whole stream has been read, so the zstd frame
  checksum (which only speaks at the end) has vouched for every byte. Only then
  are the temp files renamed into place. Any failure removes the temp files,
  any folders this call created, and files it had already published — except a
  file replaced under `overwrite=True`, which cannot be brought back.

Existing files are never replaced unless `overwrite=True`: choosing another
name (`name (restored 2).ext`) is the restore job's decision, not this one's.
Extracted files are created 0600 (0700 if executable in the archive): session
data can hold secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from core.durable import fsync_dir
from core.errors import BadInputError, NotFoundError
from core.packing import IntegrityError
from core.packing.compress import CHUNK, open_zstd_reader
from core.packing.tarball import member_name_problem, normalize_member_name

__all__ = ["UnsafeArchiveError", "safe_extract"]


class UnsafeArchiveError(BadInputError):
    """The archive holds a member that could write outside the target or is not a plain file."""


@dataclass(slots=True)
class _Staged:
    name: str
    tmp: Path
    final: Path


@dataclass(slots=True)
class _Undo:
    """What this call created, removed again if it fails."""

    temps: set[Path]
    published: list[Path]
    dirs: list[Path]

    def run(self) -> None:
        for path in [*self.temps, *self.published]:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for directory in reversed(self.dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    members: set[str] | None = None,
    expected: dict[str, str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Extract `archive` into `dest`; return the files written, in archive order.

    `members` limits extraction to those archive names (others are skipped while
    streaming; a name not found raises NotFoundError). With `expected`
    (name → SHA-256), every extracted file must be listed and match, and (when
    extracting everything) every listed file must be present.
    """
    wanted = {normalize_member_name(m) for m in members} if members is not None else None
    digests = {normalize_member_name(k): v.lower() for k, v in (expected or {}).items()}
    undo = _Undo(temps=set(), published=[], dirs=[])
    try:
        _make_dirs(dest, undo)
        root = dest.resolve()
        staged, seen = _stream(
            archive, root, wanted, digests if expected is not None else None, overwrite, undo
        )
        found = {s.name for s in staged}
        if wanted is not None and (missing := wanted - seen):
            raise NotFoundError(f"Not in {archive.name}: {', '.join(sorted(missing))}")
        if expected is not None and wanted is None and (missing := set(digests) - found):
            raise IntegrityError(
                f"{archive.name} lacks files its manifest lists: {', '.join(sorted(missing))}",
                hint="the archive is incomplete: restore from another copy",
            )
        return _publish(staged, overwrite, undo)
    except BaseException:
        undo.run()
        raise


def _stream(
    archive: Path,
    root: Path,
    wanted: set[str] | None,
    expected: dict[str, str] | None,
    overwrite: bool,
    undo: _Undo,
) -> tuple[list[_Staged], set[str]]:
    """Stage the selected files; return them and every member name the archive holds."""
    staged: list[_Staged] = []
    seen: set[str] = set()
    with open_zstd_reader(archive) as stream:
        try:
            with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", bufsize=CHUNK) as tf:
                for info in tf:
                    if info.isdir() and not PurePosixPath(info.name).parts:
                        continue  # the archive's own root ("./"): nothing to create
                    name = _check_member(info, root, archive.name)
                    if name in seen:
                        raise UnsafeArchiveError(
                            f"{archive.name} holds {name!r} twice; refusing an ambiguous archive"
                        )
                    seen.add(name)
                    if wanted is not None and name not in wanted:
                        continue
                    if info.isdir():
                        _make_dirs(root / name, undo)
                        continue
                    _check_target(root / name, overwrite)  # fail early, before any data
                    staged.append(_stage(tf, info, name, root, expected, undo, archive.name))
        except tarfile.TarError as exc:
            raise IntegrityError(
                f"{archive.name} is not a readable tar archive ({exc})",
                hint="the archive is damaged: restore from another copy",
            ) from exc
        while stream.read(CHUNK):  # to the frame's end, where zstd checks its checksum
            pass
    return staged, seen


def _check_member(info: tarfile.TarInfo, root: Path, archive: str) -> str:
    problem = member_name_problem(info.name)
    if problem:
        raise UnsafeArchiveError(f"Refusing {archive}: member {info.name!r}: {problem}")
    name = normalize_member_name(info.name)
    kind = _kind_problem(info)
    if kind:
        raise UnsafeArchiveError(
            f"Refusing {archive}: member {name!r} is {kind}; only files and folders are extracted"
        )
    if not (root / name).resolve().is_relative_to(root):
        raise UnsafeArchiveError(
            f"Refusing {archive}: member {name!r} would land outside {root} "
            "(through a symlink in the target folder)"
        )
    return name


def _kind_problem(info: tarfile.TarInfo) -> str | None:
    if info.issym():
        return f"a symbolic link (to {info.linkname!r})"
    if info.islnk():
        return f"a hard link (to {info.linkname!r})"
    if info.ischr() or info.isblk():
        return "a device node"
    if info.isfifo():
        return "a FIFO"
    if info.issparse():
        return "a sparse file"
    if not (info.isreg() or info.isdir()):
        return f"a special entry (type {info.type!r})"
    return None


def make_folder(directory: Path) -> None:
    """`mkdir -p`, failing with what a person can act on when a file is in the way (the
    folder a restore was sent to, or one of its parents, is a file)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise BadInputError(
            f"Cannot create folder {directory}: a file with that name is in the way",
            hint="choose another folder, or move that file",
        ) from exc


def _make_dirs(directory: Path, undo: _Undo) -> None:
    missing = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        make_folder(directory)
    finally:
        undo.dirs.extend(p for p in reversed(missing) if p.is_dir())


def _stage(
    tf: tarfile.TarFile,
    info: tarfile.TarInfo,
    name: str,
    root: Path,
    expected: dict[str, str] | None,
    undo: _Undo,
    archive: str,
) -> _Staged:
    final = root / name
    want = None
    if expected is not None:
        want = expected.get(name)
        if want is None:
            raise IntegrityError(
                f"{archive} holds {name!r}, which its manifest does not list",
                hint="the archive does not match its manifest: restore from another copy",
            )
    _make_dirs(final.parent, undo)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    undo.temps.add(tmp)
    sha = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        source = tf.extractfile(info)
        if source is None:  # pragma: no cover - regular members always have data
            raise IntegrityError(f"{archive}: no data for {name!r}")
        while chunk := source.read(CHUNK):
            sha.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    if size != info.size:
        raise IntegrityError(f"{archive} is truncated inside {name!r}")
    if want is not None and sha.hexdigest() != want:
        raise IntegrityError(
            f"{name} from {archive} has SHA-256 {sha.hexdigest()}, the manifest says {want}; "
            "it was not restored",
            hint="the stored copy is damaged: restore from another copy",
        )
    tmp.chmod(0o700 if info.mode & 0o100 else 0o600)
    os.utime(tmp, (info.mtime, info.mtime))
    return _Staged(name=name, tmp=tmp, final=final)


def _publish(staged: list[_Staged], overwrite: bool, undo: _Undo) -> list[Path]:
    for item in staged:  # refuse before anything is renamed
        _check_target(item.final, overwrite)
    parents = set()
    for item in staged:
        if overwrite:
            item.tmp.replace(item.final)
        else:
            _link_new(item.tmp, item.final)
            undo.published.append(item.final)
        undo.temps.discard(item.tmp)
        parents.add(item.final.parent)
    for parent in parents:
        fsync_dir(parent)
    return [item.final for item in staged]


def _check_target(final: Path, overwrite: bool) -> None:
    if final.is_dir() and not final.is_symlink():
        raise BadInputError(f"Cannot restore {final}: a folder with that name is in the way")
    if not overwrite and (final.is_symlink() or final.exists()):
        raise BadInputError(
            f"{final} already exists; not overwriting it",
            hint="restore to another folder, or pass --overwrite to replace it",
        )


def _link_new(tmp: Path, final: Path) -> None:
    """Publish without ever replacing a file that appeared meanwhile."""
    try:
        os.link(tmp, final)
    except FileExistsError as exc:
        raise BadInputError(
            f"{final} already exists; not overwriting it",
            hint="restore to another folder, or pass --overwrite to replace it",
        ) from exc
    except OSError:  # a filesystem without hard links (FAT, some network mounts)
        if final.exists() or final.is_symlink():
            raise BadInputError(f"{final} already exists; not overwriting it") from None
        tmp.replace(final)
        return
    tmp.unlink()
