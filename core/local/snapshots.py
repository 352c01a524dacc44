"""Session state snapshots: `state/session_<id>_snapNNN.json.zst`.

A snapshot is either all there or not there: it is written to a temp file in
the same folder, fsynced, then published under its final name in one atomic
step and the folder fsynced. Publishing uses `os.link` rather than
`os.replace`: the same atomic appearance of a complete file, but it refuses to
overwrite, so two writers that pick the same number cannot clobber each
other; the loser simply takes the next number.

Secrets never reach the file: the serialized JSON is checked with the fast
`might_contain_secret` test (~30 ms for 5 MB), and only when that test fires is
the document parsed back, redacted as a tree and serialized again. zstd
releases the GIL, so large documents are compressed in a worker thread while
the check runs; the compressed bytes are discarded in the rare case that
redaction changed the document.
"""

from __future__ import annotations

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
from core.redact import might_contain_secret, redact_obj, redact_text

__all__ = ["SnapshotInfo", "SnapshotStore", "check_session_id"]

ZSTD_LEVEL = 3
MAX_SESSION_ID = 200
_NAME = re.compile(r"session_(?P<sid>.+)_snap(?P<num>[0-9]{3,})\.json\.zst")
_TEMP_PREFIX = ".tmp-"
_TEMP_STALE_SECONDS = 3600.0
_PARALLEL_FROM = 1 << 20  # below this a thread costs more than it hides
_GROUP_BYTES = 64 * 1024
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


class CleanParts:
    """Digests of JSON parts already found free of secrets.

    Successive snapshots of a session are near-duplicates; remembering which
    parts were clean lets the next save scan only what changed. Bounded: when
    full it starts over, which costs one slower save.
    """

    LIMIT = 200_000

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()
        self.redactions = 0
        """Leaves changed by redaction so far: a walk that changed none keeps the bytes."""

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
    whole = clean.digest(data)
    if whole in clean:
        return bytes(_compressor().compress(data))
    if len(data) < _PARALLEL_FROM:
        if might_contain_secret(data):
            data = _redact_document(data, clean, state)
        else:
            clean.add(whole)
        return bytes(_compressor().compress(data))
    result: list[bytes] = []
    worker = threading.Thread(target=lambda: result.append(bytes(_compressor().compress(data))))
    worker.start()
    try:
        # With parts remembered from earlier saves, the part-wise walk is cheaper than
        # gating the whole document first: go straight to it. Either runs while the
        # worker compresses (zstd releases the GIL), not after it.
        dirty = len(clean) > 0 or might_contain_secret(data)
        redacted = _redact_document(data, clean, state) if dirty else data
    finally:
        worker.join()
    if not result:  # the worker failed (out of memory?): do it here, raising if it must
        result.append(_compressor().compress(data))
    if not dirty:
        clean.add(whole)
        return result[0]
    if redacted == data:
        clean.add(whole)
        return result[0]
    return bytes(_compressor().compress(redacted))


def _redact_document(data: bytes, clean: CleanParts, state: Any = None) -> bytes:
    """`redact_obj` on the document, walking only the parts that trip the gate.

    The walk splits the caller's own dicts and lists (no need to parse 5 MB
    back), but every part it redacts is parsed back from its JSON bytes: plain
    JSON values whatever the input types were, so nothing orjson knows how to
    write escapes redaction. Parts left alone serialize to the bytes that were
    gated.
    """
    root = state if type(state) in (dict, list) else orjson.loads(data)
    before = clean.redactions
    result = _redact_suspicious(root, clean)
    return data if clean.redactions == before else orjson.dumps(result)


def _redact_suspicious(value: Any, clean: CleanParts) -> Any:
    """Same result as `redact_obj(value)` for a value whose JSON tripped the gate.

    A big container is split: its children's JSON is gated in ~64 KiB groups,
    clean children (or ones seen clean before) are kept as they are, and only
    suspicious ones are walked (or split again). On a transcript-like state
    this walks a few percent of it.
    """
    if isinstance(value, dict):
        entries = list(value.items())
        parts = [orjson.dumps({k: v}) for k, v in entries]  # the key is context
        walk = [_is_big(p, v) for p, (_, v) in zip(parts, entries, strict=True)]
        out: dict[str, Any] = {}
        flags = _suspicious(parts, clean, walk)
        for (key, child), part, flag, big in zip(entries, parts, flags, walk, strict=True):
            if not flag:
                out[key] = child
            elif big:
                safe_key = redact_text(key)  # a container: no key rule
                clean.redactions += safe_key != key
                out[safe_key] = _walk_container(child, part, clean)
            else:
                out.update(_redact_leaf({key: child}, part, clean))
        return out
    if isinstance(value, list):
        parts = [orjson.dumps(v) for v in value]
        walk = [_is_big(p, v) for p, v in zip(parts, value, strict=True)]
        flags = _suspicious(parts, clean, walk)
        return [
            child
            if not flag
            else _walk_container(child, part, clean)
            if big
            else _redact_leaf(child, part, clean)
            for child, part, flag, big in zip(value, parts, flags, walk, strict=True)
        ]
    redacted = redact_obj(value)
    if redacted != value:
        clean.redactions += 1
    return redacted


def _is_big(part: bytes, value: Any) -> bool:
    return len(part) > _GROUP_BYTES and isinstance(value, dict | list)


def _walk_container(value: Any, part: bytes, clean: CleanParts) -> Any:
    redacted = _redact_suspicious(value, clean)
    if redacted == value:
        clean.add(clean.digest(part))
    return redacted


def _redact_leaf(value: Any, part: bytes, clean: CleanParts) -> Any:
    value = orjson.loads(part)  # plain JSON values, whatever the caller's types were
    redacted = redact_obj(value)
    if redacted == value:
        clean.add(clean.digest(part))
    else:
        clean.redactions += 1
    return redacted


def _suspicious(parts: list[bytes], clean: CleanParts, walk: list[bool]) -> list[bool]:
    """Which of these JSON texts trip the gate, testing small neighbours together.

    A big container (`walk`) not seen before is flagged without gating it whole:
    the walk gates its children anyway, and most of them are usually known clean.
    """
    if len(parts) == 1:
        return [True]  # the parent tripped it, and this is all there is
    digests = [clean.digest(p) for p in parts]
    flags = [False] * len(parts)
    todo = []
    for k, d in enumerate(digests):
        if d in clean:
            continue
        if walk[k]:
            flags[k] = True
        else:
            todo.append(k)
    i = 0
    while i < len(todo):
        j, size = i + 1, len(parts[todo[i]])
        while j < len(todo) and size + len(parts[todo[j]]) <= _GROUP_BYTES:
            size += len(parts[todo[j]])
            j += 1
        group = todo[i:j]
        if might_contain_secret(b",".join(parts[k] for k in group)):
            for k in group:
                flags[k] = len(group) == 1 or might_contain_secret(parts[k])
                if not flags[k]:
                    clean.add(digests[k])
        else:
            for k in group:
                clean.add(digests[k])
        i = j
    return flags


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
