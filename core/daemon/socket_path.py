"""Where a workspace's daemon listens, and the note beside the socket naming its process.

A Unix socket is reached through the file system, so the directory is the access
control: mode 0700 and owned by the user means no one else can connect, even in the
instant between `bind` and the socket's own `chmod 0600`. One socket per workspace,
named by a hash of its path, so two workspaces can each have a daemon.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from pydantic import BaseModel, ValidationError

from core.errors import BadInputError

API_VERSION = "v1"
MAX_SOCKET_PATH = 107
"""`sun_path` holds 108 bytes on Linux, one of them the final NUL."""


class DaemonInfo(BaseModel):
    """Written beside the socket so `status` can name the process behind it."""

    pid: int
    api: str
    version: str
    workspace: str
    socket: str
    started_at: str


def runtime_dir(workspace_root: Path) -> Path:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "tierkeeper"
    return workspace_root / "run"


def socket_path(workspace_root: Path) -> Path:
    """Where a daemon started now listens."""
    return runtime_dir(workspace_root) / _socket_name(workspace_root)


def socket_candidates(workspace_root: Path) -> list[Path]:
    """Where a running daemon may listen: it may have been started in a session with
    XDG_RUNTIME_DIR (a systemd unit) while this process has none, or the other way round."""
    first = socket_path(workspace_root)
    fallback = workspace_root / "run" / _socket_name(workspace_root)
    return [first] if fallback == first else [first, fallback]


def _socket_name(workspace_root: Path) -> str:
    digest = hashlib.sha256(str(workspace_root).encode("utf-8")).hexdigest()[:16]
    return f"{digest}.sock"


def info_path(sock: Path) -> Path:
    return sock.with_suffix(".json")


def check_length(sock: Path) -> None:
    if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
        raise BadInputError(
            f"The daemon's socket path is too long for a Unix socket: {sock}",
            hint="set XDG_RUNTIME_DIR (systemd sets it on every desktop login)",
        )


def make_private_dir(path: Path) -> None:
    """Creates `path` as 0700, or tightens it; refuses one that someone else owns."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"{path} is not a plain folder", hint="remove it and start again")
    if st.st_uid != os.getuid():
        raise BadInputError(
            f"{path} belongs to another user", hint="remove it, or set XDG_RUNTIME_DIR"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


def remove_stale_socket(sock: Path) -> None:
    """Only called by the lock holder: a socket here is a crashed daemon's leftover."""
    try:
        st = os.lstat(sock)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise BadInputError(f"{sock} exists and is not a socket", hint="remove it and try again")
    sock.unlink()


def write_info(sock: Path, info: DaemonInfo) -> None:
    target = info_path(sock)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(info.model_dump_json().encode("utf-8"))
    tmp.replace(target)


def read_info(sock: Path) -> DaemonInfo | None:
    try:
        return DaemonInfo.model_validate_json(info_path(sock).read_bytes())
    except (OSError, ValidationError):
        return None


def remove_files(sock: Path) -> None:
    for path in (sock, info_path(sock)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
