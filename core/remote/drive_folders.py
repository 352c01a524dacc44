"""Key segments as Drive folders: found by name, parent and our tag; created once.

Drive allows any number of items with one name in one folder, so "create if
missing" can race with itself — two puts into a new folder, or a create that
reached Google but whose answer was lost and was then retried. After creating,
we look again and everyone settles on the oldest folder of that name; a
duplicate we made ourselves is deleted so it does not linger. Within one
process, one lookup (and create) per folder runs at a time: the puts that want
it meanwhile wait for its answer instead of asking Google the same question.

Folder ids are cached for the life of the store: a backup writes hundreds of
keys under the same few folders, and every lookup is a round trip. A folder
this tree created is "fresh": nothing is in it but what this store put there,
so a folder made inside it needs no lookup first. The check after a create
stays even there: it is what makes two writers (two machines on one account)
settle on one folder, and skipping it could hide one writer's files from the
other. A create that fails, even seemingly, may have happened: its parent
stops being fresh.

Many folders under one parent (a backup's session folders) can be made in one
go instead (`children`, `create_only`, `settle`, driven by
`DriveStore.make_folders`): one listing, the missing ones created side by side,
one listing more in which every writer settles on the oldest of each name —
the same rule as above, two round trips for all of them rather than two each.
"""

from __future__ import annotations

import threading
from typing import Any

from googleapiclient.errors import HttpError

FOLDER_MIME = "application/vnd.google-apps.folder"
TAG_KEY = "tierkeeper"
TAG_VALUE = "1"
TAG = {TAG_KEY: TAG_VALUE}

FolderPath = tuple[str, ...]


def q_string(text: str) -> str:
    """A quoted literal for a Drive `q` query (backslash first, then the quote)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tagged(parent_id: str) -> str:
    """Untrashed items in `parent_id` that this app created (and so owns)."""
    return (
        f"{q_string(parent_id)} in parents and trashed = false and "
        f"appProperties has {{ key={q_string(TAG_KEY)} and value={q_string(TAG_VALUE)} }}"
    )


def named(parent_id: str, name: str, *, folder: bool) -> str:
    kind = "=" if folder else "!="
    return f"name = {q_string(name)} and mimeType {kind} {q_string(FOLDER_MIME)} and " + tagged(
        parent_id
    )


def oldest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ties in createdTime (millisecond resolution) are broken by id, so all agree."""
    return sorted(items, key=lambda f: (str(f.get("createdTime", "")), str(f.get("id", ""))))


class FolderTree:
    def __init__(self, root_name: str) -> None:
        self.root_name = root_name
        self._ids: dict[FolderPath, str] = {}
        self._fresh: set[str] = set()
        self._locks: dict[FolderPath, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def forget(self) -> None:
        """Drop cached ids (a folder vanished under us: someone deleted it on Drive)."""
        self._ids.clear()
        self._fresh.clear()

    def is_fresh(self, folder_id: str) -> bool:
        """True for a folder this tree created: nothing but what this store puts is in it,
        so looking for a file there before writing it would be a wasted round trip."""
        return folder_id in self._fresh

    def taint(self, folder_id: str) -> None:
        """A create in the folder failed and may have happened all the same: from now on
        what is in it must be looked up."""
        self._fresh.discard(folder_id)

    def find(self, files: Any, path: FolderPath) -> str | None:
        """The id of root/path, or None where a segment does not exist (nothing is created)."""
        return self._walk(files, path, create=False)

    def ensure(self, files: Any, path: FolderPath) -> str:
        found = self._walk(files, path, create=True)
        assert found is not None
        return found

    def _lock(self, sub: FolderPath) -> threading.Lock:
        with self._locks_lock:
            lock = self._locks.get(sub)
            if lock is None:
                lock = self._locks[sub] = threading.Lock()
            return lock

    def _walk(self, files: Any, path: FolderPath, *, create: bool) -> str | None:
        cached = self._ids.get(path)
        if cached is not None:
            return cached
        parent = "root"
        names = (self.root_name, *path)
        for depth, name in enumerate(names):
            sub = path[:depth]  # depth 0 is the root folder itself: path ()
            known = self._ids.get(sub)
            if known is None:
                with self._lock(sub):  # the others wait for this answer rather than ask too
                    known = self._ids.get(sub)
                    if known is None:
                        if parent not in self._fresh:
                            known = self._lookup(files, parent, name)
                        if known is None:
                            if not create:
                                return None
                            known = self._create(files, parent, name)
                        self._ids[sub] = known
            parent = known
        return parent

    @staticmethod
    def _matches(files: Any, parent: str, name: str) -> list[dict[str, Any]]:
        listed = files.list(
            q=named(parent, name, folder=True),
            fields="files(id,createdTime)",
            orderBy="createdTime",
            pageSize=100,
        ).execute(num_retries=0)
        return oldest_first(list(listed.get("files", [])))

    # -- many folders at once (DriveStore.make_folders) -----------------------------

    def children(self, files: Any, parent: str, page_size: int = 1000) -> dict[str, list[str]]:
        """Every folder this app made in `parent`, by name, oldest first, every page: one
        listing where a lookup per name would cost a round trip each."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = files.list(
                q=f"mimeType = {q_string(FOLDER_MIME)} and " + tagged(parent),
                fields="nextPageToken,files(id,name,createdTime)",
                orderBy="createdTime",
                pageSize=page_size,
                pageToken=token,
            ).execute(num_retries=0)
            items += page.get("files", [])
            token = page.get("nextPageToken")
            if not token:
                break
        found: dict[str, list[str]] = {}
        for item in oldest_first(items):
            found.setdefault(str(item.get("name", "")), []).append(str(item["id"]))
        return found

    def create_only(self, files: Any, parent: str, name: str) -> str:
        """A create without the look after it: the caller settles many at once, from one
        listing (`settle`). A create that fails may have happened: the parent is tainted."""
        try:
            made = files.create(
                body={
                    "name": name,
                    "mimeType": FOLDER_MIME,
                    "parents": [parent],
                    "appProperties": dict(TAG),
                },
                fields="id",
            ).execute(num_retries=0)
        except BaseException:
            self.taint(parent)
            raise
        return str(made["id"])

    def settle(self, path: FolderPath, ids: list[str], mine: str | None) -> None:
        """`path` is the oldest folder of `ids` (every writer agrees on that one); it is
        fresh when it is the only one and this store made it."""
        self._ids[path] = ids[0]
        if mine is not None and ids == [mine]:
            self._fresh.add(mine)

    def _lookup(self, files: Any, parent: str, name: str) -> str | None:
        found = self._matches(files, parent, name)
        return str(found[0]["id"]) if found else None

    def _create(self, files: Any, parent: str, name: str) -> str:
        mine = self.create_only(files, parent, name)
        found = self._matches(files, parent, name)
        if not found:
            self._fresh.add(mine)
            return mine  # the search index has not caught up with our own create yet
        keep = str(found[0]["id"])
        if keep == mine and len(found) == 1:
            self._fresh.add(mine)
        if keep != mine:
            try:
                files.delete(fileId=mine).execute(num_retries=0)
            except HttpError:
                pass  # harmless: the oldest is used by everyone either way
        return keep
