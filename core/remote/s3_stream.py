"""A multipart upload fed while its bytes are being produced (a phase tarball as it is built).

A `put` needs the whole file first, so an archive used to wait for its build
to end before the first byte left. Here the producer writes into a
`SpoolParts`, which keeps the bytes in a local temp file and, each time a part
is complete, hands its place in the file (and its SHA-256, taken on the way)
to a small pool of uploader threads that send it at once, reading it back from
the file (the page cache, in practice). Memory stays flat however far the
uploads fall behind: the build's compressor already holds a 128 MiB window,
and part buffers on top would not fit the process's budget; the disk holds at
most the object, as the finished file of a `put` did.

What a put promises still holds:
- every part carries its SHA-256 and S3 checks it (a damaged part is sent once
  more, and refused for good the second time, as in s3_upload.py);
- the SHA-256 and MD5 of the whole object are taken in order as the bytes pass,
  and the composite checksum S3 computes from the parts' is checked at the end;
- the upload id goes to the caller's ResumeSlot before any part is sent. The
  slot is keyed by the producer's `tag` (a digest of its inputs), because the
  content's own digest is not known before the end: a restarted job produces
  again, S3 says which parts it holds (ListParts), and a part is skipped only
  when its bytes provably match — a deterministic producer skips them all, a
  non-deterministic one (fresh encryption salt) simply sends them again;
- no upload is left behind: a failure that retrying cannot fix, a failed
  producer, or a cancel aborts it; a transient failure keeps it only when a
  slot remembers it; and uploads of the same key that nobody can resume any
  more (their slot was for other inputs) are aborted when a new one starts.

The object's user metadata names the tag, not the SHA-256 (S3 fixes metadata
when the upload is created, before the digest exists): the manifest holds the
digest, and `stat` reports S3's composite checksum for a check against ours.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from botocore.exceptions import ClientError

from core.errors import StorageFullError
from core.lane import Lane
from core.remote.base import ObjectInfo, PermanentError, RemoteError, TransientError
from core.remote.s3_errors import DIGEST_CODES, TRANSPORT_ERRORS, error_code, map_error
from core.remote.s3_objects import COMPOSITE_EXTRA
from core.remote.s3_upload import (
    MIN_PART,
    Cancelled,
    effective_part_size,
    list_parts,
    same_part,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

STREAM_META = "tk-stream"
"""User-metadata name of the producer's tag: which inputs an object was made from."""
STREAM_PART = 8 * 1024 * 1024
"""Part size while streaming: the first part leaves sooner, and what is left to send once
the producer ends (at most a part or two) is small."""
UPLOADERS = 2
"""Parts sent at once; the others wait their turn in the spool file."""
READ_BLOCK = 256 * 1024
"""The most a part's reader returns at once (see `PartReader.read`)."""
PART_ATTEMPTS = 4
RETRY_DELAY = 0.25
"""Seconds before the first retry of a part; doubled each time."""


def stream_part_size(size_bound: int, part_size: int) -> int:
    """The part size for an object of at most `size_bound` bytes: a pure function of its
    arguments, so a restarted upload cuts the same parts."""
    base = max(MIN_PART, min(part_size, STREAM_PART))
    return effective_part_size(size_bound, base)


