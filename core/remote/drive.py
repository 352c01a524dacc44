"""Google Drive as a Tier 2 store.

Keys map to paths under one folder the app creates in My Drive: every
segment but the last is a folder, the last is a file. Drive itself allows
many items with one name in one folder, so the store keeps "one file per key"
by its own rules: a put of an existing key uploads a new revision of that
file (files.update) rather than a new file, and if duplicates ever appear
(a crash between create and bookkeeping, two machines) the newest is the
object and a later put of the key removes the rest. Everything the app makes
carries an appProperties tag, so lookups never pick up a user's own files.

Uploads are resumable sessions. The session URI is kept in memory per key
and content, and handed to the caller's ResumeSlot as soon as Google issues
it: a put retried after a dropped connection, or a new process after a crash,
asks Google how much arrived and sends only the rest. The SHA-256 of the
content goes into appProperties, so a retried put whose first attempt did
finish (only the answer was lost) sees the bytes are already there.

The Google client is synchronous and its connections (httplib2) are not
thread-safe, so every call runs on the store's own worker threads, each
sending on a connection of its own; the client that builds the requests is
one, shared (core/remote/drive_discovery.py).
"""

from __future__ import annotations

import asyncio
import builtins
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import google.auth.credentials
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload

from core.remote.base import (
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProgressFn,
    PutSource,
    RemoteError,
    ResumeSlot,
    TransientError,
    check_key,
)
from core.remote.drive_discovery import DriveApi, DriveClient, build_api, drive_document
from core.remote.drive_errors import (
    TRANSPORT_ERRORS,
    is_quota_error,
    map_error,
    quota_full,
    status_of,
)
from core.remote.drive_folders import FOLDER_MIME, TAG, FolderPath, FolderTree, named, tagged
from core.remote.drive_multipart import create_small
from core.remote.drive_upload import FILE_FIELDS, Cancelled, SessionGone, Upload
from core.remote.threads import loop_notifier, on_worker

CHUNK_GRANULARITY = 256 * 1024
"""Google rejects chunks (other than the last) that are not a multiple of this."""
SHA256_PROPERTY = "sha256"
SESSIONS_AT_ONCE = 16
"""What a backup job should keep in flight here (see `concurrency` in base.py): Drive's
cost is round trips, so sessions overlap their waits. Against the test server with 30 ms
added to each request, 94 sessions took 4.5 s at 4 at once, 1.8 s at 16."""
MAX_WORKERS = 32
"""Requests in flight at once (a thread, and a client, each; made only when needed)."""
SMALL_FILE = 4 * 1024 * 1024
"""Up to this size a file goes up in one multipart request instead of a resumable session."""
PUT_ATTEMPTS = 3
"""Inside one put: start again after a vanished session or a vanished folder."""

_T = TypeVar("_T")
_Resource = dict[str, Any]


@dataclass
class _Session:
    """An upload in flight for one key and content, and how much progress was reported."""

    uri: str | None
    reported: int = 0


