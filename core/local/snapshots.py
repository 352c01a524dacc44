"""Session state snapshots: `state/session_<id>_snapNNN.json.zst`.

A snapshot is either all there or not there: it is written to a temp file in
the same folder, fsynced, then published under its final name in one atomic
step and the folder fsynced. Publishing uses `os.link` rather than
`os.replace`: the same atomic appearance of a complete file, but it refuses to
overwrite, so two writers that pick the same number cannot clobber each
other; the loser simply takes the next number.

Secrets never reach the file: the fast gate (`core.secret_gate`) scans the
serialized JSON once and says where it fired, and only the parts around those
places are parsed back and redacted; the rest is written as it was scanned.
zstd and the Hyperscan gate release the GIL, so large documents are compressed
in a worker thread while the check runs; the compressed bytes are discarded in
the rare case that redaction changed the document.
"""

from __future__ import annotations

import bisect
import errno
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import zstandard

from core.durable import fsync_dir as _fsync_dir
from core.errors import BadInputError, NotFoundError, StorageFullError
from core.redact import redact_obj, redact_text
from core.secret_gate import gate_hits

__all__ = ["SnapshotInfo", "SnapshotStore", "check_session_id"]

ZSTD_LEVEL = 3
MAX_SESSION_ID = 200
_NAME = re.compile(r"session_(?P<sid>.+)_snap(?P<num>[0-9]{3,})\.json\.zst")
_TEMP_PREFIX = ".tmp-"
_TEMP_STALE_SECONDS = 3600.0
_PARALLEL_FROM = 1 << 20  # below this a thread costs more than it hides
_GROUP_BYTES = 64 * 1024  # children this big are looked into, smaller ones redacted whole
_COMMA = ord(",")
_FILE_MODE = 0o600


@dataclass(frozen=True)
class SnapshotInfo:
    session_id: str
    number: int
    path: Path
    size: int
    created: float


def check_session_id(session_id: object) -> str:
    """A session id names files inside `state/`: no separators, no `..`, no control bytes."""
    if (
        not isinstance(session_id, str)
        or not 0 < len(session_id) <= MAX_SESSION_ID
        or ".." in session_id
        or any(c in session_id for c in "/\\\0")
        or any(c < " " for c in session_id)
        or session_id.startswith(".")
    ):
        raise BadInputError(f"{str(session_id)[:80]!r} is not a valid session id")
    return session_id


def _file_name(session_id: str, number: int) -> str:
    return f"session_{session_id}_snap{number:03d}.json.zst"


class SnapshotStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()  # numbers within this process; link() guards across
        self._clean = CleanParts()

    # writing -----------------------------------------------------------------------
    def save(self, session_id: str, state: Any) -> SnapshotInfo:
        """Redact, serialize (orjson), compress (zstd 3) and publish the next snapshot."""
        check_session_id(session_id)
        try:
            data = orjson.dumps(state)
        except orjson.JSONEncodeError as exc:
            raise BadInputError(f"session state cannot be saved as JSON: {exc}") from exc
        blob = _redacted_and_compressed(data, self._clean, state)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale_temps()
        tmp = self.state_dir / f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}-{session_id}"
        try:
            _write_synced(tmp, blob)
            with self._lock:
                path, number = self._publish(tmp, session_id)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(
                    f"The disk is full; snapshot of session {session_id} not saved",
                    hint="earlier snapshots are intact",
                ) from exc
            raise
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        _fsync_dir(self.state_dir)
        st = path.stat()
        return SnapshotInfo(session_id, number, path, st.st_size, st.st_mtime)

    def _publish(self, tmp: Path, session_id: str) -> tuple[Path, int]:
        existing = self.list(session_id)
        number = existing[-1].number + 1 if existing else 1
        while True:
            path = self.state_dir / _file_name(session_id, number)
            try:
                os.link(tmp, path)
                return path, number
            except FileExistsError:
                number += 1  # another process took this number first

    def _clean_stale_temps(self) -> None:
        """Remove temp files left by a crash (their writer is gone, or they are old)."""
        now = time.time()
        try:
            entries = list(os.scandir(self.state_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.name.startswith(_TEMP_PREFIX):
                continue
            pid_text = entry.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
            try:
                stale = not _pid_alive(int(pid_text)) or (
                    now - entry.stat().st_mtime > _TEMP_STALE_SECONDS
                )
                if stale:
                    Path(entry.path).unlink()
            except (ValueError, OSError):
                continue

    # reading -----------------------------------------------------------------------
    def list(self, session_id: str | None = None) -> list[SnapshotInfo]:
        """Snapshots in (session, number) order; temp files and strangers are ignored."""
        if session_id is not None:
            check_session_id(session_id)
        try:
            entries = list(os.scandir(self.state_dir))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            m = _NAME.fullmatch(entry.name)
            if m is None or (session_id is not None and m["sid"] != session_id):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            path = Path(entry.path)
            found.append(SnapshotInfo(m["sid"], int(m["num"]), path, st.st_size, st.st_mtime))
        found.sort(key=lambda i: (i.session_id, i.number))
        return found

    def load(self, session_id: str, number: int | None = None) -> Any:
        """The state saved in a snapshot; the latest when `number` is None."""
        infos = self.list(session_id)
        if not infos:
            raise NotFoundError(f"No snapshots of session {session_id!r} in {self.state_dir}")
        if number is None:
            info = infos[-1]
        else:
            match = [i for i in infos if i.number == number]
            if not match:
                have = ", ".join(str(i.number) for i in infos)
                raise NotFoundError(
                    f"Session {session_id!r} has no snapshot {number}", hint=f"it has {have}"
                )
            info = match[0]
        try:
            raw = info.path.read_bytes()
            return orjson.loads(zstandard.ZstdDecompressor().decompress(raw))
        except FileNotFoundError:
            raise NotFoundError(f"Snapshot {info.path} disappeared while loading") from None
        except (zstandard.ZstdError, orjson.JSONDecodeError) as exc:
            older = [i for i in infos if i.number < info.number]
            hint = (
                f"the older snapshot {older[-1].number} ({older[-1].path.name}) is available"
                if older
                else "no older snapshot of this session exists"
            )
            raise BadInputError(
                f"Snapshot {info.path} is damaged and cannot be read ({exc})", hint=hint
            ) from exc


# --- pieces ----------------------------------------------------------------------------


def _compressor() -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)


def compress_snapshot(plain: bytes) -> bytes:
    """A snapshot's JSON as the store keeps it: one checksummed frame that records its
    size, which `load` needs (what a restore puts back into the state folder)."""
    return _compressor().compress(plain)


class CleanParts:
    """Digests of documents and parts already found free of secrets.

    Successive snapshots of a session are near-duplicates: an identical document
    is not checked again, and a part where the gate fired for nothing (source
    code full of `token = ...`) is not parsed and redacted again on the next
    save. Bounded: when full it starts over, which costs one slower save.
    """

    LIMIT = 200_000

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    @staticmethod
    def digest(part: bytes) -> tuple[int, int]:
        """Length and Python's keyed SipHash of the part.

        SHA-256 was tried: with thousands of small parts its per-call cost was a
        third of a save. SipHash is keyed with a random per-process secret, so no
        input can be crafted to collide with a part remembered as clean, and an
        accidental 64-bit collision at the same length is out of reach.
        """
        return len(part), hash(part)

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, digest: tuple[int, int]) -> bool:
        return digest in self._seen

    def add(self, digest: tuple[int, int]) -> None:
        if len(self._seen) >= self.LIMIT:
            self._seen.clear()
        self._seen.add(digest)


def _redacted_and_compressed(
    data: bytes, clean: CleanParts | None = None, state: Any = None
) -> bytes:
    clean = clean if clean is not None else CleanParts()
    if len(data) < _PARALLEL_FROM:
        if clean.digest(data) not in clean:
            data = _redact_document(data, clean, state)
        return bytes(_compressor().compress(data))
    result: list[bytes] = []
    worker = threading.Thread(target=lambda: result.append(bytes(_compressor().compress(data))))
    worker.start()
    try:
        # the digest and the gate, too, run while the worker compresses
        seen = clean.digest(data) in clean
        redacted = data if seen else _redact_document(data, clean, state)
    finally:
        worker.join()
    if redacted is not data:
        return bytes(_compressor().compress(redacted))
    if not result:  # the worker failed (out of memory?): do it here, raising if it must
        result.append(bytes(_compressor().compress(data)))
    return result[0]


# A cut replaces data[start:end] with new bytes.
_Cut = tuple[int, int, bytes]


