"""A child process that uploads one file to the fake Drive, to be killed with SIGKILL mid-upload.

test_drive_store.py runs this file as a script and imports `JsonFileSlot` from it, so the
child and the resuming parent keep the session URI in the same kind of file.

Usage: python drive_put_child.py SOURCE SHA256 MD5 SLOT_FILE KEY
Environment: TK_DRIVE_URL, TK_DRIVE_TOKEN, TK_DRIVE_REFRESH, TK_DRIVE_TOKEN_URI,
TK_DRIVE_CLIENT_ID, TK_DRIVE_CLIENT_SECRET.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from google.oauth2.credentials import Credentials

from core.remote.base import PutSource
from core.remote.drive import DriveStore

CHUNK = 256 * 1024


class JsonFileSlot:
    """A ResumeSlot kept in a JSON file, written atomically (what a job row does, durably)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: list[str | None] = []

    def load(self) -> str | None:
        try:
            handle = json.loads(self.path.read_text())["handle"]
        except (OSError, ValueError, KeyError):
            return None
        return handle if isinstance(handle, str) else None

    async def save(self, handle: str | None) -> None:
        self.saved.append(handle)
        temp = self.path.with_suffix(".tmp")
        with open(temp, "w") as out:
            json.dump({"handle": handle}, out)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(self.path)


def credentials_from_env() -> Credentials:
    env = os.environ
    return Credentials(
        token=env["TK_DRIVE_TOKEN"],
        refresh_token=env["TK_DRIVE_REFRESH"],
        token_uri=env["TK_DRIVE_TOKEN_URI"],
        client_id=env["TK_DRIVE_CLIENT_ID"],
        client_secret=env["TK_DRIVE_CLIENT_SECRET"],
    )


async def main(source: PutSource, slot: Path, key: str) -> None:
    store = DriveStore(
        credentials_from_env(), api_root=os.environ["TK_DRIVE_URL"], chunk_size=CHUNK, timeout=60
    )
    try:
        await store.put(key, source, resume=JsonFileSlot(slot))
    finally:
        await store.close()


if __name__ == "__main__":
    path, sha256, md5, slot_file, object_key = sys.argv[1:6]
    src = PutSource(Path(path), Path(path).stat().st_size, sha256, md5)
    asyncio.run(main(src, Path(slot_file), object_key))