def composite_checksum(part_sha256: list[bytes]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' digests, then `-N`."""
    whole = hashlib.sha256(b"".join(part_sha256)).digest()
    return f"{base64.b64encode(whole).decode('ascii')}-{len(part_sha256)}"


class ProducerFailed(Exception):
    """Carries the producer's own error past the S3 error mapping, unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class StreamRequest:
    store: str
    bucket: str
    key: str
    s3_key: str
    storage_class: str
    sse: dict[str, str]
    part_size: int
    abort_on_cancel: bool
    tag: str
    resumable: bool
    """A slot keeps the upload id: worth keeping the upload after a transient failure."""

    @property
    def kms(self) -> bool:
        return self.sse.get("ServerSideEncryption") == "aws:kms"

    @property
    def target(self) -> dict[str, Any]:
        return {"Bucket": self.bucket, "Key": self.s3_key}


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int
    sha256: bytes


class SpoolParts:
    """The producer's file object: spools to `fh`, hashes the whole object in order, and
    hands on each part as soon as its last byte is in the file.

    The hashing and writing run on a lane of their own: the producer (a phase
    build feeding zstd) is the busiest thread of an archive, and this is a
    fifth of its work. A failure there (a full disk, a part that gave up)
    comes back from the producer's next `write`, or from `close`.
    """

    def __init__(
        self,
        fh: BinaryIO,
        part_size: int,
        hand_off: Callable[[Part], None],
        check: Callable[[], None],
    ) -> None:
        self._fh = fh
        self._part_size = part_size
        self._hand_off = hand_off
        self._check = check
        self._part = hashlib.sha256()
        self._start = 0
        self._fill = 0
        self._parts: list[Part] = []
        self._sha256 = hashlib.sha256()
        self._lane = Lane()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        self._check()
        chunk = data if isinstance(data, bytes) else bytes(data)  # the caller may reuse it
        self._lane.then(lambda: self._take(chunk))
        return len(chunk)

    def _take(self, data: bytes) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        self._sha256.update(view)
        done = 0
        while done < n:
            take = min(n - done, self._part_size - self._fill)
            piece = view[done : done + take]
            self._part.update(piece)
            _write_all(self._fh, piece)
            self._fill += take
            done += take
            if self._fill == self._part_size:
                self._cut()
        self.size += n

    def flush(self) -> None:
        """Every write goes straight to the file (unbuffered): nothing to flush."""

    def close(self) -> list[Part]:
        """Hands on the last part (short, or empty for an empty object); returns them all."""
        self._lane.close()
        if self._fill or not self._parts:
            self._cut()
        return self._parts

    def _cut(self) -> None:
        part = Part(len(self._parts) + 1, self._start, self._fill, self._part.digest())
        self._parts.append(part)
        self._part = hashlib.sha256()
        self._start += self._fill
        self._fill = 0
        self._hand_off(part)

    def abandon(self) -> None:
        """Stops the lane of a build that failed: what it still held is not wanted."""
        self._lane.abandon()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def _write_all(fh: BinaryIO, data: memoryview) -> None:
    try:
        while data:
            n = fh.write(data)
            data = data[n:] if n is not None else data[len(data) :]
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(
                "No space left for the temp copy of an upload in flight",
                hint="free some disk space (the temp folder) and retry",
            ) from err
        raise


class PartReader:
    """One part of the spool file as a file object of its own, for botocore to send
    (and rewind for a signature or a retry) without holding it in memory."""

    def __init__(self, path: Path, part: Part) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start = part.offset
        self._size = part.size
        self._pos = 0
        self._fh.seek(self._start)

    def read(self, size: int | None = -1, /) -> bytes:
        """At most READ_BLOCK at a time, whatever is asked: botocore hashes and sends a
        part in 1 MiB reads, and freed 1 MiB buffers are what glibc keeps around."""
        left = min(self._size - self._pos, READ_BLOCK)
        if size is None or size < 0 or size > left:
            size = left
        data = self._fh.read(size) if size else b""
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = min(max(base + offset, 0), self._size)
        self._fh.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PartReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _md5_of(path: Path, part: Part) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with PartReader(path, part) as reader:
        while block := reader.read(1 << 20):
            md5.update(block)
    return md5.hexdigest()


@dataclass
class _Sent:
    etag: str
    sha256: bytes


class StreamJob(Generic[_T]):
    """One streamed upload, driven from a store worker thread (`run`)."""

    def __init__(
        self,
        client: Callable[[], Any],
        request: StreamRequest,
        handle: str | None,
        *,
        spool: Path,
        cancel: threading.Event,
        notify: Callable[[int], None],
        save: Callable[[str | None], None],
    ) -> None:
        self._client_of = client
        self.req = request
        self.upload_id = handle
        self.spool = spool
        self.cancel = cancel
        self.notify = notify
        self.save = save
        self._listed: dict[int, dict[str, Any]] = {}
        self._sent: dict[int, str] = {}
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._halt = threading.Event()
        self._digest_failures = 0
        self._pool: ThreadPoolExecutor | None = None
        self._opened: Future[None] = Future()

    @property
    def client(self) -> Any:
        """The store's boto3 client, made on first use (loading botocore's models takes a
        while: the producer is already building meanwhile)."""
        return self._client_of()

    def run(self, produce: Callable[[SpoolParts], _T]) -> tuple[_T, ObjectInfo]:
        try:
            with (
                open(self.spool, "wb", buffering=0) as fh,
                ThreadPoolExecutor(UPLOADERS, thread_name_prefix="s3-parts") as pool,
            ):
                self._pool = pool
                # the upload is opened beside the producer, not before it: parts wait for
                # it (`_send`), and its failure stops the producer at its next write
                self._opened = pool.submit(self._open)
                self._opened.add_done_callback(self._done)
                sink = SpoolParts(fh, self.req.part_size, self._hand_off, self._check)
                try:
                    result = self._produce(produce, sink)
                    parts = sink.close()
                except BaseException:
                    sink.abandon()
                    self._halt.set()  # parts still queued are not worth sending now
                    raise
            self._opened.result()
            self._check()
            return result, self._complete(parts, sink)
        except Cancelled:
            if self.req.abort_on_cancel or not self.req.resumable:
                self._abort_quietly()
            raise
        except BaseException as err:
            cause = err.error if isinstance(err, ProducerFailed) else err
            mapped = map_error(cause, what="upload", store=self.req.store, bucket=self.req.bucket)
            if not (self.req.resumable and isinstance(mapped, TransientError)):
                self._abort_quietly()
            raise

    # -- the upload --------------------------------------------------------------------

    def _open(self) -> None:
        """Resume the slot's upload if S3 still has it, else start one; abort the others."""
        self._abort_stale()
        if self.upload_id is not None:
            try:
                self._listed = list_parts(self.client, self.req.target, self.upload_id)
            except ClientError as err:
                if error_code(err) != "NoSuchUpload":
                    raise
                self._forget()  # aborted, expired, or completed by a run whose answer was lost
        if self.upload_id is None:
            created = self.client.create_multipart_upload(
                **self.req.target,
                ChecksumAlgorithm="SHA256",
                StorageClass=self.req.storage_class,
                ContentType="application/octet-stream",
                Metadata={STREAM_META: self.req.tag},
                **self.req.sse,
            )
            self.upload_id = str(created["UploadId"])
            self.save(self.upload_id)  # persisted before any part goes out

    def _abort_stale(self) -> None:
        """Uploads of this very key other than the slot's: puts of one key take turns, so
        these belong to runs that are gone and whose slot no longer names them."""
        params: dict[str, Any] = {"Bucket": self.req.bucket, "Prefix": self.req.s3_key}
        stale: list[str] = []
        while True:
            page = self.client.list_multipart_uploads(**params)
            for upload in page.get("Uploads") or []:
                ours = upload.get("UploadId") == self.upload_id
                if upload.get("Key") == self.req.s3_key and not ours:
                    stale.append(str(upload["UploadId"]))
            if not page.get("IsTruncated") or not page.get("NextKeyMarker"):
                break
            params["KeyMarker"] = page["NextKeyMarker"]
            params["UploadIdMarker"] = page.get("NextUploadIdMarker") or ""
        for upload_id in stale:
            log.info("aborting a stale multipart upload of %s", self.req.key)
            self._abort_id(upload_id)

    def _produce(self, produce: Callable[[SpoolParts], _T], sink: SpoolParts) -> _T:
        try:
            return produce(sink)
        except BaseException as err:
            if isinstance(err, Cancelled) or err is self._failure:
                raise
            raise ProducerFailed(err) from err

    def _check(self) -> None:
        """Raised in the producer: a cancel, or the failure of a part that gave up."""
        if self.cancel.is_set():
            raise Cancelled
        failure = self._failure
        if failure is not None:
            raise failure

    def _hand_off(self, part: Part) -> None:
        self._check()
        assert self._pool is not None
        self._pool.submit(self._send, part).add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None:
            with self._lock:
                if self._failure is None:
                    self._failure = error
            self._halt.set()

    def _send(self, part: Part) -> None:
        self._opened.result()  # its id saved, its finished parts listed
        if self._halt.is_set() or self.cancel.is_set():
            return
        have = self._listed.get(part.number)
        if have is not None and same_part(
            have,
            part.size,
            part.sha256.hex(),
            lambda: _md5_of(self.spool, part),
            kms=self.req.kms,
        ):
            etag = str(have["ETag"])
        else:
            etag = self._upload_part(part)
        with self._lock:
            self._sent[part.number] = etag
        self.notify(part.size)

    def _upload_part(self, part: Part) -> str:
        attempt = 1
        while True:
            try:
                with PartReader(self.spool, part) as body:
                    done = self.client.upload_part(
                        **self.req.target,
                        UploadId=self.upload_id,
                        PartNumber=part.number,
                        Body=body,
                        ContentLength=part.size,
                        ChecksumSHA256=base64.b64encode(part.sha256).decode("ascii"),
                    )
                return str(done["ETag"])
            except Exception as err:
                if isinstance(err, ClientError) and error_code(err) in DIGEST_CODES:
                    mapped: RemoteError | None = self._damaged_in_transit(part.number)
                else:
                    mapped = map_error(
                        err, what="upload", store=self.req.store, bucket=self.req.bucket
                    )
                if not isinstance(mapped, TransientError) or attempt >= PART_ATTEMPTS:
                    if mapped is None:
                        raise
                    raise mapped from err
                log.info("part %d of %s failed (%s); retrying", part.number, self.req.key, mapped)
            if self.cancel.wait(RETRY_DELAY * 2 ** (attempt - 1)) or self._halt.is_set():
                raise Cancelled
            attempt += 1

    def _damaged_in_transit(self, number: int) -> RemoteError:
        """Hashed from these very bytes, so the wire damaged them: once may be bad luck,
        twice means something keeps corrupting data and retrying would only hide it."""
        with self._lock:
            self._digest_failures += 1
            again = self._digest_failures > 1
        if again:
            return PermanentError(
                f"S3 ({self.req.store}) again received damaged data for {self.req.key} "
                f"(part {number}): its checksum did not match the bytes that arrived",
                hint="something between this computer and the server (a proxy, a faulty "
                "network card or memory) is corrupting uploads; check it before retrying",
            )
        return TransientError(
            f"S3 ({self.req.store}) received damaged data for {self.req.key} (part {number}, "
            "checksum mismatch in transit); it will be sent again"
        )

    def _complete(self, parts: list[Part], sink: SpoolParts) -> ObjectInfo:
        expected = composite_checksum([p.sha256 for p in parts])
        listing = [
            {
                "PartNumber": p.number,
                "ETag": self._sent[p.number],
                "ChecksumSHA256": base64.b64encode(p.sha256).decode("ascii"),
            }
            for p in parts
        ]
        try:
            done: dict[str, Any] = self.client.complete_multipart_upload(
                **self.req.target, UploadId=self.upload_id, MultipartUpload={"Parts": listing}
            )
        except ClientError as err:
            if error_code(err) != "NoSuchUpload":
                raise
            self._forget()
            done = self._already_there(sink.size, expected)  # our earlier complete went through
        reported = done.get("ChecksumSHA256")
        if isinstance(reported, str) and reported != expected:
            raise PermanentError(
                f"S3 ({self.req.store}) assembled {self.req.key} from parts other than the "
                "ones sent (its composite checksum differs)",
                hint="archive again; the archive was not recorded",
            )
        self._forget()
        extra = {"storage_class": self.req.storage_class, COMPOSITE_EXTRA: expected}
        if done.get("ETag"):
            extra["etag"] = str(done["ETag"]).strip('"')
        if done.get("VersionId"):
            extra["version_id"] = str(done["VersionId"])
        return ObjectInfo(
            key=self.req.key, size=sink.size, md5=None, sha256=sink.sha256, extra=extra
        )

    def _already_there(self, size: int, expected: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(**self.req.target, ChecksumMode="ENABLED")
        if int(head.get("ContentLength", -1)) == size and head.get("ChecksumSHA256") == expected:
            return head
        raise TransientError(
            f"the multipart upload of {self.req.key} vanished on S3 ({self.req.store}) "
            "before it was completed; it will start again"
        )

    def _abort_quietly(self) -> None:
        if self.upload_id is not None:
            self._abort_id(self.upload_id)
            self._forget()

    def _abort_id(self, upload_id: str) -> None:
        """Best effort: a lifecycle rule or the next put of the key clears what is left."""
        try:
            self.client.abort_multipart_upload(**self.req.target, UploadId=upload_id)
        except (ClientError, *TRANSPORT_ERRORS) as err:
            log.info("could not abort the multipart upload of %s: %s", self.req.key, err)

    def _forget(self) -> None:
        if self.upload_id is not None:
            self.upload_id = None
            self.save(None)
