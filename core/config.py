"""Settings kept in `config.toml`. Never secrets: those live in the OS keyring."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import BadInputError


class Retention(BaseModel):
    local_sessions: int = Field(default=2, ge=1, description="raw session files kept in Tier 1")
    backup_phases: int = Field(default=2, ge=1, description="phases kept in Tier 2")


class Schedule(BaseModel):
    """When the service backs up and verifies by itself (it must be running: the daemon)."""

    backup_every: Literal["off", "session-end", "hourly", "daily"] = Field(
        default="session-end", description="session-end: each session is backed up as it ends"
    )
    verify_every: Literal["off", "daily", "weekly"] = "weekly"
    quiet_hours: str | None = Field(
        default=None,
        pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
        description='local time, e.g. "22:00-07:00": scheduled runs wait for its end',
    )
    skip_on_battery: bool = True
    skip_on_metered: bool = True


class Phases(BaseModel):
    """What `phase close` does after the review is on the backup target."""

    archive_on_close: Literal["ask", "always", "never"] = Field(
        default="ask",
        description="ask: the job ends saying the archive awaits `tierkeeper archive PHASE`",
    )


class CacheConfig(BaseModel):
    """How much the read-through cache of remote objects may hold."""

    memory_mib: int = Field(default=64, ge=0, le=65536, description="in memory, per service")
    disk_mib: int = Field(default=512, ge=0, description="on disk, under the workspace's cache/")


GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_API_ROOT = "https://www.googleapis.com/"


class EncryptionConfig(BaseModel):
    """How the target's key comes from its passphrase, and which key it is. Not secret:
    the key itself lives in the OS keyring (and on the user's printed recovery kit)."""

    kdf: Literal["scrypt"] = "scrypt"
    salt: str
    n: int
    r: int
    p: int
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")


class TargetConfig(BaseModel):
    """A Tier 2 destination. Secrets (tokens, keys) are never here: the keyring holds them."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
    kind: Literal["folder", "drive", "s3"] = "folder"
    path: str | None = Field(default=None, description="folder targets: where backups go")
    folder: str = Field(default="Tierkeeper-backup", description="drive: top folder's name")
    client_id: str | None = Field(default=None, description="drive: the OAuth client's id")
    account: str | None = Field(default=None, description="drive: the signed-in address")
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI
    api_root: str = GOOGLE_API_ROOT
    bucket: str | None = Field(default=None, description="s3: the bucket")
    prefix: str = Field(default="", description="s3: key prefix inside the bucket")
    endpoint_url: str | None = Field(default=None, description="s3: any S3-compatible service")
    region: str | None = None
    addressing: Literal["auto", "path", "virtual"] = "auto"
    storage_class: str = Field(default="DEEP_ARCHIVE", description="s3: for archived phases")
    sse: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    encryption: EncryptionConfig | None = Field(
        default=None, description="client-side encryption (AES-256-GCM) of everything stored"
    )

    @model_validator(mode="after")
    def _complete(self) -> TargetConfig:
        if self.kind == "folder" and not self.path:
            raise ValueError("a folder target needs a path")
        if self.kind == "drive" and not self.client_id:
            raise ValueError("a drive target needs an OAuth client id")
        if self.kind == "s3" and not self.bucket:
            raise ValueError("an s3 target needs a bucket")
        return self

    @property
    def where(self) -> str:
        """What a person recognises the target by."""
        if self.kind == "drive":
            return f"Google Drive {self.account or '(not signed in)'}: {self.folder}/"
        if self.kind == "s3":
            where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
            return f"{where} ({self.storage_class})"
        return str(self.path)


class Config(BaseModel):
    version: int = 1
    sources: list[str] = Field(default_factory=list, description="folders imported on demand")
    pricing_file: str | None = Field(default=None, description="overrides resources/pricing.toml")
    storage_prices_file: str | None = Field(
        default=None, description="overrides resources/storage_prices.toml"
    )
    retention: Retention = Field(default_factory=lambda: Retention())
    schedule: Schedule = Field(default_factory=lambda: Schedule())
    phases: Phases = Field(default_factory=lambda: Phases())
    job_concurrency: int = Field(default=2, ge=1, le=16)
    cache: CacheConfig = Field(default_factory=lambda: CacheConfig())
    targets: list[TargetConfig] = Field(default_factory=list)

    def backup_target(self, name: str | None) -> TargetConfig:
        """The named target, or the only backup (Tier 2) target: an archive target (S3)
        beside it is the usual set-up and must not make every backup ask which."""
        if name is not None:
            return self.target(name)
        tier2 = [t for t in self.targets if t.kind != "s3"]
        if len(tier2) == 1:
            return tier2[0]
        if len(tier2) > 1:
            raise BadInputError(
                f"Several backup targets exist ({', '.join(t.name for t in tier2)})",
                hint="name one with --target",
            )
        return self.target(None)

    def target(self, name: str | None) -> TargetConfig:
        """The named target, or the only one when no name is given."""
        if name is None:
            if len(self.targets) == 1:
                return self.targets[0]
            raise BadInputError(
                "No backup target is set up" if not self.targets else "Several targets exist",
                hint="add one with `tierkeeper target add folder NAME PATH`"
                if not self.targets
                else "name one with --target",
            )
        for t in self.targets:
            if t.name == name:
                return t
        raise BadInputError(f"No target named {name!r}", hint="`tierkeeper target list` shows them")

    @classmethod
    def load(cls, path: Path) -> Config:
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except (tomllib.TOMLDecodeError, ValidationError, UnicodeDecodeError) as exc:
            raise BadInputError(
                f"{path} is not a valid Tierkeeper config: {exc}",
                hint="fix the file or move it away to start from the defaults",
            ) from exc

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(self.model_dump(exclude_none=True)), encoding="utf-8")
        tmp.replace(path)
