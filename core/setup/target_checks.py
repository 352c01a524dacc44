"""Is this target usable? The round trip and the findings a wizard shows before saving.

Shared by "Test connection" (saved or not yet saved targets), `target add` and
`target test`, so the three can never disagree about what "works" means. A spec
that is not saved yet is checked with the keys it carries, not the keyring's:
nothing is kept for a target until it has passed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.config import TargetConfig
from core.errors import BadInputError
from core.paths import user_path
from core.remote.base import Store
from core.remote.folder import FolderStore
from core.setup.models import (
    BucketCheck,
    DriveTargetSpec,
    FolderTargetSpec,
    S3TargetSpec,
    TargetTestResult,
)
from core.tier2.encryption_claim import claims_of
from core.tier2.targets import probe

if TYPE_CHECKING:  # S3's modules (botocore) load when an S3 target is checked
    from core.remote.s3 import S3Store
    from core.remote.s3_bucket import BucketReport

PROBE_BYTES = 64 * 1024
NAME_HINT = "letters, digits, '.', '_' or '-', up to 40"


def target_of(spec: FolderTargetSpec | S3TargetSpec | DriveTargetSpec) -> TargetConfig:
    """The config entry a spec becomes (no secrets: they are not fields of it)."""
    try:
        if isinstance(spec, FolderTargetSpec):
            path = str(user_path(spec.path).absolute())
            return TargetConfig(name=spec.name, kind="folder", path=path)
        if isinstance(spec, DriveTargetSpec):
            return TargetConfig(name=spec.name, kind="drive", client_id=spec.client_id,
                                folder=spec.folder, auth_uri=spec.auth_uri,
                                token_uri=spec.token_uri, api_root=spec.api_root)  # fmt: skip
        return TargetConfig.model_validate(
            {"name": spec.name, "kind": "s3", "bucket": spec.bucket, "prefix": spec.prefix,
             "endpoint_url": spec.endpoint_url, "region": spec.region,
             "addressing": spec.addressing, "storage_class": spec.storage_class}
        )  # fmt: skip
    except ValidationError as exc:
        if any(e["loc"] == ("name",) for e in exc.errors()):
            raise BadInputError(f"{spec.name!r} is not a usable target name",
                                hint=NAME_HINT) from None  # fmt: skip
        msg = exc.errors(include_url=False, include_input=False)[0]["msg"]
        raise BadInputError(f"These {spec.kind} settings are not usable: {msg}") from None


def s3_keys(spec: S3TargetSpec) -> tuple[str, str] | None:
    """Both keys, or None for the standard AWS chain (profile, SSO, role)."""
    secret = spec.secret_key.get_secret_value() if spec.secret_key is not None else None
    if not spec.access_key and not secret:
        return None
    if not spec.access_key or not secret:
        raise BadInputError("Give both the access key and the secret key, or neither",
                            hint="without keys the standard AWS chain is used")  # fmt: skip
    return spec.access_key, secret


async def timed_probe(store: Store) -> tuple[float, str]:
    """The probe's round trip in milliseconds, and its report line."""
    started = time.perf_counter()
    line = await probe(store)
    return (time.perf_counter() - started) * 1000, line


def bucket_check(report: BucketReport) -> BucketCheck:
    from core.tier2.s3_target import LIFECYCLE_ADVICE

    return BucketCheck(bucket=report.bucket, exists=report.exists, region=report.region,
                       writable=report.writable, versioning=report.versioning,
                       object_lock=report.object_lock, advice=[LIFECYCLE_ADVICE])  # fmt: skip


def result(target: TargetConfig, ms: float, lines: list[str], **found: object) -> TargetTestResult:
    return TargetTestResult.model_validate(
        {"name": target.name, "kind": target.kind, "where": target.where, "writable": True,
         "round_trip_ms": round(ms, 1), "probe_bytes": PROBE_BYTES, "report": lines, **found}
    )  # fmt: skip


async def check_new_folder(target: TargetConfig) -> TargetTestResult:
    """Creates the folder the user just chose (jobs never do: see `create_root`)."""
    assert target.path is not None
    store = FolderStore(Path(target.path), name=target.name)
    try:
        await store.create_root()
    except OSError as exc:  # a name too long, no permission, a file in the way
        raise BadInputError(f"Cannot create the folder {target.path}: {exc.strerror or exc}",
                            hint="choose another folder") from None  # fmt: skip
    ms, line = await timed_probe(store)
    return result(target, ms, [line], encryption=await claims_of(store))


async def check_new_s3(target: TargetConfig, keys: tuple[str, str] | None,
                       scope: str) -> TargetTestResult:  # fmt: skip
    """Bucket first (a missing one gets a clear refusal), then the round trip."""
    from core.tier2.s3_target import describe

    store = await _new_s3(target, keys, scope)
    try:
        report = await store.head_bucket()
        if not report.exists:
            raise BadInputError(f"The bucket {report.bucket} does not exist",
                                hint="create it first, or check the name and region")  # fmt: skip
        ms, line = await timed_probe(store)
        claimed = await claims_of(store)
    finally:
        await store.close()
    return result(target, ms, [*describe(report), line], bucket=bucket_check(report),
                  encryption=claimed)  # fmt: skip


async def _new_s3(target: TargetConfig, keys: tuple[str, str] | None, scope: str) -> S3Store:
    """The store of a target not saved yet: with the keys given, else the keyring's chain."""
    from core.remote.s3 import S3Store
    from core.tier2.s3_target import open_s3, settings_of

    if keys is not None:
        return S3Store(settings_of(target), name=target.name, access_key=keys[0],
                       secret_key=keys[1])  # fmt: skip
    return await asyncio.to_thread(open_s3, target, scope)
