"""Settings kept in `config.toml`. Never secrets: those live in the OS keyring."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError

from core.errors import BadInputError


class Retention(BaseModel):
    local_sessions: int = Field(default=2, ge=1, description="raw session files kept in Tier 1")
    backup_phases: int = Field(default=2, ge=1, description="phases kept in Tier 2")


class TargetConfig(BaseModel):
    """A Tier 2 destination. Secrets (tokens, keys) are never here: the keyring holds them."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
    kind: Literal["folder"] = "folder"
    path: str


class Config(BaseModel):
    version: int = 1
    sources: list[str] = Field(default_factory=list, description="folders imported on demand")
    pricing_file: str | None = Field(default=None, description="overrides resources/pricing.toml")
    retention: Retention = Field(default_factory=lambda: Retention())
    job_concurrency: int = Field(default=2, ge=1, le=16)
    targets: list[TargetConfig] = Field(default_factory=list)

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
