"""An S3 (or S3-compatible) target: its store, its keys in the keyring, its setup report.

Access keys are never in config.toml: `target add s3` keeps the ones it was
given (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) in the OS keyring, and a
target added without keys uses the standard AWS chain (profile, SSO, instance
role) at run time.
"""

from __future__ import annotations

from core.config import TargetConfig
from core.remote.s3 import S3Settings, S3Store
from core.remote.s3_bucket import BucketReport
from core.secrets import Secrets

ACCESS_KEY = "aws-access-key-id"
SECRET_KEY = "aws-secret-access-key"

LIFECYCLE_ADVICE = (
    "suggested: a lifecycle rule that aborts incomplete multipart uploads after 7 days "
    "(AbortIncompleteMultipartUpload, DaysAfterInitiation 7), so a crashed upload cannot "
    "bill you for parts forever"
)


def _account(scope: str, target: str, what: str) -> str:
    return f"{scope}/{target}/{what}"


def settings_of(target: TargetConfig) -> S3Settings:
    assert target.bucket is not None  # the config refuses an s3 target without one
    return S3Settings(
        bucket=target.bucket,
        prefix=target.prefix,
        endpoint_url=target.endpoint_url,
        region=target.region,
        addressing=target.addressing,
        storage_class=target.storage_class,
        sse=target.sse,
        kms_key_id=target.kms_key_id,
    )


def open_s3(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> S3Store:
    keys = secrets or Secrets()
    access = keys.get(_account(scope, target.name, ACCESS_KEY))
    secret = keys.get(_account(scope, target.name, SECRET_KEY)) if access else None
    return S3Store(settings_of(target), name=target.name, access_key=access, secret_key=secret)


def keep_keys(
    target: TargetConfig, scope: str, access_key: str, secret_key: str,
    secrets: Secrets | None = None,
) -> None:  # fmt: skip
    keys = secrets or Secrets()
    keys.set(_account(scope, target.name, ACCESS_KEY), access_key)
    keys.set(_account(scope, target.name, SECRET_KEY), secret_key)


def forget_keys(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> None:
    keys = secrets or Secrets()
    for what in (ACCESS_KEY, SECRET_KEY):
        keys.delete(_account(scope, target.name, what))


def describe(report: BucketReport) -> list[str]:
    """The setup check, one line per finding, for `target add s3` and `target test`."""
    lines = [f"bucket {report.bucket}: " + ("exists" if report.exists else "MISSING")]
    if report.region:
        lines.append(f"region: {report.region}")
    if report.writable is not None:
        lines.append("writable: " + ("yes" if report.writable else "NO"))
    if report.versioning is not None:
        lines.append(f"versioning: {report.versioning.lower()}")
    if report.object_lock is not None:
        lines.append("object lock: " + ("on" if report.object_lock else "off"))
    lines.append(LIFECYCLE_ADVICE)
    return lines
