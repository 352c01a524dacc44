"""What the set-up wizard and the Settings page send and get back.

Secrets a user types (an S3 secret key, a passphrase, a Drive client secret) are
`SecretStr`: their repr, their JSON dump and a validation error all show stars, so
a spec that ends up in a log line or an event cannot leak them. The only code that
reads the value hands it to the keyring (or to the daemon over its private socket).
Request models refuse unknown fields: a misspelt setting must fail, not be ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from core.config import (
    GOOGLE_API_ROOT,
    GOOGLE_AUTH_URI,
    GOOGLE_TOKEN_URI,
    EncryptionConfig,
    Phases,
    Retention,
    Schedule,
    TargetConfig,
)
from core.errors import BadInputError

NAME_RULE = "letters, digits, '.', '_' or '-', up to 40; checked by the service"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# settings -----------------------------------------------------------------------------------
class Settings(BaseModel):
    """The workspace's config.toml as a Settings page shows it (it never holds secrets)."""

    workspace: str
    sources: list[str] = Field(description="agent history folders the user chose to watch")
    schedule: Schedule
    retention: Retention
    phases: Phases = Field(default_factory=Phases)
    job_concurrency: int = Field(description="read at start: a change applies after a restart")
    pricing_file: str | None = None
    storage_prices_file: str | None = None
    targets: list[TargetConfig]


class SchedulePatch(_Strict):
    backup_every: Literal["off", "session-end", "hourly", "daily"] | None = None
    verify_every: Literal["off", "daily", "weekly"] | None = None
    quiet_hours: str | None = Field(None, description='"22:00-07:00"; null turns them off')
    skip_on_battery: bool | None = None
    skip_on_metered: bool | None = None


class RetentionPatch(_Strict):
    local_sessions: int | None = None
    backup_phases: int | None = None


class PhasesPatch(_Strict):
    archive_on_close: Literal["ask", "always", "never"] | None = None


class ConfigPatch(_Strict):
    """Only the fields given change; targets change through add/remove_target."""

    sources: list[str] | None = Field(None, description="replaces the list; existing folders")
    schedule: SchedulePatch | None = None
    retention: RetentionPatch | None = None
    phases: PhasesPatch | None = None
    job_concurrency: int | None = None


class DetectedSource(BaseModel):
    format: str = Field(description="claude-code, roo or cline")
    path: str
    watched: bool = Field(description="already in the workspace's sources")
    sessions: int | None = Field(None, description="sessions found in it; null: not counted")
    files: int | None = Field(None, description="files an import would read")


# targets ------------------------------------------------------------------------------------
class FolderTargetSpec(_Strict):
    kind: Literal["folder"] = "folder"
    name: str = Field(description=NAME_RULE)
    path: str
    passphrase: SecretStr | None = Field(None, description="turns on client-side encryption")


class S3TargetSpec(_Strict):
    kind: Literal["s3"] = "s3"
    name: str = Field(description=NAME_RULE)
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing: Literal["auto", "path", "virtual"] = "auto"
    storage_class: str = "DEEP_ARCHIVE"
    access_key: str | None = Field(None, description="kept in the OS keyring with the secret")
    secret_key: SecretStr | None = None
    passphrase: SecretStr | None = None


class DriveTargetSpec(_Strict):
    kind: Literal["drive"] = "drive"
    name: str = Field(description=NAME_RULE)
    client_id: str
    client_secret: SecretStr | None = None
    folder: str = "Tierkeeper-backup"
    passphrase: SecretStr | None = None
    open_browser: bool = Field(False, description="the service opens the address itself")
    sign_in_timeout: float = Field(300.0, ge=1, le=3600, description="seconds in the browser")
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI
    api_root: str = GOOGLE_API_ROOT


SpecT = TypeVar("SpecT", FolderTargetSpec, S3TargetSpec, DriveTargetSpec)


def spec_of(model: type[SpecT], values: dict[str, Any]) -> SpecT:
    """A spec from a command line's values: a bad one is the user's mistake, said plainly
    (which field and why, never the value: it may be a secret)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        e = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(x) for x in e["loc"])
        raise BadInputError(f"These {model.model_fields['kind'].default} settings are not "
                            f"usable: {where}: {e['msg']}") from None  # fmt: skip


TargetSpec = Annotated[FolderTargetSpec | S3TargetSpec | DriveTargetSpec,
                       Field(discriminator="kind")]  # fmt: skip


class AddTargetRequest(_Strict):
    spec: TargetSpec


class TargetTestRequest(_Strict):
    """A saved target by name (the only one when neither is given), or a spec not yet added."""

    name: str | None = None
    spec: TargetSpec | None = None


class BucketCheck(BaseModel):
    bucket: str
    exists: bool
    region: str | None = None
    writable: bool | None = None
    versioning: str | None = Field(None, description="Enabled, Suspended, Disabled; null: unknown")
    object_lock: bool | None = None
    advice: list[str] = Field(default_factory=list)


class TargetAdded(BaseModel):
    target: TargetConfig
    report: list[str] = Field(default_factory=list, description="the setup check, line by line")
    bucket: BucketCheck | None = None


class TargetRemoved(BaseModel):
    name: str


class TargetTestResult(BaseModel):
    name: str
    kind: str
    where: str
    writable: bool = Field(description="a probe was written, read back and deleted")
    round_trip_ms: float = Field(description="the probe's put + get + delete")
    probe_bytes: int
    report: list[str]
    bucket: BucketCheck | None = None
    account: str | None = Field(None, description="drive: the signed-in address")
    quota_used: int | None = None
    quota_limit: int | None = Field(None, description="drive: null for unlimited")
    encryption: EncryptionConfig | None = Field(
        None, description="the key its backups are encrypted with, as its own index names it "
        "(backups from another computer); null when it names none",
    )  # fmt: skip


class RecoveryKit(BaseModel):
    target: str
    text: str = Field(description="the page to print: it opens the backups without this computer")


# Drive sign-in ------------------------------------------------------------------------------
class SignInStarted(BaseModel):
    flow_id: str
    url: str = Field(description="open it in the browser; it ends on a page of this computer")
    target: str
    timeout: float


class DriveSignedIn(BaseModel):
    target: TargetConfig
    account: str | None
    quota_used: int
    quota_limit: int | None = Field(None, description="null for unlimited")


class SignInCancelledInfo(BaseModel):
    flow_id: str
    cancelled: bool = Field(description="false: it had finished already")


# costs --------------------------------------------------------------------------------------
class CostParams(_Strict):
    """Checked by the service, so a bad value reads the same on either transport."""

    size_bytes: int = Field(description="what would be archived, as stored")
    storage_class: str | None = Field(None, description="null: every class priced")
    tier: str = Field("Bulk", description="thawing: Bulk, Standard or Expedited")


class CostPreview(BaseModel):
    storage_class: str
    size_bytes: int
    monthly_usd: float
    upload_usd: float = Field(description="the requests of one archive (tarball + manifest)")
    min_days: int = Field(description="billed for at least this long, even if deleted earlier")
    minimum_charge_usd: float
    retrieval_tier: str | None = None
    retrieval_usd: float | None = Field(None, description="to thaw it all once; null: no fee")
    summary: str
