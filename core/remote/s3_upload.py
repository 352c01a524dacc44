"""One S3 put, run on a worker thread: a single PutObject, or a multipart upload we drive.

Not s3transfer's managed upload, because that cannot resume: here the upload
id is handed to the caller's ResumeSlot as soon as S3 issues it (before any
part is sent), and a later put of the same key and content, in this process
or after a crash, asks S3 which parts it holds (ListParts) and sends only the
others. Parts are sent one after another, so cancellation is checked between
parts and a running SHA-256 of the whole file is checked against the packer's
before the upload is completed: a file that changed after it was hashed is
never stored under the old hash.

Integrity on the wire: every request carries `Content-MD5` and
`x-amz-checksum-sha256` and S3 checks both. A single PutObject sends the
packer's SHA-256 itself, so the object is verified end to end. A rejected
digest (`BadDigest`) is diagnosed here: if the file no longer matches its
recorded hashes it changed locally (permanent: the backup must pack again);
otherwise the bytes were damaged in transit, which is transient once, and
permanent the second time for the same content (something between here and the
server keeps damaging data, and retrying would only hide it).

What happens to an unfinished multipart upload: a transient failure keeps it
(in memory and in the slot) so the retry resumes; a permanent failure aborts it
and clears the slot; cancellation aborts it too unless the store was told to
keep uploads on cancel. A process killed outright leaves it for the next
process to resume (or for a bucket lifecycle rule to clean up).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from core.remote.base import (
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    PutSource,
    RemoteError,
    TransientError,
)
from core.remote.s3_errors import DIGEST_CODES, TRANSPORT_ERRORS, error_code, map_error
from core.remote.s3_objects import SHA256_META, b64_of_hex, hex_of_b64, info_from_head, md5_of_etag

log = logging.getLogger(__name__)

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part (all but the last)."""
MAX_PARTS = 10_000
PART_GRANULARITY = 1024 * 1024


class Cancelled(Exception):
    """The caller cancelled the put; raised on the worker between parts."""


@dataclass
class UploadState:
    """A put in flight for one key and content: S3's upload id and what was reported.

    The store keeps it between attempts of one process, so a retried put resumes
    without the slot and never reports the same bytes twice.
    """

    upload_id: str | None = None
    reported: int = 0
    digest_failures: int = 0


@dataclass(frozen=True)
class PutRequest:
    store: str
    bucket: str
    key: str
    """The caller's key (for messages); `s3_key` is the one in the bucket."""
    s3_key: str
    source: PutSource
    storage_class: str
    sse: dict[str, str]
    part_size: int
    abort_on_cancel: bool

    @property
    def kms(self) -> bool:
        return self.sse.get("ServerSideEncryption") == "aws:kms"


def effective_part_size(size: int, part_size: int) -> int:
    """`part_size`, grown (in whole MiB) when the object would need more than 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    if needed <= part_size:
        return part_size
    return -(-needed // PART_GRANULARITY) * PART_GRANULARITY


def list_parts(client: Any, target: dict[str, Any], upload_id: str) -> dict[int, dict[str, Any]]:
    """The parts S3 holds for an upload, by number (ListParts, every page)."""
    found: dict[int, dict[str, Any]] = {}
    marker = 0
    while True:
        page = client.list_parts(**target, UploadId=upload_id, PartNumberMarker=marker)
        for part in page.get("Parts") or []:
            found[int(part["PartNumber"])] = part
        if not page.get("IsTruncated"):
            return found
        next_marker = int(page.get("NextPartNumberMarker") or 0)
        if next_marker <= marker:
            return found  # a server that pages without moving on: take what we have
        marker = next_marker


def same_part(
    have: dict[str, Any], size: int, sha: str, md5: Callable[[], str], *, kms: bool
) -> bool:
    """A part S3 holds counts only if it provably has these bytes; else it is resent.

    `md5` is asked for only when S3 lists no SHA-256 for the part (SeaweedFS does not):
    then the part's ETag, its MD5, must match."""
    if int(have.get("Size", -1)) != size:
        return False
    checksum = hex_of_b64(have.get("ChecksumSHA256"))
    if checksum is not None:
        return checksum == sha
    return md5_of_etag(have.get("ETag"), kms=kms) == md5()