def _redact_document(data: bytes, clean: CleanParts, state: Any = None) -> bytes:
    """`redact_obj` on the document, looking only into the parts where the gate fired.

    The gate scans the whole document once and says where it fired; the walk
    serializes only the containers on the way to those places, to learn where
    their children lie, and parses back and redacts only the small parts that
    hold a hit. The result is the gated bytes with those parts replaced: what
    was scanned is what is written, and parts redacted are plain JSON values
    whatever the caller's types were.
    """
    hits = gate_hits(data)
    cuts: list[_Cut] = []
    if hits:
        root = state if type(state) in (dict, list) else orjson.loads(data)
        _look_into(root, data, 0, len(data), hits, clean, cuts)
    if not cuts:
        clean.add(clean.digest(data))
        return data
    pieces: list[bytes] = []
    pos = 0
    for start, end, new in cuts:
        pieces += (data[pos:start], new)
        pos = end
    pieces.append(data[pos:])
    return b"".join(pieces)


def _look_into(
    value: Any, data: bytes, start: int, end: int, hits: list[int], clean: CleanParts,
    cuts: list[_Cut],
) -> None:  # fmt: skip
    """Cuts for `data[start:end]`, the JSON of `value`, in which the gate fired.

    A hit belongs to the child holding the last byte of its match: a match never
    leaves the JSON string or object entry it is in. Big containers are looked
    into again, other children with a hit are redacted whole.
    """
    kids = _children(value, data, start, end)
    if kids is None:
        _redact_part(data, start, end, False, clean, cuts)
        return
    starts = [k[0] for k in kids]
    first, last = bisect.bisect_right(hits, start), bisect.bisect_right(hits, end)
    flagged = sorted({max(0, bisect.bisect_right(starts, e - 1) - 1) for e in hits[first:last]})
    for i in flagged:
        a, b, key, child = kids[i]
        if b - a <= _GROUP_BYTES or not isinstance(child, dict | list):
            _redact_part(data, a, b, key is not None, clean, cuts)
        elif key is None:
            _look_into(child, data, a, b, hits, clean, cuts)
        else:
            key_end = a + len(orjson.dumps(key))
            safe_key = redact_text(key)  # `redact_obj` applies no key rule to a container
            if safe_key != key:
                cuts.append((a, key_end, orjson.dumps(safe_key)))
            _look_into(child, data, key_end + 1, b, hits, clean, cuts)


def _children(
    value: Any, data: bytes, start: int, end: int
) -> list[tuple[int, int, str | None, Any]] | None:
    """Where each child of a dict or list lies in `data[start:end]`: (start, end, key, child).

    Children of a dict are its `"key":value` entries. None when `value` is not
    a container, or when its children do not serialize to exactly these bytes
    (then the caller redacts the bytes as they are).
    """
    items: list[tuple[str | None, Any]]
    if isinstance(value, dict) and value:
        items = list(value.items())
        parts = [orjson.dumps({k: v})[1:-1] for k, v in items]
    elif isinstance(value, list) and value:
        items = [(None, v) for v in value]
        parts = [orjson.dumps(v) for v in value]
    else:
        return None
    brackets = b"{}" if isinstance(value, dict) else b"[]"
    if data[start] != brackets[0] or data[end - 1] != brackets[1]:
        return None
    kids = []
    pos = start + 1
    for part, (key, child) in zip(parts, items, strict=True):
        if not data.startswith(part, pos):
            return None
        kids.append((pos, pos + len(part), key, child))
        pos += len(part) + 1
        if data[pos - 1] != (_COMMA if pos < end else brackets[1]):
            return None
    return kids if pos == end else None


def _redact_part(
    data: bytes, start: int, end: int, entry: bool, clean: CleanParts, cuts: list[_Cut]
) -> None:
    """Redact `data[start:end]`, a JSON value or (`entry`) one `"key":value` of an object."""
    part = b"{" + data[start:end] + b"}" if entry else data[start:end]
    digest = clean.digest(part)
    if digest in clean:
        return
    value = orjson.loads(part)
    redacted = redact_obj(value)
    if redacted == value:
        clean.add(digest)
        return
    new = orjson.dumps(redacted)
    cuts.append((start, end, new[1:-1] if entry else new))


def _write_synced(path: Path, blob: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
