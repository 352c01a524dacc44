"""The laptop died and its backups are on Google Drive: rebuild, then bring one back.

Real parts: the fake Drive v3 server driven by the real google-api-python-client, a
file keyring, the real job runner. The old workspace backs three fixture sessions up
to Drive (with client-side encryption in one case), then it and its keyring are
deleted; a new workspace signs in to the same Drive, rebuilds its catalog from it
(giving the passphrase when encrypted) and restores one session, whose files must be
the originals byte for byte and whose words Search must find again.

Also here: the sessions' folders a backup job has Drive make before it starts.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from core.config import TargetConfig
from core.models import JobState, SearchQuery
from core.packing.keys import WrongKeyError
from core.service import Service
from core.tier2.drive_target import keep_tokens
from core.tier2.encryption import KeyMissingError, encrypt_target
from core.tier2.session_layout import session_prefix, session_prefixes
from core.tier2.targets import RetryPolicy
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.support import CLAUDE_FIXTURES

drive = drive_fixture()
CASES = CLAUDE_FIXTURES / "claude-code-log-cases"
FILES = [CASES / n for n in ("edge_cases.jsonl", "edit_tool.jsonl", "dag_simple.jsonl")]
PASSPHRASE = "correct horse battery staple"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)
WORD = "error"
"""A word of edge_cases.jsonl, the session brought back."""


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return tmp_path / "xdg-data"


async def sign_in(svc: Service, drive: DriveHarness, passphrase: str | None = None) -> None:
    """A Drive target as the sign-in leaves it: tokens in the keyring, config saved."""
    gd = TargetConfig(name="gd", kind="drive", client_id=drive.server.client_id,
                      token_uri=drive.server.token_uri, api_root=drive.base_url)  # fmt: skip
    keep_tokens(gd, svc.scope, drive.credentials().refresh_token, drive.server.client_secret)
    if passphrase is not None:
        gd = encrypt_target(gd, svc.scope, passphrase)
    svc.config.targets.append(gd)
    svc.config.save(svc.workspace.config_path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_a_dead_laptop_comes_back_from_drive(
    drive: DriveHarness, tmp_path: Path, keyring_file: Path, encrypted: bool
) -> None:
    old, new = tmp_path / "old-ws", tmp_path / "new-ws"
    passphrase = PASSPHRASE if encrypted else None
    async with await Service.start(old, schedule=False, retry=FAST) as svc:
        await sign_in(svc, drive, passphrase)
        await svc.import_now([str(p) for p in FILES])
        before = {s.id: s for s in await svc.list_sessions()}
        info = await svc.jobs.wait((await svc.start_backup([], "gd")).id)
        assert info.state == JobState.DONE, info.error
    stored = [f for f in drive.store.all_files() if f.name.endswith(".enc")]
    assert bool(stored) == encrypted  # what left this computer was sealed, or not
    shutil.rmtree(old)
    shutil.rmtree(keyring_file)  # the keyring went with the laptop

    async with await Service.start(new, schedule=False, retry=FAST) as svc:
        await sign_in(svc, drive)  # signed in again; the encryption is learned from Drive
        if encrypted:
            with pytest.raises(KeyMissingError, match="encrypted"):
                await svc.start_recover(["gd"])
            with pytest.raises(WrongKeyError, match="does not open"):
                await svc.start_recover(["gd"], secret="not the passphrase")
        job = await svc.start_recover(["gd"], secret=passphrase)
        rebuilt = await svc.jobs.wait(job.id)
        assert rebuilt.state == JobState.DONE, rebuilt.error
        assert (rebuilt.result or {})["sessions_added"] == len(FILES)
        listed = {s.id: s for s in await svc.list_sessions()}
        assert set(listed) == set(before)
        assert all(s.in_backup_only for s in listed.values())
        assert [s.model_dump(exclude={"in_backup_only"}) for s in listed.values()] == [
            before[sid].model_dump(exclude={"in_backup_only"}) for sid in listed
        ]
        assert not await svc.search(SearchQuery(text=WORD, limit=20))  # no messages here yet

        job = await svc.start_recover(["gd"], restore=True, sessions=["edge_cases"])
        back = await svc.jobs.wait(job.id)
        assert back.state == JobState.DONE, back.error
        restore = (back.result or {})["restore"]
        assert restore["restored"] == ["edge_cases"] and not restore["failed"]
        waiting = {s.id for s in await svc.list_sessions() if s.in_backup_only}
        assert waiting == set(before) - {"edge_cases"}  # only the one asked for
        restored = new / "restored" / "edge_cases" / "edge_cases.jsonl"
        assert sha(restored) == sha(CASES / "edge_cases.jsonl")
        hits = await svc.search(SearchQuery(text=WORD, limit=20))
        assert hits and {h.session_id for h in hits} == {"edge_cases"}
        assert (svc.config.target("gd").encryption is not None) == encrypted  # learned, kept


async def test_a_backup_job_makes_its_sessions_folders_ahead_and_only_those(
    drive: DriveHarness, tmp_path: Path, keyring_file: Path
) -> None:
    """Made ahead in a few round trips (core/tier2/backup_job.py), exactly the folders the
    sessions' files then go into: none left empty, none made twice."""
    async with await Service.start(tmp_path / "ws", schedule=False, retry=FAST) as svc:
        await sign_in(svc, drive)
        await svc.import_now([str(p) for p in FILES])
        ids = sorted(s.id for s in await svc.list_sessions())
        drive.traffic.reset()
        info = await svc.jobs.wait((await svc.start_backup([], "gd")).id)
        assert info.state == JobState.DONE, info.error

    files = drive.store.all_files()
    sessions = [f for f in files if f.is_folder and f.name.startswith("session_")]
    assert sorted(f.name for f in sessions) == [f"session_{i}" for i in ids]
    assert all(any(g.parents == [f.id] for g in files) for f in sessions)  # none empty
    # per session: its uploads, nothing read back (Drive's md5 of the manifest is proof),
    # no folder lookups of its own
    assert drive.traffic.count("files.get_media") == 0
    # the app's folder looked up, the four made above the sessions each checked for a twin
    # once, and the sessions' folders listed before and after their creates: nothing per
    # session (its files go into a folder this store made, and need no look either)
    # (plus, before all that, the index looked for: which key the Drive's backups use,
    # core/tier2/encryption_claim.py; on a Drive with nothing yet, two looks find no folder)
    assert drive.traffic.count("files.list") == 2 + 1 + 4 + 2


async def test_only_sessions_with_files_here_get_their_backup_folder_made_ahead(
    service: Service, tmp_path: Path
) -> None:
    """A session known only from a backup (recovered, not restored) or with no file has
    nothing to send: a folder made for it ahead would stay empty on the target."""
    await service.import_now([str(FILES[0])])
    (s1,) = [s.id for s in await service.list_sessions()]
    for sid in ("recovered", "empty"):
        await service.db.execute(
            "INSERT INTO sessions(id, source, phase, updated_at) VALUES (?, 'x', 'p1', '')",
            (sid,),
        )
    await service.db.execute(
        "INSERT INTO recovered(session_id, target, tier, recovered_at) "
        "VALUES ('recovered', 'gd', 2, '')"
    )

    prefixes = await service.db.call(
        lambda conn: session_prefixes(conn, [s1, "recovered", "empty", "unknown"])
    )

    phase = await service.db.scalar("SELECT phase FROM sessions WHERE id = ?", (s1,))
    assert prefixes == [session_prefix(phase, s1)]
