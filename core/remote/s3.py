"""S3 (or any S3-compatible server) as the Tier 3 archive store.

Keys live under an optional prefix in one bucket (`prefix/key`). Archives go
up in the settings' storage class (Deep Archive by default) and manifests in
STANDARD, so they can be read without a restore (`put(..., storage_class=)`).
Reading an archived object that was not restored raises `ArchivedError`;
`request_restore` and `restore_status` drive the thaw.

boto3 is synchronous, so every call runs on the store's worker threads (one
client, which botocore allows to be shared between threads). botocore's own
retries are off: retrying is the RetryingStore wrapper's job, and a put must
resume rather than start over, which botocore's retries cannot do. How a put
works (and what becomes of unfinished multipart uploads) is in s3_upload.py.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

from botocore.exceptions import ClientError, FlexibleChecksumError

from core.remote.base import (
    ObjectInfo,
    PermanentError,
    ProgressFn,
    PutSource,
    ResumeSlot,
    TransientError,
    check_key,
)
from core.remote.s3_bucket import BucketReport, check_bucket
from core.remote.s3_errors import ArchivedError, error_code, map_error
from core.remote.s3_objects import info_from_head, info_from_listing
from core.remote.s3_restore import RestoreStatus, RestoreTier, restore_status
from core.remote.s3_stream import (
    ProducerFailed,
    SpoolParts,
    StreamJob,
    StreamRequest,
    stream_part_size,
)
from core.remote.s3_upload import MIN_PART, Cancelled, PutJob, PutRequest, UploadState
from core.remote.threads import loop_notifier, on_worker

__all__ = ["ArchivedError", "BucketReport", "RestoreStatus", "S3Settings", "S3Store"]

MiB = 1024 * 1024
READ_BLOCK = 1 * MiB
TIERS = ("Bulk", "Standard", "Expedited")

_T = TypeVar("_T")


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    """None: AWS itself; else any S3-compatible server (MinIO, SeaweedFS, Wasabi…)."""
    region: str | None = None
    addressing: Literal["auto", "path", "virtual"] = "auto"
    storage_class: str = "DEEP_ARCHIVE"
    sse: Literal[None, "AES256", "aws:kms"] = None
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise ValueError("bucket must be a bucket name")
        if self.prefix:
            try:
                check_key(self.prefix.strip("/"))
            except PermanentError:
                raise ValueError(f"{self.prefix!r} is not a valid key prefix") from None
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("kms_key_id needs sse='aws:kms'")
        if self.addressing not in ("auto", "path", "virtual"):
            raise ValueError("addressing must be auto, path or virtual")

    @property
    def root(self) -> str:
        """The prefix as it starts every S3 key: '' or 'a/b/'."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    def sse_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.sse is not None:
            params["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            params["SSEKMSKeyId"] = self.kms_key_id
        return params


class S3Store:
    def __init__(
        self,
        settings: S3Settings,
        *,
        name: str = "s3",
        access_key: str | None = None,
        secret_key: str | None = None,
        part_size: int = 64 * MiB,
        max_workers: int = 8,
        page_size: int = 1000,
        timeout: float = 60.0,
        abort_on_cancel: bool = True,
    ) -> None:
        """`access_key`/`secret_key` None: the standard AWS credential chain decides.

        `abort_on_cancel=False` keeps a cancelled multipart upload (and its slot) so a
        later put resumes it; by default a cancelled put aborts it (see s3_upload.py).
        """
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's minimum)")
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = name
        self.settings = settings
        self.part_size = part_size
        self.page_size = page_size
        self.abort_on_cancel = abort_on_cancel
        self._access_key = access_key
        self._secret_key = secret_key
        self._timeout = timeout
        self._max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=f"s3-{name}")
        self._client_obj: Any = None
        self._client_lock = threading.Lock()
        self._uploads: dict[tuple[str, str], UploadState] = {}
        self._uploads_lock = threading.Lock()
        self._put_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._closed = False

    def __repr__(self) -> str:  # never the keys
        s = self.settings
        return f"S3Store(name={self.name!r}, bucket={s.bucket!r}, prefix={s.prefix!r})"

    # -- the Store protocol ------------------------------------------------

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        """`storage_class` overrides the settings' for this object (manifests: STANDARD)."""
        s3_key = self._s3_key(key)
        loop = asyncio.get_running_loop()
        handle = resume.load() if resume is not None else None
        save = _saver(resume, loop)

        request = PutRequest(
            store=self.name,
            bucket=self.settings.bucket,
            key=key,
            s3_key=s3_key,
            source=source,
            storage_class=storage_class
            or ("STANDARD" if source.keep_readable else self.settings.storage_class),
            sse=self.settings.sse_params(),
            part_size=self.part_size,
            abort_on_cancel=self.abort_on_cancel,
        )
        lock = self._put_locks.get(key)
        if lock is None:
            lock = self._put_locks[key] = asyncio.Lock()
        async with lock:  # two puts of one key must not share (or race for) an upload id
            return await self._run(
                f"upload {key}", self._put_sync, request, handle, loop_notifier(progress), save
            )

    async def put_stream(
        self,
        key: str,
        produce: Callable[[SpoolParts], _T],
        *,
        tag: str,
        size_bound: int,
        resume: ResumeSlot | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[_T, ObjectInfo]:
        """Uploads what `produce` writes, while it writes (see s3_stream.py).

        `produce(sink)` runs on a worker thread and writes the whole object into
        `sink` (spooled to a temp file as its parts go up); its result is returned
        with the object's info (size and digests of the bytes sent). `tag` names
        the producer's inputs: the slot is keyed by it (the content's digest comes
        last), and a resumed upload keeps only the parts whose bytes match.
        `size_bound` (at least the object's size) picks the part size. An error
        raised by `produce` comes out as it was raised.
        """
        s3_key = self._s3_key(key)
        loop = asyncio.get_running_loop()
        handle = resume.load() if resume is not None else None
        save = _saver(resume, loop)

        request = StreamRequest(
            store=self.name,
            bucket=self.settings.bucket,
            key=key,
            s3_key=s3_key,
            storage_class=self.settings.storage_class,
            sse=self.settings.sse_params(),
            part_size=stream_part_size(size_bound, self.part_size),
            abort_on_cancel=self.abort_on_cancel,
            tag=tag,
            resumable=resume is not None,
        )
        notify = loop_notifier(progress)

        def work(client: Callable[[], Any], cancel: threading.Event) -> tuple[_T, ObjectInfo]:
            with tempfile.TemporaryDirectory(prefix="tierkeeper-upload-") as tmp:
                job: StreamJob[_T] = StreamJob(
                    client, request, handle, spool=Path(tmp) / "object",
                    cancel=cancel, notify=notify, save=save,
                )  # fmt: skip
                return job.run(produce)

        lock = self._put_locks.get(key)
        if lock is None:
            lock = self._put_locks[key] = asyncio.Lock()
        async with lock:
            try:
                return await self._run(f"upload {key}", work, lazy=True)
            except ProducerFailed as failed:
                raise failed.error from None

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        s3_key = self._s3_key(key)
        if offset < 0 or (length is not None and length < 0):
            raise PermanentError(f"invalid range offset={offset} length={length} for {key!r}")
        notify = loop_notifier(progress)
        return await self._run(
            f"download {key}", self._get_sync, key, s3_key, dest, offset, length, notify
        )

    async def stat(self, key: str) -> ObjectInfo:
        s3_key = self._s3_key(key)
        head = await self._run(f"look up {key}", self._head_sync, s3_key)
        return info_from_head(key, head)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in S3's (UTF-8 byte) order.

        Listings carry no user metadata, so `sha256` is None here; `stat` reads it."""
        if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
            raise PermanentError(f"{prefix!r} is not a valid key prefix")
        root = self.settings.root
        kms = self.settings.sse == "aws:kms"
        token: str | None = None
        while True:
            page = await self._run(f"list {prefix!r}", self._list_page_sync, root + prefix, token)
            for item in page.get("Contents") or []:
                key = str(item["Key"])[len(root) :]
                try:
                    check_key(key)
                except PermanentError:
                    continue  # a "folder/" marker or a name we could never have written
                yield info_from_listing(key, item, kms=kms)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def delete(self, key: str) -> None:
        """ObjectNotFound when the key is not there (S3's own delete would not say)."""
        s3_key = self._s3_key(key)
        await self._run(f"delete {key}", self._delete_sync, s3_key)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()

    # -- beyond the protocol -------------------------------------------------

    async def head_bucket(self, *, probe_write: bool = True) -> BucketReport:
        """For `target test`: exists? where? writable (writes and deletes a probe)? versioning,
        object lock? Raises for bad credentials or a bucket the keys may not see."""
        s = self.settings
        return await self._run(
            f"check bucket {s.bucket}",
            lambda client, cancel: check_bucket(
                client, bucket=s.bucket, probe_prefix=s.root, sse=s.sse_params(), probe=probe_write
            ),
        )

    async def request_restore(self, key: str, days: int, tier: RestoreTier = "Bulk") -> None:
        """Ask S3 for a temporary readable copy of an archived object, for `days` days.

        A restore already running or done, or an object that is not archived at all,
        is not an error: `restore_status` says where things stand. Deep Archive takes
        up to 12 hours (Standard) or 48 hours (Bulk) and has no Expedited tier.
        """
        s3_key = self._s3_key(key)
        if days < 1:
            raise PermanentError(f"a restore must last at least one day, not {days}")
        if tier not in TIERS:
            raise PermanentError(f"unknown restore tier {tier!r} (one of {', '.join(TIERS)})")
        await self._run(f"request a restore of {key}", self._restore_sync, s3_key, days, tier)

    async def restore_status(self, key: str) -> RestoreStatus:
        s3_key = self._s3_key(key)
        head = await self._run(f"look up {key}", self._head_sync, s3_key)
        return restore_status(head)

    # -- plumbing ------------------------------------------------------------

    def _s3_key(self, key: str) -> str:
        return self.settings.root + check_key(key)

    async def _run(self, what: str, fn: Callable[..., _T], *args: object, lazy: bool = False) -> _T:
        """Run `fn(client, cancel, *args)` on a worker; on cancellation, stop it and wait.
        `lazy`: `fn` gets a function that returns the client, to make it when it needs it."""
        if self._closed:
            raise PermanentError(f"the S3 store {self.name} is closed")
        return await on_worker(
            self._executor, lambda cancel: self._work(what, fn, cancel, args, lazy)
        )

    def _work(
        self,
        what: str,
        fn: Callable[..., _T],
        cancel: threading.Event,
        args: tuple[object, ...],
        lazy: bool = False,
    ) -> _T:
        try:
            return fn(self._client if lazy else self._client(), cancel, *args)
        except Cancelled:
            raise
        except Exception as err:
            mapped = map_error(err, what=what, store=self.name, bucket=self.settings.bucket)
            if mapped is None or mapped is err:
                raise
            raise mapped from err

    def _client(self) -> Any:
        """Built on first use, on a worker: loading botocore's models takes a while. So is
        boto3 imported: a command or a window that never touches S3 (most) does not wait
        for it."""
        with self._client_lock:
            if self._client_obj is None:
                import boto3.session
                from botocore.config import Config

                s = self.settings
                session = boto3.session.Session(
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    region_name=s.region,
                )
                config = Config(
                    retries={"max_attempts": 1},
                    s3={"addressing_style": s.addressing},
                    connect_timeout=min(self._timeout, 20.0),
                    read_timeout=self._timeout,
                    max_pool_connections=self._max_workers,
                    request_checksum_calculation="when_supported",
                    response_checksum_validation="when_supported",
                )
                try:
                    self._client_obj = session.client(
                        "s3", endpoint_url=s.endpoint_url, config=config
                    )
                except ValueError as err:  # botocore's word for a malformed endpoint URL
                    raise PermanentError(
                        f"S3 ({self.name}) cannot use the endpoint {s.endpoint_url!r}: {err}",
                        hint="fix the target's endpoint URL (e.g. https://s3.example.com)",
                    ) from err
            return self._client_obj

    # -- the calls, on a worker --------------------------------------------------------

    def _put_sync(
        self,
        client: Any,
        cancel: threading.Event,
        request: PutRequest,
        handle: str | None,
        notify: Callable[[int], None],
        save: Callable[[str | None], None],
    ) -> ObjectInfo:
        slot = (request.key, request.source.sha256.lower())
        with self._uploads_lock:
            state = self._uploads.get(slot)
            if state is None:
                state = self._uploads[slot] = UploadState(upload_id=handle)

        job = PutJob(client, request, state, cancel=cancel, notify=notify, save=save)
        try:
            info = job.run()
        except BaseException as err:
            # Kept for the next attempt: a transient failure, or a cancelled upload that
            # was not aborted. Anything else starts from scratch next time.
            mapped = map_error(err, what="upload", store=self.name, bucket=request.bucket)
            keep = isinstance(mapped, TransientError) or (
                isinstance(err, Cancelled) and state.upload_id is not None
            )
            if not keep:
                with self._uploads_lock:
                    self._uploads.pop(slot, None)
            raise
        with self._uploads_lock:
            self._uploads.pop(slot, None)
        return info

    def _get_sync(
        self,
        client: Any,
        cancel: threading.Event,
        key: str,
        s3_key: str,
        dest: BinaryIO,
        offset: int,
        length: int | None,
        notify: Callable[[int], None],
    ) -> int:
        if length == 0:
            self._head_sync(client, cancel, s3_key)  # a missing key still says so
            return 0
        params: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": s3_key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            params["Range"] = f"bytes={offset}-{end}"
        try:
            answer = client.get_object(**params)
        except ClientError as err:
            if error_code(err) == "InvalidRange":
                return 0  # the range starts at or past the end: nothing to read
            raise
        body = answer["Body"]
        start = _tell(dest)
        written = 0
        try:
            while True:
                if cancel.is_set():
                    raise Cancelled
                try:
                    block = body.read(READ_BLOCK)
                except FlexibleChecksumError as err:
                    raise _damaged_download(key, self.name, dest, start) from err
                if not block:
                    break
                try:
                    dest.write(block)
                except OSError as err:  # the local disk, not the network: retrying won't help
                    raise PermanentError(
                        f"cannot write {key} where it was asked to go: {err.strerror or err}"
                    ) from err
                written += len(block)
                notify(len(block))
        finally:
            body.close()
        return written

    def _head_sync(self, client: Any, cancel: threading.Event, s3_key: str) -> dict[str, Any]:
        head: dict[str, Any] = client.head_object(
            Bucket=self.settings.bucket, Key=s3_key, ChecksumMode="ENABLED"
        )
        return head

    def _list_page_sync(
        self, client: Any, cancel: threading.Event, prefix: str, token: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Bucket": self.settings.bucket,
            "Prefix": prefix,
            "MaxKeys": self.page_size,
        }
        if token:
            params["ContinuationToken"] = token
        page: dict[str, Any] = client.list_objects_v2(**params)
        return page

    def _delete_sync(self, client: Any, cancel: threading.Event, s3_key: str) -> None:
        self._head_sync(client, cancel, s3_key)  # ObjectNotFound, as other stores say
        client.delete_object(Bucket=self.settings.bucket, Key=s3_key)

    def _restore_sync(
        self, client: Any, cancel: threading.Event, s3_key: str, days: int, tier: str
    ) -> None:
        try:
            client.restore_object(
                Bucket=self.settings.bucket,
                Key=s3_key,
                RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}},
            )
        except ClientError as err:
            code = error_code(err)
            if code in ("RestoreAlreadyInProgress", "InvalidObjectState"):
                # already running; or not archived (nothing to restore)
                return
            raise


def _tell(dest: BinaryIO) -> int | None:
    try:
        return dest.tell() if dest.seekable() else None
    except (OSError, ValueError, AttributeError):
        return None


def _damaged_download(key: str, store: str, dest: BinaryIO, start: int | None) -> Exception:
    """The whole object arrived but its checksum did not match: take back what was written
    (so a retry starts from the beginning), or refuse when the destination cannot rewind."""
    if start is not None:
        try:
            dest.seek(start)
            dest.truncate()
        except (OSError, ValueError):
            start = None
    if start is None:
        return PermanentError(
            f"{key} arrived damaged from S3 ({store}) (checksum mismatch) and what was "
            "written cannot be taken back"
        )
    return TransientError(f"{key} arrived damaged from S3 ({store}) (checksum mismatch)")


def _saver(
    resume: ResumeSlot | None, loop: asyncio.AbstractEventLoop
) -> Callable[[str | None], None]:
    """For a worker thread: persists the upload id before it goes on (the slot runs on
    the loop, so the id is saved before the first part is sent)."""

    def save(value: str | None) -> None:
        if resume is not None:
            asyncio.run_coroutine_threadsafe(resume.save(value), loop).result()

    return save