class DriveStore:
    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        *,
        name: str = "drive",
        root_folder: str = "Tierkeeper-backup",
        api_root: str = "https://www.googleapis.com/",
        chunk_size: int = 8 * 1024 * 1024,
        page_size: int = 1000,
        timeout: float = 60.0,
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_GRANULARITY:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_GRANULARITY}")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if not root_folder or "/" in root_folder:
            raise ValueError("root_folder must be one folder name")
        self.name = name
        self.concurrency = SESSIONS_AT_ONCE
        self.digests_what_it_holds = True  # md5Checksum: Google's, of the bytes it stored
        self.root_folder = root_folder
        self.chunk_size = chunk_size
        self.page_size = page_size
        self._credentials = credentials
        self._api_root = api_root
        self._timeout = timeout
        self._folders = FolderTree(root_folder)
        self._executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix=f"drive-{name}")
        self._local = threading.local()
        self._api: DriveApi | None = None
        self._api_lock = threading.Lock()
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._sessions_lock = threading.Lock()
        self._written: dict[tuple[str, str], _Resource] = {}
        """(folder id, name) → the file this store last wrote there: reads skip a lookup."""
        self._put_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._closed = False

    # -- the Store protocol ------------------------------------------------

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        folder, name = _split(key)
        loop = asyncio.get_running_loop()
        handle = resume.load() if resume is not None else None

        held = [handle]  # what the slot holds now, as far as this put knows

        def save(value: str | None) -> None:
            """Persist the session handle before the worker goes on (runs on the loop).
            Clearing a slot that holds nothing is skipped: a small file never has a
            handle, and the trip to the loop and back was a tenth of its put."""
            if resume is not None and (value is not None or held[0] is not None):
                asyncio.run_coroutine_threadsafe(resume.save(value), loop).result()
                held[0] = value

        lock = self._put_locks.get(key)
        if lock is None:
            lock = self._put_locks[key] = asyncio.Lock()
        async with lock:  # two puts of one key would both create a file
            return await self._run(
                f"upload {key}",
                self._put_sync,
                key,
                folder,
                name,
                source,
                handle,
                loop_notifier(progress),
                save,
            )

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        folder, name = _split(key)
        if offset < 0 or (length is not None and length < 0):
            raise PermanentError(f"invalid range offset={offset} length={length} for {key!r}")
        notify = loop_notifier(progress)
        return await self._run(
            f"download {key}", self._get_sync, key, folder, name, dest, offset, length, notify
        )

    async def stat(self, key: str) -> ObjectInfo:
        folder, name = _split(key)
        found = await self._run(f"look up {key}", self._lookup_sync, key, folder, name)
        return _info(key, found[0])

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walks the folders under the prefix; each folder's files come sorted by name."""
        head = _check_prefix(prefix)
        start = await self._run(f"list {prefix!r}", self._find_folder_sync, head)
        if start is None:
            return
        stack: builtins.list[tuple[FolderPath, str]] = [(head, start)]
        while stack:
            path, folder_id = stack.pop()
            files, subfolders = await self._run(
                f"list {prefix!r}", self._list_folder_sync, folder_id
            )
            for name in sorted(files):
                key = "/".join((*path, name))
                if key.startswith(prefix):
                    yield _info(key, files[name])
            for name in sorted(subfolders, reverse=True):
                sub = "/".join((*path, name)) + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    stack.append(((*path, name), subfolders[name]))

    async def delete(self, key: str) -> None:
        """Permanent (not to the bin): a backup's old objects must not eat the user's quota."""
        folder, name = _split(key)
        await self._run(f"delete {key}", self._delete_sync, key, folder, name)

    async def make_folders(self, paths: builtins.list[str]) -> None:
        """Make the folders (key paths) that are missing, ahead of the puts into them.

        A put into a new folder pays two round trips for it: the create, then a look
        for a twin another writer made at the same moment. A backup about to write a
        hundred session folders under one parent does it here instead with one listing,
        the creates side by side, and one listing more to settle twins. Best effort:
        whatever fails here, a put still finds or makes its folder itself."""
        wanted: dict[FolderPath, set[str]] = {}
        for path in paths:
            parts = tuple(check_key(path).split("/"))
            wanted.setdefault(parts[:-1], set()).add(parts[-1])
        for parent_path, names in wanted.items():
            try:
                await self._make_children(parent_path, names)
            except RemoteError:
                continue  # the puts will meet the same trouble and report it

    async def _make_children(self, parent_path: FolderPath, names: set[str]) -> None:
        parent = await self._run("make a folder", self._ensure_sync, parent_path)
        found = await self._run("list folders", self._children_sync, parent)
        missing = sorted(names - found.keys())
        made = await asyncio.gather(
            *(self._run("make a folder", self._create_only_sync, parent, n) for n in missing),
            return_exceptions=True,
        )
        mine = {n: m for n, m in zip(missing, made, strict=True) if isinstance(m, str)}
        if missing:
            found = await self._run("list folders", self._children_sync, parent)
        for name in sorted(names):
            ids = found.get(name)
            if not ids:
                continue  # its create failed: a put will make it
            self._folders.settle((*parent_path, name), ids, mine.get(name))
            extra = mine.get(name)
            if extra is not None and extra != ids[0]:  # a twin of ours: the oldest is used
                try:
                    await self._run("remove a twin folder", self._delete_id_sync, extra)
                except RemoteError:
                    pass  # harmless: everyone uses the oldest either way

    def _ensure_sync(self, client: DriveClient, cancel: threading.Event, path: FolderPath) -> str:
        return self._folders.ensure(client.files, path)

    def _children_sync(
        self, client: DriveClient, cancel: threading.Event, parent: str
    ) -> dict[str, builtins.list[str]]:
        return self._folders.children(client.files, parent, self.page_size)

    def _create_only_sync(
        self, client: DriveClient, cancel: threading.Event, parent: str, name: str
    ) -> str:
        return self._folders.create_only(client.files, parent, name)

    def _delete_id_sync(self, client: DriveClient, cancel: threading.Event, file_id: str) -> None:
        client.files.delete(fileId=file_id).execute(num_retries=0)

    async def quota(self) -> tuple[int, int | None]:
        """(bytes used, limit); the limit is None for unlimited accounts."""
        return await self._run("read the storage quota", self._quota_sync)

    async def account(self) -> str | None:
        """The signed-in Google address (what `target add` shows and records)."""
        return await self._run("read the account", self._account_sync)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        if self._api is not None:
            self._api.close()

    # -- plumbing ------------------------------------------------------------

    async def _run(self, what: str, fn: Callable[..., _T], *args: object) -> _T:
        """Run `fn(client, cancel, *args)` on a worker; on cancellation, stop it and wait."""
        if self._closed:
            raise PermanentError(f"the Google Drive store {self.name} is closed")
        return await on_worker(self._executor, lambda cancel: self._work(what, fn, cancel, args))

    def _work(
        self, what: str, fn: Callable[..., _T], cancel: threading.Event, args: tuple[object, ...]
    ) -> _T:
        client = self._client()
        try:
            return fn(client, cancel, *args)
        except Cancelled:
            raise
        except Exception as err:
            if isinstance(err, TRANSPORT_ERRORS):
                client.http.close()  # a half-used connection must not serve the next request
            mapped = map_error(err, what=what, store=self.name)
            if mapped is None or mapped is err:
                raise
            raise mapped from err

    def _client(self) -> DriveClient:
        client: DriveClient | None = getattr(self._local, "client", None)
        if client is None:
            with self._api_lock:
                if self._api is None:
                    document = drive_document(self._api_root)
                    self._api = build_api(self._credentials, document, self._timeout)
            client = self._local.client = self._api.on_this_thread()
        return client

    # -- lookups ---------------------------------------------------------------

    def _files_named(self, files: Any, parent: str, name: str) -> builtins.list[_Resource]:
        """Files of that name in `parent`, the one that counts (newest) first."""
        listed = files.list(
            q=named(parent, name, folder=False),
            fields=f"files({FILE_FIELDS})",
            pageSize=100,
        ).execute(num_retries=0)
        return _newest_first(list(listed.get("files", [])))

    def _find_folder_sync(
        self, client: DriveClient, cancel: threading.Event, path: FolderPath
    ) -> str | None:
        return self._folders.find(client.files, path)

    def _lookup_sync(
        self, client: DriveClient, cancel: threading.Event, key: str, folder: FolderPath, name: str
    ) -> builtins.list[_Resource]:
        parent = self._folders.find(client.files, folder)
        found = [] if parent is None else self._files_named(client.files, parent, name)
        if not found:
            raise ObjectNotFound(f"{key!r} is not on Google Drive ({self.name})")
        return found

    # -- put -------------------------------------------------------------------

    def _put_sync(
        self,
        client: DriveClient,
        cancel: threading.Event,
        key: str,
        folder: FolderPath,
        name: str,
        source: PutSource,
        handle: str | None,
        notify: Callable[[int], None],
        save: Callable[[str | None], None],
    ) -> ObjectInfo:
        slot = (key, source.sha256)
        with self._sessions_lock:
            session = self._sessions.get(slot)
        if session is None:
            session = _Session(uri=handle)  # a new process: reported progress starts at 0
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                parent = self._folders.ensure(client.files, folder)
                try:
                    return self._put_once(
                        client, cancel, key, parent, name, source, session, notify, save
                    )
                except BaseException:
                    # A create whose answer was lost may have made the file: from now on
                    # a put here looks before it writes, or a retry would make a second.
                    self._folders.taint(parent)
                    raise
            except Cancelled:
                raise  # the session stays open (and saved) so a later put resumes it
            except SessionGone:
                self._forget_session(slot, save)
                session.uri = None
                if attempt == PUT_ATTEMPTS:
                    raise TransientError(
                        f"Google Drive kept dropping the upload session of {key}"
                    ) from None
            except HttpError as err:
                if status_of(err) == 404 and attempt < PUT_ATTEMPTS:
                    self._folders.forget()  # the folder (or the file) went away meanwhile
                    continue
                failure: Exception = err
                if is_quota_error(err):
                    failure = self._quota_error(client, key, source.size)
                self._forget_if_permanent(slot, save, failure)
                if failure is not err:
                    raise failure from err
                raise
            except Exception as err:
                self._forget_if_permanent(slot, save, err)
                raise
        raise AssertionError("unreachable")

    def _put_once(
        self,
        client: DriveClient,
        cancel: threading.Event,
        key: str,
        parent: str,
        name: str,
        source: PutSource,
        session: _Session,
        notify: Callable[[int], None],
        save: Callable[[str | None], None],
    ) -> ObjectInfo:
        slot = (key, source.sha256)
        mine = self._written.get((parent, name))
        if mine is not None:
            existing = [mine]
        elif self._folders.is_fresh(parent) and session.uri is None:
            existing = []  # a folder this store made: only its own puts are in it
        else:
            existing = self._files_named(client.files, parent, name)
        current = existing[0] if existing else None
        if current is not None and _holds(current, source):
            # An earlier attempt finished but its answer was lost, or nothing changed.
            self._acked(session, source.size, notify)
            return self._finished(client, key, current, existing, slot, save, parent, name)

        def on_session(uri: str) -> None:
            session.uri = uri
            with self._sessions_lock:
                self._sessions[slot] = session
            save(uri)

        if session.uri is None and source.size <= min(SMALL_FILE, self.chunk_size) and not current:
            return self._put_small(client, key, parent, name, source, session, notify, slot, save)
        media = _media(source, self.chunk_size)
        try:
            metadata: _Resource = {"appProperties": {**TAG, SHA256_PROPERTY: source.sha256}}
            files = client.files
            if current is None:
                metadata.update(name=name, parents=[parent], mimeType="application/octet-stream")
                request = files.create(body=metadata, media_body=media, fields=FILE_FIELDS)
            else:
                request = files.update(
                    fileId=current["id"], body=metadata, media_body=media, fields=FILE_FIELDS
                )
            upload = Upload(
                request=request,
                http=client.http,
                size=source.size,
                cancel=cancel,
                on_session=on_session,
                on_acked=lambda total: self._acked(session, total, notify),
            )
            done = None
            if session.uri is not None:
                with self._sessions_lock:
                    self._sessions[slot] = session
                done = upload.continue_session(session.uri)
            if done is None:
                done = upload.run()
        finally:
            media.stream().close()
        return self._finished(client, key, done, existing, slot, save, parent, name)

    def _put_small(
        self,
        client: DriveClient,
        key: str,
        parent: str,
        name: str,
        source: PutSource,
        session: _Session,
        notify: Callable[[int], None],
        slot: tuple[str, str],
        save: Callable[[str | None], None],
    ) -> ObjectInfo:
        """One multipart request: a resumable session would cost a second round trip, and
        a file this small has nothing worth resuming. A retry after a lost answer finds the
        file by name and content first, so it never makes a duplicate."""
        try:
            with open(source.path, "rb") as fh:
                data = fh.read(source.size + 1)
        except OSError as err:
            raise PermanentError(
                f"cannot read the source file {source.path}: {err.strerror or err}"
            ) from err
        if len(data) != source.size:
            raise PermanentError(
                f"{source.path} is {len(data)} bytes, not the {source.size} it had when hashed",
                hint="it changed after it was packed; the backup will pack it again",
            )
        metadata: _Resource = {
            "name": name,
            "parents": [parent],
            "mimeType": "application/octet-stream",
            "appProperties": {**TAG, SHA256_PROPERTY: source.sha256},
        }
        done = create_small(client.http, client.upload_url, metadata, data, FILE_FIELDS)
        self._acked(session, source.size, notify)
        return self._finished(client, key, done, [], slot, save, parent, name)

    def _finished(
        self,
        client: DriveClient,
        key: str,
        result: _Resource,
        existing: builtins.list[_Resource],
        slot: tuple[str, str],
        save: Callable[[str | None], None],
        parent: str,
        name: str,
    ) -> ObjectInfo:
        self._forget_session(slot, save)
        self._written[(parent, name)] = result
        for extra in existing:
            if extra.get("id") != result.get("id"):
                try:  # a duplicate of the key: the object is the one just written
                    client.files.delete(fileId=extra["id"]).execute(num_retries=0)
                except (HttpError, *TRANSPORT_ERRORS):
                    pass  # the next put of this key tries again; reads pick the newest
        return _info(key, result)

    @staticmethod
    def _acked(session: _Session, total: int, notify: Callable[[int], None]) -> None:
        if total > session.reported:
            notify(total - session.reported)
            session.reported = total

    def _forget_session(self, slot: tuple[str, str], save: Callable[[str | None], None]) -> None:
        with self._sessions_lock:
            self._sessions.pop(slot, None)
        save(None)

    def _forget_if_permanent(
        self, slot: tuple[str, str], save: Callable[[str | None], None], err: Exception
    ) -> None:
        """A session that failed for good is not worth resuming; a transient failure is."""
        mapped = map_error(err, what="upload", store=self.name)
        if isinstance(mapped, PermanentError):
            self._forget_session(slot, save)

    def _quota_error(self, client: DriveClient, key: str, needed: int) -> RemoteError:
        used: int | None = None
        limit: int | None = None
        try:
            used, limit = self._quota_sync(client, threading.Event())
        except (HttpError, *TRANSPORT_ERRORS):
            pass  # the message then goes without the numbers
        return quota_full(store=self.name, key=key, used=used, limit=limit, needed=needed)

    # -- get / list / delete / quota ---------------------------------------------------

    def _get_sync(
        self,
        client: DriveClient,
        cancel: threading.Event,
        key: str,
        folder: FolderPath,
        name: str,
        dest: BinaryIO,
        offset: int,
        length: int | None,
        notify: Callable[[int], None],
    ) -> int:
        parent = self._folders.find(client.files, folder)
        # Reading back what this store just wrote (a manifest, say) needs no lookup.
        found = None if parent is None else self._written.get((parent, name))
        if found is None:
            found = self._lookup_sync(client, cancel, key, folder, name)[0]
        size = int(found.get("size", 0))
        end = size if length is None else min(size, offset + length)
        request = client.files.get_media(fileId=found["id"])
        headers = dict(request.headers)
        pos = offset
        while pos < end:
            if cancel.is_set():
                raise Cancelled
            stop = min(end, pos + self.chunk_size)
            headers["range"] = f"bytes={pos}-{stop - 1}"
            resp, content = client.http.request(request.uri, "GET", headers=headers)
            if int(resp.status) == 200:  # the whole file: the server ignored the range
                content = content[pos:stop]
            elif int(resp.status) != 206:
                raise HttpError(resp, content, uri=request.uri)
            block = content[: stop - pos]
            if not block:
                raise TransientError(f"Google Drive sent no data for {key} at byte {pos}")
            try:
                dest.write(block)
            except OSError as err:  # the local disk, not the network: retrying will not help
                raise PermanentError(
                    f"cannot write {key} where it was asked to go: {err.strerror or err}"
                ) from err
            pos += len(block)
            notify(len(block))
        return max(0, pos - offset)

    def _list_folder_sync(
        self, client: DriveClient, cancel: threading.Event, folder_id: str
    ) -> tuple[dict[str, _Resource], dict[str, str]]:
        """One folder's files (the newest of each name) and subfolders, every page."""
        files: dict[str, builtins.list[_Resource]] = {}
        folders: dict[str, str] = {}
        token: str | None = None
        while True:
            page = client.files.list(
                q=tagged(folder_id),
                fields=f"nextPageToken,files({FILE_FIELDS},mimeType)",
                pageSize=self.page_size,
                pageToken=token,
            ).execute(num_retries=0)
            for item in page.get("files", []):
                name = str(item.get("name", ""))
                if not name or "/" in name:
                    continue  # not a name a key segment can have
                if item.get("mimeType") == FOLDER_MIME:
                    folders.setdefault(name, str(item["id"]))
                else:
                    files.setdefault(name, []).append(item)
            token = page.get("nextPageToken")
            if not token:
                break
        return {n: _newest_first(found)[0] for n, found in files.items()}, folders

    def _delete_sync(
        self, client: DriveClient, cancel: threading.Event, key: str, folder: FolderPath, name: str
    ) -> None:
        for found in self._lookup_sync(client, cancel, key, folder, name):
            client.files.delete(fileId=found["id"]).execute(num_retries=0)
        for spot in [k for k in self._written if k[1] == name]:
            self._written.pop(spot, None)

    def _quota_sync(self, client: DriveClient, cancel: threading.Event) -> tuple[int, int | None]:
        about = (
            client.service.about().get(fields="storageQuota(limit,usage)").execute(num_retries=0)
        )
        quota = about.get("storageQuota", {})
        limit = quota.get("limit")
        return int(quota.get("usage", 0)), int(limit) if limit else None

    def _account_sync(self, client: DriveClient, cancel: threading.Event) -> str | None:
        about = client.service.about().get(fields="user(emailAddress)").execute(num_retries=0)
        address = about.get("user", {}).get("emailAddress")
        return str(address) if address else None


