"""Settings kept in `config.toml`. Never secrets: those live in the OS keyring."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w
from pydantic import BaseModel, Field, ValidationError

from core.errors import BadInputError


class Retention(BaseModel):
    local_sessions: int = Field(default=2, ge=1, description="raw session files kept in Tier 1")
    backup_phases: int = Field(default=2, ge=1, description="phases kept in Tier 2")


class Config(BaseModel):
    version: int = 1
    sources: list[str] = Field(default_factory=list, description="folders imported on demand")
    pricing_file: str | None = Field(default=None, description="overrides resources/pricing.toml")
    retention: Retention = Field(default_factory=lambda: Retention())
    job_concurrency: int = Field(default=2, ge=1, le=16)

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
