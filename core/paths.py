"""Where a workspace lives when nobody says otherwise.

Stdlib-only on purpose: the hook process resolves the workspace on every tool
call, and importing platformdirs there would cost start-up time for nothing on
Linux.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_HOME = "TIERKEEPER_HOME"


def default_workspace() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "tierkeeper"
    import platformdirs

    return Path(platformdirs.user_data_dir("tierkeeper", appauthor=False))


def resolve_workspace(explicit: str | os.PathLike[str] | None) -> Path:
    return Path(explicit).expanduser().resolve() if explicit else default_workspace().resolve()


def user_path(raw: str) -> Path:
    """A path a person typed (a source, a target, a file to import), `~` expanded. Refused
    with a message, not an internal error: `~name` of a user this computer does not
    know, and a NUL character, which no file system allows and os calls reject."""
    from core.errors import BadInputError, NotFoundError  # not on the hook's path

    if "\0" in raw:
        raise BadInputError("A path cannot contain a NUL character", hint="check the path")
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "~someone": no such user here
        user = raw[1:].split("/", 1)[0]
        raise NotFoundError(f"{raw} does not exist (there is no user {user!r} here)",
                            hint="check the path") from None  # fmt: skip