def _split(key: str) -> tuple[FolderPath, str]:
    parts = check_key(key).split("/")
    return tuple(parts[:-1]), parts[-1]


def _check_prefix(prefix: str) -> FolderPath:
    """The folder path every key with this prefix lives under."""
    if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
        raise PermanentError(f"{prefix!r} is not a valid key prefix")
    head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    if not head:
        return ()
    return tuple(check_key(head).split("/"))


def _media(source: PutSource, chunk_size: int) -> MediaFileUpload:
    try:
        media = MediaFileUpload(
            str(source.path),
            mimetype="application/octet-stream",
            chunksize=chunk_size,
            resumable=True,
        )
    except OSError as err:
        raise PermanentError(
            f"cannot read the source file {source.path}: {err.strerror or err}"
        ) from err
    if media.size() != source.size:
        media.stream().close()
        raise PermanentError(
            f"{source.path} is {media.size()} bytes, not the {source.size} it had when hashed",
            hint="it changed after it was packed; the backup will pack it again",
        )
    return media


def _holds(found: _Resource, source: PutSource) -> bool:
    """True if the Drive file already has exactly this content."""
    if int(found.get("size", -1)) != source.size:
        return False
    digest = found.get("sha256Checksum") or (found.get("appProperties") or {}).get(SHA256_PROPERTY)
    return isinstance(digest, str) and digest.lower() == source.sha256.lower()


def _newest_first(items: builtins.list[_Resource]) -> builtins.list[_Resource]:
    return sorted(
        items,
        key=lambda f: (str(f.get("modifiedTime", "")), str(f.get("createdTime", "")), f["id"]),
        reverse=True,
    )


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _info(key: str, found: _Resource) -> ObjectInfo:
    """Checksums as Drive reports them: a wrong md5 is for the caller to catch, not to mend."""
    props = found.get("appProperties") or {}
    sha256 = found.get("sha256Checksum") or props.get(SHA256_PROPERTY)
    return ObjectInfo(
        key=key,
        size=int(found.get("size", 0)),
        md5=found.get("md5Checksum"),
        sha256=sha256,
        modified=_timestamp(found.get("modifiedTime")),
        extra={"id": str(found["id"])},
    )
