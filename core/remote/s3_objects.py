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
    sha256 = hex_of_b64(head.get("ChecksumSHA256")) or _meta_sha256(metadata)
    extra = {"storage_class": str(head.get("StorageClass") or "STANDARD")}
    if head.get("Restore"):
        extra["restore"] = str(head["Restore"])
    if head.get("ETag"):
        extra["etag"] = str(head["ETag"]).strip('"')
    if head.get("VersionId"):
        extra["version_id"] = str(head["VersionId"])
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


def _meta_sha256(metadata: dict[str, Any]) -> str | None:
    value = metadata.get(SHA256_META)
    if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value.lower()
    return None
