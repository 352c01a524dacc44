"""In-memory Drive: files, folders and resumable upload sessions.

The store is shared by the server thread and the test thread (tests inspect and tamper with
stored content), so every public method takes one re-entrant lock.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.drive_server import errors

FOLDER_MIME = "application/vnd.google-apps.folder"
CHUNK_GRANULARITY = 256 * 1024
# Drive's documented limits on custom properties (per file, per visibility).
MAX_PROPERTY_BYTES = 124
MAX_PROPERTIES = 30


def new_id() -> str:
    return "1" + secrets.token_urlsafe(24)


def rfc3339(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise errors.bad_request(f"Invalid RFC 3339 time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    created: datetime
    modified: datetime
    app_properties: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    trashed: bool = False
    content: bytes | None = None
    md5_override: str | None = None
    version: int = 1
    _digested: bytes | None = field(default=None, repr=False, compare=False)
    _digests: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME

    @property
    def size(self) -> int:
        return len(self.content) if self.content is not None else 0

    def digest(self, algorithm: str) -> str:
        """Google computes a file's checksums once, when the content is stored; here once
        per content too, and only those a request asks for (a response of every file
        hashed three times over made the server, not the client under test, the cost
        of a benchmark's uploads). A test that swaps `content` gets fresh digests."""
        content = self.content or b""
        if self._digested is not content:
            self._digested, self._digests = content, {}
        found = self._digests.get(algorithm)
        if found is None:
            found = self._digests[algorithm] = hashlib.new(algorithm, content).hexdigest()
        return found

    def resource(self, fields: Collection[str] | None = None) -> dict[str, Any]:
        """The v3 resource; the server trims it to the requested `fields`. With `fields`
        (top-level names, or `*`), checksums nobody asked for are not computed."""
        res: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "appProperties": dict(self.app_properties),
            "properties": dict(self.properties),
            "createdTime": rfc3339(self.created),
            "modifiedTime": rfc3339(self.modified),
            "trashed": self.trashed,
            "explicitlyTrashed": self.trashed,
            "version": str(self.version),
            "ownedByMe": True,
            "capabilities": {"canEdit": True, "canDownload": not self.is_folder},
        }
        if self.description is not None:
            res["description"] = self.description
        if not self.is_folder:
            size = str(self.size)
            res["size"] = size
            res["quotaBytesUsed"] = size
            res["headRevisionId"] = f"rev{self.version}"
            for name, algorithm in _CHECKSUMS.items():
                if fields is None or "*" in fields or name in fields:
                    if name == "md5Checksum" and self.md5_override:
                        res[name] = self.md5_override
                    else:
                        res[name] = self.digest(algorithm)
        return res


_CHECKSUMS = {"md5Checksum": "md5", "sha1Checksum": "sha1", "sha256Checksum": "sha256"}


@dataclass
class UploadSession:
    """State of one resumable upload: what arrived so far and what it will become."""

    id: str
    file_id: str | None  # None: create a new file; otherwise update this one
    metadata: dict[str, Any]
    fields: str | None
    mime_type: str | None
    declared_length: int | None
    add_parents: list[str]
    remove_parents: list[str]
    received: bytearray = field(default_factory=bytearray)
    result_id: str | None = None


def _check_properties(kind: str, values: Mapping[str, str]) -> None:
    if len(values) > MAX_PROPERTIES:
        raise errors.bad_request(f"A file may have at most {MAX_PROPERTIES} {kind}.")
    for key, value in values.items():
        if len(key.encode()) + len(value.encode()) > MAX_PROPERTY_BYTES:
            raise errors.bad_request(
                f"The size of {kind} entry {key!r} exceeds {MAX_PROPERTY_BYTES} bytes."
            )


def _merge_properties(kind: str, current: dict[str, str], patch: object) -> dict[str, str]:
    """Patch semantics as on Drive: listed keys are set, keys set to null are removed."""
    if not isinstance(patch, dict):
        raise errors.bad_request(f"{kind} must be an object.")
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, str | int | float | bool):
            merged[str(key)] = value if isinstance(value, str) else str(value)
        else:
            raise errors.bad_request(f"{kind} values must be strings.")
    _check_properties(kind, merged)
    return merged


