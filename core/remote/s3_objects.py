"""What S3 says about an object, turned into an `ObjectInfo`.

S3 has two digests, neither always usable: the ETag is the MD5 of the bytes
only for a single-part upload without SSE-KMS (multipart ETags end in `-N`),
and the SHA-256 checksum covers the whole object only for a single-part upload
(a multipart one gets a checksum of the part checksums, also ending in `-N`).
So every put also records the SHA-256 the packer computed in user metadata
(`x-amz-meta-tk-sha256`), and `stat` falls back to that.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from core.remote.base import ObjectInfo

SHA256_META = "tk-sha256"
"""User-metadata name (sent as `x-amz-meta-tk-sha256`) of the content's hex SHA-256."""

COMPOSITE_EXTRA = "checksum_sha256"
"""`ObjectInfo.extra` key of a multipart object's composite checksum (`<base64>-<parts>`):
S3's SHA-256 of its parts' SHA-256s, which a streamed upload checks against its own."""

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def b64_of_hex(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest)).decode("ascii")


def hex_of_b64(value: object) -> str | None:
    """Hex of a full-object checksum header; None for composite (`…-N`) or odd values."""
    if not isinstance(value, str) or "-" in value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def md5_of_etag(etag: object, *, kms: bool) -> str | None:
    """The ETag as an MD5, when it is one (single-part upload, not SSE-KMS)."""
    if kms or not isinstance(etag, str):
        return None
    text = etag.strip().strip('"').lower()
    return text if _MD5_HEX.match(text) else None


def _timestamp(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def info_from_head(key: str, head: dict[str, Any]) -> ObjectInfo:
    """From a HeadObject (or PutObject/Complete…) response."""
    kms = head.get("ServerSideEncryption") == "aws:kms"
    metadata = head.get("Metadata") or {}
    checksum = head.get("ChecksumSHA256")
    parts = _etag_parts(head.get("ETag"))
    composite = None
    if parts is not None and isinstance(checksum, str):
        # a multipart object's SHA-256 is always of its parts' (moto omits the `-N`)
        composite = checksum if "-" in checksum else f"{checksum}-{parts}"
        checksum = None
    sha256 = hex_of_b64(checksum) or _meta_sha256(metadata)
    extra = {"storage_class": str(head.get("StorageClass") or "STANDARD")}
    if head.get("Restore"):
        extra["restore"] = str(head["Restore"])
    if head.get("ETag"):
        extra["etag"] = str(head["ETag"]).strip('"')
    if head.get("VersionId"):
        extra["version_id"] = str(head["VersionId"])
    if composite is not None:
        extra[COMPOSITE_EXTRA] = composite
    return ObjectInfo(
        key=key,
        size=int(head.get("ContentLength", 0)),
        md5=md5_of_etag(head.get("ETag"), kms=kms),
        sha256=sha256,
        modified=_timestamp(head.get("LastModified")),
        extra=extra,
    )


def info_from_listing(key: str, item: dict[str, Any], *, kms: bool) -> ObjectInfo:
    """From one ListObjectsV2 entry: no metadata there, so no SHA-256 either."""
    return ObjectInfo(
        key=key,
        size=int(item.get("Size", 0)),
        md5=md5_of_etag(item.get("ETag"), kms=kms),
        modified=_timestamp(item.get("LastModified")),
        extra={"storage_class": str(item.get("StorageClass") or "STANDARD")},
    )


def _etag_parts(etag: object) -> int | None:
    """The part count of a multipart object's ETag (`"<md5>-<parts>"`); None otherwise."""
    if not isinstance(etag, str):
        return None
    _, dash, count = etag.strip().strip('"').rpartition("-")
    return int(count) if dash and count.isdigit() else None


def _meta_sha256(metadata: dict[str, Any]) -> str | None:
    value = metadata.get(SHA256_META)
    if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value.lower()
    return None
