"""What `target test` needs to know about a bucket before trusting it with archives.

Whether it exists and where, whether these credentials may write to it (S3
cannot answer that without trying, so an empty probe object is written and
deleted), and whether versioning or Object Lock is on: with either, a delete
keeps the old bytes (and their bill) around, which the user should know.
Settings the credentials may not read are reported as unknown (None) rather
than failing the whole check.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core.remote.s3_errors import DENIED_CODES, error_code, headers_of

log = logging.getLogger(__name__)

UNANSWERED = DENIED_CODES | {"NotImplemented", "MethodNotAllowed", "501", "405"}
"""Codes meaning "this setting could not be read here", not "the bucket is broken"."""
PROBE_NAME = ".tierkeeper-probe-"


@dataclass(frozen=True, slots=True)
class BucketReport:
    bucket: str
    exists: bool
    region: str | None = None
    writable: bool | None = None
    """None: not checked (the bucket is missing, or the probe was not asked for)."""
    versioning: str | None = None
    """"Enabled", "Suspended" or "Disabled" (never enabled); None when it could not be read."""
    object_lock: bool | None = None


def check_bucket(client: Any, *, bucket: str, probe_prefix: str, sse: dict[str, str],
                 probe: bool) -> BucketReport:  # fmt: skip
    """Runs on a worker; errors other than "missing" and "not allowed to read this" propagate."""
    try:
        head = client.head_bucket(Bucket=bucket)
    except ClientError as err:
        if error_code(err) in {"404", "NoSuchBucket", "NotFound"}:
            return BucketReport(bucket=bucket, exists=False)
        raise
    headers = head.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
    region = head.get("BucketRegion") or headers.get("x-amz-bucket-region")
    return BucketReport(
        bucket=bucket,
        exists=True,
        region=str(region) if region else None,
        writable=_probe_write(client, bucket, probe_prefix, sse) if probe else None,
        versioning=_versioning(client, bucket),
        object_lock=_object_lock(client, bucket),
    )


def _versioning(client: Any, bucket: str) -> str | None:
    try:
        answer = client.get_bucket_versioning(Bucket=bucket)
    except ClientError as err:
        if error_code(err) in UNANSWERED:
            return None
        raise
    return str(answer.get("Status") or "Disabled")


def _object_lock(client: Any, bucket: str) -> bool | None:
    try:
        answer = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as err:
        code = error_code(err)
        if code == "ObjectLockConfigurationNotFoundError":
            return False
        if code in UNANSWERED:
            return None
        raise
    config = answer.get("ObjectLockConfiguration") or {}
    return config.get("ObjectLockEnabled") == "Enabled"


def _probe_write(client: Any, bucket: str, prefix: str, sse: dict[str, str]) -> bool:
    """Write and delete an empty object (STANDARD: archive classes bill a minimum duration)."""
    key = f"{prefix}{PROBE_NAME}{secrets.token_hex(8)}"
    try:
        done = client.put_object(Bucket=bucket, Key=key, Body=b"", StorageClass="STANDARD", **sse)
    except ClientError as err:
        if error_code(err) in DENIED_CODES:
            return False
        raise
    extra = {"VersionId": done["VersionId"]} if done.get("VersionId") else {}
    try:  # with versioning on, only deleting the version itself leaves nothing behind
        client.delete_object(Bucket=bucket, Key=key, **extra)
    except ClientError as err:
        log.info(
            "could not delete the probe object %s (%s, %s)",
            key,
            error_code(err),
            headers_of(err).get("x-amz-request-id"),
        )
    return True