class DriveStore:
    def __init__(
        self, *, quota_limit: int | None, wrong_md5: Callable[[], bool] = lambda: False
    ) -> None:
        self._lock = threading.RLock()
        self._files: dict[str, DriveFile] = {}
        self._used = 0
        self._sessions: dict[str, UploadSession] = {}
        self.quota_limit = quota_limit
        now = datetime.now(UTC)
        self.root_id = new_id()
        self._files[self.root_id] = DriveFile(
            id=self.root_id,
            name="My Drive",
            mime_type=FOLDER_MIME,
            parents=[],
            created=now,
            modified=now,
        )
        self._wrong_md5 = wrong_md5

    # --- inspection helpers for tests -------------------------------------------------

    def get(self, file_id: str) -> DriveFile:
        with self._lock:
            resolved = self.root_id if file_id == "root" else file_id
            found = self._files.get(resolved)
            if found is None:
                raise errors.not_found(file_id)
            return found

    def all_files(self) -> list[DriveFile]:
        """Every file except the root folder, in creation order."""
        with self._lock:
            return [f for f in self._files.values() if f.id != self.root_id]

    def usage(self) -> int:
        """Kept as files change: every create checks the quota, and a sum over all files
        made each one cost more the longer a test (or a benchmark) ran."""
        with self._lock:
            return self._used

    def trashed_usage(self) -> int:
        with self._lock:
            return sum(f.size for f in self._files.values() if f.trashed)

    def session(self, upload_id: str) -> UploadSession:
        with self._lock:
            found = self._sessions.get(upload_id)
            if found is None:
                raise errors.DriveError(404, "notFound", "Upload session not found.")
            return found

    # --- mutations used by the server -------------------------------------------------

    def _resolve_parent(self, parent_id: str) -> str:
        parent = self.get(parent_id)
        if not parent.is_folder:
            raise errors.bad_request(f"The parent {parent_id} is not a folder.")
        return parent.id

    def _check_quota(self, extra: int) -> None:
        if self.quota_limit is not None and self.usage() + extra > self.quota_limit:
            raise errors.quota_exceeded()

    def _apply_content(self, target: DriveFile, content: bytes) -> None:
        if target.id in self._files:
            self._used -= target.size
        self._used += len(content)
        target.content = content
        target.md5_override = None
        if self._wrong_md5():
            target.md5_override = hashlib.md5(content + b"\x00corrupt").hexdigest()

    def create(self, metadata: Mapping[str, Any], content: bytes | None) -> DriveFile:
        with self._lock:
            name = metadata.get("name", "Untitled")
            mime = metadata.get("mimeType")
            if mime is None:
                mime = "application/octet-stream" if content is not None else "text/plain"
            if not isinstance(name, str) or not isinstance(mime, str):
                raise errors.bad_request("name and mimeType must be strings.")
            if mime == FOLDER_MIME and content:
                raise errors.bad_request("A folder cannot have content.")
            parents_in = metadata.get("parents") or ["root"]
            if not isinstance(parents_in, list) or not all(isinstance(p, str) for p in parents_in):
                raise errors.bad_request("parents must be a list of ids.")
            if len(parents_in) > 1:
                raise errors.DriveError(
                    403, "cannotAddParent", "Increasing the number of parents is not allowed."
                )
            parents = [self._resolve_parent(p) for p in parents_in]
            file_id = metadata.get("id") or new_id()
            if not isinstance(file_id, str) or file_id in self._files:
                raise errors.DriveError(409, "duplicate", "A file with this id already exists.")
            self._check_quota(len(content or b""))
            now = datetime.now(UTC)
            created = parse_rfc3339(metadata["createdTime"]) if "createdTime" in metadata else now
            modified = (
                parse_rfc3339(metadata["modifiedTime"]) if "modifiedTime" in metadata else now
            )
            made = DriveFile(
                id=file_id,
                name=name,
                mime_type=mime,
                parents=parents,
                created=created,
                modified=modified,
                app_properties=_merge_properties(
                    "appProperties", {}, metadata.get("appProperties", {})
                ),
                properties=_merge_properties("properties", {}, metadata.get("properties", {})),
                description=metadata.get("description"),
                trashed=bool(metadata.get("trashed", False)),
            )
            if mime != FOLDER_MIME:
                self._apply_content(made, content or b"")
            self._files[file_id] = made
            return made

    def update(
        self,
        file_id: str,
        metadata: Mapping[str, Any],
        content: bytes | None,
        *,
        add_parents: Iterable[str] = (),
        remove_parents: Iterable[str] = (),
    ) -> DriveFile:
        with self._lock:
            target = self.get(file_id)
            if target.id == self.root_id:
                raise errors.DriveError(403, "insufficientFilePermissions", "Cannot modify root.")
            if "parents" in metadata:
                raise errors.DriveError(
                    403,
                    "fieldNotWritable",
                    "The resource body includes fields which are not directly writable.",
                )
            if content is not None:
                if target.is_folder:
                    raise errors.bad_request("A folder cannot have content.")
                self._check_quota(len(content) - target.size)
            if "name" in metadata:
                if not isinstance(metadata["name"], str):
                    raise errors.bad_request("name must be a string.")
                target.name = metadata["name"]
            if "mimeType" in metadata and isinstance(metadata["mimeType"], str):
                target.mime_type = metadata["mimeType"]
            if "description" in metadata:
                target.description = metadata["description"]
            if "trashed" in metadata:
                target.trashed = bool(metadata["trashed"])
            if "appProperties" in metadata:
                target.app_properties = _merge_properties(
                    "appProperties", target.app_properties, metadata["appProperties"]
                )
            if "properties" in metadata:
                target.properties = _merge_properties(
                    "properties", target.properties, metadata["properties"]
                )
            removed = {self.root_id if p == "root" else p for p in remove_parents}
            parents = [p for p in target.parents if p not in removed]
            for parent in add_parents:
                resolved = self._resolve_parent(parent)
                if resolved not in parents:
                    parents.append(resolved)
            if len(parents) > 1:
                raise errors.DriveError(
                    403, "cannotAddParent", "Increasing the number of parents is not allowed."
                )
            target.parents = parents
            if content is not None:
                self._apply_content(target, content)
            target.modified = (
                parse_rfc3339(metadata["modifiedTime"])
                if "modifiedTime" in metadata
                else datetime.now(UTC)
            )
            target.version += 1
            return target

    def delete(self, file_id: str) -> None:
        """Permanent delete; like Drive, a folder takes its descendants with it."""
        with self._lock:
            target = self.get(file_id)
            if target.id == self.root_id:
                raise errors.DriveError(403, "insufficientFilePermissions", "Cannot delete root.")
            doomed = {target.id}
            grew = True
            while grew:
                grew = False
                for f in self._files.values():
                    if f.id not in doomed and any(p in doomed for p in f.parents):
                        doomed.add(f.id)
                        grew = True
            for gone in doomed:
                self._used -= self._files.pop(gone).size

    def query(
        self, predicate: Callable[[DriveFile], bool], order: Callable[[list[DriveFile]], None]
    ) -> list[DriveFile]:
        with self._lock:
            matched = [f for f in self.all_files() if predicate(f)]
            order(matched)
            return matched

    def open_session(self, session: UploadSession) -> UploadSession:
        with self._lock:
            if session.file_id is not None:
                session.file_id = self.get(session.file_id).id
            if session.declared_length is not None:
                current = 0 if session.file_id is None else self.get(session.file_id).size
                self._check_quota(session.declared_length - current)
            self._sessions[session.id] = session
            return session

    def finish_session(self, session: UploadSession) -> DriveFile:
        with self._lock:
            content = bytes(session.received)
            if session.file_id is None:
                metadata = dict(session.metadata)
                if "mimeType" not in metadata and session.mime_type:
                    metadata["mimeType"] = session.mime_type
                made = self.create(metadata, content)
            else:
                made = self.update(
                    session.file_id,
                    session.metadata,
                    content,
                    add_parents=session.add_parents,
                    remove_parents=session.remove_parents,
                )
            session.result_id = made.id
            return made