class PutJob:
    def __init__(
        self,
        client: Any,
        request: PutRequest,
        state: UploadState,
        *,
        cancel: threading.Event,
        notify: Callable[[int], None],
        save: Callable[[str | None], None],
    ) -> None:
        self.client = client
        self.req = request
        self.state = state
        self.cancel = cancel
        self.notify = notify
        self.save = save

    def run(self) -> ObjectInfo:
        src = self.req.source
        if src.size <= self.req.part_size:
            if self.state.upload_id is not None:  # left by a run with smaller parts
                self._abort_quietly()
                self._forget()
            return self._single()
        try:
            return self._multipart()
        except Cancelled:
            if self.req.abort_on_cancel:
                self._abort_quietly()
                self._forget()
            raise
        except BaseException as err:
            mapped = map_error(err, what="upload", store=self.req.store, bucket=self.req.bucket)
            if not isinstance(mapped, TransientError):
                self._abort_quietly()
                self._forget()
            raise

    # -- single PutObject ----------------------------------------------------------

    def _single(self) -> ObjectInfo:
        src = self.req.source
        with _open(src) as fh:
            data = _read_exact(fh, src.size, src)
            _expect_eof(fh, src)
        try:
            done: dict[str, Any] = self.client.put_object(
                **self._target(),
                Body=data,
                ContentMD5=_b64_digest(src.md5, src),
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=_b64_digest(src.sha256, src),
                **self._object_params(),
            )
        except ClientError as err:
            if error_code(err) in DIGEST_CODES:
                raise self._digest_rejected(data) from err
            raise
        self._acked(src.size)
        return self._result(done, single=True)

    # -- multipart -----------------------------------------------------------------

    def _multipart(self) -> ObjectInfo:
        src = self.req.source
        part_size = effective_part_size(src.size, self.req.part_size)
        listed: dict[int, dict[str, Any]] = {}
        if self.state.upload_id is not None:
            try:
                listed = self._list_parts()
            except ClientError as err:
                if error_code(err) != "NoSuchUpload":
                    raise
                self._forget()  # aborted, expired, or completed by a run whose answer was lost
                there = self._already_there()
                if there is not None:
                    self._acked(src.size)
                    return there
        if self.state.upload_id is None:
            created = self.client.create_multipart_upload(
                **self._target(), ChecksumAlgorithm="SHA256", **self._object_params()
            )
            self.state.upload_id = str(created["UploadId"])
            self.save(self.state.upload_id)  # persisted before any part goes out
        parts: list[dict[str, Any]] = []
        whole = hashlib.sha256()
        with _open(src) as fh:
            position = 0
            number = 0
            while position < src.size:
                if self.cancel.is_set():
                    raise Cancelled
                number += 1
                data = _read_exact(fh, min(part_size, src.size - position), src)
                whole.update(data)
                sha = hashlib.sha256(data).digest().hex()
                md5 = hashlib.md5(data).hexdigest()
                have = listed.get(number)
                if have is not None and self._same_part(have, len(data), sha, md5):
                    etag = str(have["ETag"])
                else:
                    etag = self._upload_part(number, data, sha, md5)
                parts.append(
                    {"PartNumber": number, "ETag": etag, "ChecksumSHA256": b64_of_hex(sha)}
                )
                position += len(data)
                self._acked(position)
            _expect_eof(fh, src)
        if whole.hexdigest() != src.sha256.lower():
            raise _changed(src)
        if self.cancel.is_set():
            raise Cancelled
        return self._complete(parts)

    def _list_parts(self) -> dict[int, dict[str, Any]]:
        assert self.state.upload_id is not None
        return list_parts(self.client, self._target(), self.state.upload_id)

    def _same_part(self, have: dict[str, Any], size: int, sha: str, md5: str) -> bool:
        return same_part(have, size, sha, lambda: md5, kms=self.req.kms)

    def _upload_part(self, number: int, data: bytes, sha: str, md5: str) -> str:
        try:
            done = self.client.upload_part(
                **self._target(),
                UploadId=self.state.upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=b64_of_hex(md5),
                ChecksumSHA256=b64_of_hex(sha),
            )
        except ClientError as err:
            if error_code(err) in DIGEST_CODES:  # hashed from these very bytes: transit
                raise self._damaged_in_transit() from err
            raise
        return str(done["ETag"])

    def _complete(self, parts: list[dict[str, Any]]) -> ObjectInfo:
        try:
            done: dict[str, Any] = self.client.complete_multipart_upload(
                **self._target(),
                UploadId=self.state.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except ClientError as err:
            if error_code(err) != "NoSuchUpload":
                raise
            self._forget()
            there = self._already_there()  # our earlier complete went through
            if there is not None:
                return there
            raise TransientError(
                f"the multipart upload of {self.req.key} vanished on S3 ({self.req.store}) "
                "before it was completed; it will start again"
            ) from err
        self._forget()
        return self._result(done, single=False)

    def _already_there(self) -> ObjectInfo | None:
        """The object, if it already holds exactly this content (by size and recorded hash)."""
        try:
            head = self.client.head_object(**self._target())
        except ClientError as err:
            mapped = map_error(err, what="look up", store=self.req.store, bucket=self.req.bucket)
            if isinstance(mapped, ObjectNotFound):
                return None
            raise
        info = info_from_head(self.req.key, head)
        src = self.req.source
        recorded = (head.get("Metadata") or {}).get(SHA256_META)
        if info.size == src.size and recorded == src.sha256.lower():
            return info
        return None

    def _abort_quietly(self) -> None:
        """Best effort: an upload left behind costs storage until a lifecycle rule or a
        later put clears it, which is no reason to hide the error that got us here."""
        upload_id = self.state.upload_id
        if upload_id is None:
            return
        try:
            self.client.abort_multipart_upload(**self._target(), UploadId=upload_id)
        except (ClientError, *TRANSPORT_ERRORS) as err:
            log.info("could not abort the multipart upload of %s: %s", self.req.key, err)

    # -- helpers -----------------------------------------------------------------------

    def _target(self) -> dict[str, Any]:
        return {"Bucket": self.req.bucket, "Key": self.req.s3_key}

    def _object_params(self) -> dict[str, Any]:
        """What the object is created with (PutObject and CreateMultipartUpload alike)."""
        return {
            "StorageClass": self.req.storage_class,
            "ContentType": "application/octet-stream",
            "Metadata": {SHA256_META: self.req.source.sha256.lower()},
            **self.req.sse,
        }

    def _result(self, done: dict[str, Any], *, single: bool) -> ObjectInfo:
        src = self.req.source
        sha256 = hex_of_b64(done.get("ChecksumSHA256")) if single else None
        extra = {"storage_class": self.req.storage_class}
        if done.get("ETag"):
            extra["etag"] = str(done["ETag"]).strip('"')
        if done.get("VersionId"):
            extra["version_id"] = str(done["VersionId"])
        return ObjectInfo(
            key=self.req.key,
            size=src.size,
            md5=md5_of_etag(done.get("ETag"), kms=self.req.kms) if single else None,
            sha256=sha256 or src.sha256.lower(),
            extra=extra,
        )

    def _acked(self, total: int) -> None:
        if total > self.state.reported:
            self.notify(total - self.state.reported)
            self.state.reported = total

    def _forget(self) -> None:
        self.state.upload_id = None
        self.save(None)

    def _digest_rejected(self, data: bytes) -> RemoteError:
        src = self.req.source
        if (
            hashlib.sha256(data).hexdigest() != src.sha256.lower()
            or hashlib.md5(data).hexdigest() != src.md5.lower()
        ):
            return _changed(src)
        return self._damaged_in_transit()

    def _damaged_in_transit(self) -> RemoteError:
        self.state.digest_failures += 1
        if self.state.digest_failures > 1:
            return PermanentError(
                f"S3 ({self.req.store}) again received damaged data for {self.req.key}: "
                "its checksum did not match the bytes that arrived",
                hint="something between this computer and the server (a proxy, a faulty "
                "network card or memory) is corrupting uploads; check it before retrying",
            )
        return TransientError(
            f"S3 ({self.req.store}) received damaged data for {self.req.key} (checksum "
            "mismatch in transit); it will be sent again"
        )


def _changed(src: PutSource) -> PermanentError:
    return PermanentError(
        f"{src.path} no longer matches the size and checksums it had when it was packed; "
        "nothing was stored",
        hint="it changed after it was packed; the backup will pack it again",
    )


def _b64_digest(digest: str, src: PutSource) -> str:
    try:
        return b64_of_hex(digest)
    except ValueError:
        raise PermanentError(f"the recorded checksum of {src.path} is not a hex digest") from None


def _open(src: PutSource) -> BinaryIO:
    try:
        return open(src.path, "rb")
    except OSError as err:
        raise PermanentError(
            f"cannot read the source file {src.path}: {err.strerror or err}"
        ) from err


def _read_exact(fh: BinaryIO, n: int, src: PutSource) -> bytes:
    try:
        data = fh.read(n)
    except OSError as err:
        raise PermanentError(
            f"cannot read the source file {src.path}: {err.strerror or err}"
        ) from err
    if len(data) != n:
        raise _changed(src)
    return data


def _expect_eof(fh: BinaryIO, src: PutSource) -> None:
    if fh.read(1):
        raise _changed(src)
