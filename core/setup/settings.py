"""The workspace's settings as one document: read, change a part, write it back whole.

A change is validated against the full `Config` before anything is written, so a
bad value is refused with the field's name and the file on disk never holds a
half-applied edit. The write is a temp file, fsync, rename, fsync of the folder:
a crash leaves the old settings or the new ones, never a torn file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from core.config import Config
from core.durable import fsync_dir
from core.errors import BadInputError, TierkeeperError
from core.local.importers import default_formats
from core.local.sources import detected_sources
from core.paths import user_path
from core.setup.models import ConfigPatch, DetectedSource, Settings


def settings_of(config: Config, root: Path) -> Settings:
    return Settings(
        workspace=str(root),
        sources=list(config.sources),
        schedule=config.schedule.model_copy(),
        retention=config.retention.model_copy(),
        phases=config.phases.model_copy(),
        job_concurrency=config.job_concurrency,
        pricing_file=config.pricing_file,
        storage_prices_file=config.storage_prices_file,
        targets=[t.model_copy() for t in config.targets],
    )


def patched(config: Config, patch: ConfigPatch) -> tuple[Config, list[str]]:
    """The config with `patch` applied, and the top-level keys whose value changed.

    Blocking (it looks at the folders named as sources)."""
    changes = patch.model_dump(exclude_unset=True)
    data = config.model_dump()
    for key, value in changes.items():
        if value is None:
            raise BadInputError(f"Bad settings: {key} cannot be null",
                                hint="leave it out to keep the current value")  # fmt: skip
        if key == "sources":
            value = _existing_folders(value)
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    try:
        new = Config.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"Bad settings: {_describe(exc)}") from None
    changed = [k for k in changes if getattr(new, k) != getattr(config, k)]
    return new, changed


def _existing_folders(paths: list[str]) -> list[str]:
    found: list[str] = []
    for raw in paths:
        path = user_path(raw)
        if not path.is_absolute() or not path.is_dir():
            raise BadInputError(f"Bad settings: the source {raw} is not a folder",
                                hint="choose an existing folder of agent history")  # fmt: skip
        resolved = str(path.resolve())
        if resolved not in found:
            found.append(resolved)
    return found


def _describe(exc: ValidationError) -> str:
    """Where and what is wrong, never the value given (it may be a path or worse)."""
    parts = []
    for e in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else str(e["msg"]))
    return "; ".join(parts)


def save_config(config: Config, path: Path) -> None:
    """Atomic and durable; blocking."""
    text = tomli_w.dumps(config.model_dump(exclude_none=True))
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def detect(config: Config, home: Path | None = None, env: Any = None) -> list[DetectedSource]:
    """Agent history folders on this machine; blocking (it looks at the disk)."""
    watched = {str(Path(s).expanduser().resolve()) for s in config.sources}
    found = detected_sources(home, env)
    out = []
    for s in found:
        sessions, files = _count(s.format, s.path)
        out.append(
            DetectedSource(format=s.format, path=str(s.path), sessions=sessions, files=files,
                           watched=str(s.path.resolve()) in watched)
        )  # fmt: skip
    return out


def _count(fmt: str, path: Path) -> tuple[int | None, int | None]:
    """What an import of the folder would read, by the format's own discovery (it names
    files, reads none): so a user sees which folder holds their history before choosing."""
    found = default_formats().get(fmt)
    if found is None:
        return None, None
    try:
        files, _ = found.discover(path)
    except (OSError, TierkeeperError):
        return None, None
    return len({f.session.id for f in files}), len(files)
