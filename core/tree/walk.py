"""What a folder tree holds, read without following a single symlink.

Files come out in the order they will be packed: each folder's files in
natural name order (`snap9` before `snap10`), then its subfolders. Snapshots
of one session thus sit side by side, which is where compression finds them.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["file", "dir", "link"]

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """`snap2` < `snap10`; numbers and text never compare with each other."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name) if part
    )


@dataclass(frozen=True, slots=True)
class Found:
    path: str
    """Relative POSIX path, never empty, never `..`."""
    kind: Kind
    mode: int
    mtime_ns: int
    size: int = 0
    link: str = ""


@dataclass(slots=True)
class Walk:
    source: str
    """The folder's absolute path, for the record."""
    root_mode: int
    root_mtime_ns: int
    entries: list[Found] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """One line per thing left out (sockets, fifos, devices, unreadable folders, names
    that are not UTF-8), for the report: a backup never drops something silently."""


def walk(root: Path) -> Walk:
    top = os.lstat(root)
    if not stat.S_ISDIR(top.st_mode):
        raise NotADirectoryError(str(root))
    out = Walk(str(root.resolve()), stat.S_IMODE(top.st_mode), top.st_mtime_ns)
    _walk_dir(os.fsencode(root), "", out)
    return out


def _walk_dir(abs_dir: bytes, rel: str, out: Walk) -> None:
    try:
        with os.scandir(abs_dir) as it:
            children = list(it)
    except OSError as err:
        out.skipped.append(f"{rel or '.'}/: cannot be read ({err.strerror or err})")
        return
    named: list[tuple[str, os.DirEntry[bytes]]] = []
    for child in children:
        try:
            name = child.name.decode("utf-8")
        except UnicodeDecodeError:
            shown = child.name.decode("utf-8", "replace")
            out.skipped.append(f"{_join(rel, shown)}: name is not UTF-8")
            continue
        named.append((name, child))
    named.sort(key=lambda item: natural_key(item[0]))
    subdirs: list[tuple[str, bytes]] = []
    for name, child in named:
        path = _join(rel, name)
        try:
            st = child.stat(follow_symlinks=False)
        except OSError as err:  # vanished between listing and stat
            out.skipped.append(f"{path}: {err.strerror or err}")
            continue
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            out.entries.append(Found(path, "file", mode, st.st_mtime_ns, st.st_size))
        elif stat.S_ISDIR(st.st_mode):
            out.entries.append(Found(path, "dir", mode, st.st_mtime_ns))
            subdirs.append((path, child.path))
        elif stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(child.path).decode("utf-8")  # noqa: PTH115 (bytes)
            except (OSError, UnicodeDecodeError) as err:
                out.skipped.append(f"{path}: symlink cannot be read ({err})")
                continue
            out.entries.append(Found(path, "link", mode, st.st_mtime_ns, link=target))
        else:
            out.skipped.append(f"{path}: {_special(st.st_mode)} skipped")
    for path, abs_child in subdirs:
        _walk_dir(abs_child, path, out)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _special(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
