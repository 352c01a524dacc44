"""One backup folder, two workspaces: encryption chosen for a place stays chosen.

A second computer (or this one after a reinstall) adds a NAS folder that already
holds encrypted backups. Before, it was added as a plain target, its first backup
wrote unencrypted sessions over the encrypted ones and rewrote the index as plain.
Real parts: two services with their own workspaces and keyrings, one real folder,
the real job runner.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from core.local import lifecycle
from core.models import JobInfo, JobState
from core.packing.crypto import WrongKeyError
from core.recovery import index
from core.service import Service
from core.setup.models import FolderTargetSpec
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import CLAUDE_FIXTURES, ok, tk

CASES = CLAUDE_FIXTURES / "claude-code-log-cases"
FIRST = sorted(CASES.glob("dag_*.jsonl"))
SECOND = [CASES / "edit_tool.jsonl", CASES / "representative_messages.jsonl"]
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def tree(root: Path) -> dict[str, str]:
    """Every file on the target and its digest: what "nothing was written" is checked by."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def claimed_key(nas: Path) -> str | None:
    body = index.read_body((nas / "Tierkeeper" / "index.json").read_bytes())
    enc = body.get("encryption")
    return None if not enc else str(enc["key_id"])


async def backed_up(svc: Service, files: list[Path], target: str = "nas") -> JobInfo:
    await svc.import_now([str(p) for p in files])
    ids = [s.id for s in await svc.list_sessions() if s.id in {p.stem for p in files}]
    return await svc.jobs.wait((await svc.start_backup(ids, target)).id)


async def encrypted_by_first(tmp_path: Path) -> tuple[Path, str]:
    """The first computer: an encrypted target, backed up to; its key id."""
    nas = tmp_path / "nas"
    svc = await Service.start(tmp_path / "ws1")
    try:
        target = await svc.add_folder_target("nas", str(nas), passphrase=PASSPHRASE)
        assert (await backed_up(svc, FIRST)).state == JobState.DONE
    finally:
        await svc.stop()
    assert target.encryption is not None
    assert claimed_key(nas) == target.encryption.key_id
    return nas, target.encryption.key_id


async def test_a_second_computer_adding_it_plain_waits_for_the_key_and_writes_nothing(
    tmp_path: Path,
) -> None:
    nas, key_id = await encrypted_by_first(tmp_path)
    before = tree(nas)
    svc = await Service.start(tmp_path / "ws2")
    try:
        target = await svc.add_folder_target("nas", str(nas))  # no passphrase
        assert target.encryption is not None and target.encryption.key_id == key_id
        parked = await backed_up(svc, SECOND)
        assert parked.state == JobState.WAITING and parked.needs_user
        assert "target unlock nas" in (parked.wait_reason or "")
        assert tree(nas) == before  # not one byte: no plain session, no plain index

        with pytest.raises(WrongKeyError):
            await svc.unlock_target("nas", "not the passphrase at all")
        await svc.unlock_target("nas", PASSPHRASE)
        done = await svc.jobs.wait(parked.id)
        assert done.state == JobState.DONE, done.error
    finally:
        await svc.stop()
    assert claimed_key(nas) == key_id
    for p in SECOND:  # written encrypted, beside the first computer's sessions
        folder = nas / "Tierkeeper" / "no-phase" / "sessions" / f"session_{p.stem}"
        names = [f.name for f in folder.iterdir()]
        assert f"{p.stem}.jsonl.zst.enc" in names and f"{p.stem}.jsonl.zst" not in names


async def test_adding_it_with_a_passphrase_keeps_its_key_and_refuses_a_wrong_one(
    tmp_path: Path,
) -> None:
    nas, key_id = await encrypted_by_first(tmp_path)
    svc = await Service.start(tmp_path / "ws2")
    try:  # Test connection already says which key the folder's backups use
        tested = await svc.setup.test_target(FolderTargetSpec(name="nas", path=str(nas)))
        assert tested.encryption is not None and tested.encryption.key_id == key_id
        with pytest.raises(WrongKeyError, match="does not open nas"):
            await svc.add_folder_target("nas", str(nas), passphrase="another passphrase")
        assert svc.config.targets == []  # nothing saved for a wrong passphrase

        target = await svc.add_folder_target("nas", str(nas), passphrase=PASSPHRASE)
        assert target.encryption is not None and target.encryption.key_id == key_id
        assert (await backed_up(svc, SECOND)).state == JobState.DONE
    finally:
        await svc.stop()
    assert claimed_key(nas) == key_id


async def test_a_target_encrypted_since_it_was_added_parks_the_plain_one(
    tmp_path: Path,
) -> None:
    """Both added it while it was empty; the first then chose to encrypt it (a new
    target name on that computer, the same folder). The second's next backup waits
    for that key instead of writing plain sessions, and unlock adopts it."""
    nas = tmp_path / "nas"
    plain = await Service.start(tmp_path / "ws2")
    try:
        await plain.add_folder_target("nas", str(nas))
        nas_key = (await encrypted_by_first(tmp_path))[1]
        before = tree(nas)
        parked = await backed_up(plain, SECOND)
        assert parked.state == JobState.WAITING and parked.needs_user
        assert tree(nas) == before
        await plain.unlock_target("nas", PASSPHRASE)
        assert plain.config.target("nas").encryption.key_id == nas_key  # type: ignore[union-attr]
        assert (await plain.jobs.wait(parked.id)).state == JobState.DONE
    finally:
        await plain.stop()
    assert claimed_key(nas) == nas_key


def test_the_cli_says_how_to_give_the_key_and_takes_it_from_a_pipe(tmp_path: Path) -> None:
    """`echo … | tierkeeper …` gives the passphrase (a script's way, and a user's without
    a terminal): a prompt used to warn about echo, then abort for want of a second line."""
    nas = tmp_path / "nas"
    ws1, ws2 = tmp_path / "ws1", tmp_path / "ws2"
    ok(tk("init", "--json", ws=ws1))
    line = PASSPHRASE.encode() + b"\n"
    ok(tk("target", "add", "folder", "nas", str(nas), "--encrypt", "--json", ws=ws1, stdin=line))
    ok(tk("import", str(FIRST[0]), "--json", ws=ws1))
    ok(tk("backup", "--json", ws=ws1))
    ok(tk("init", "--json", ws=ws2))
    proc = tk("target", "add", "folder", "nas", str(nas), ws=ws2)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"tierkeeper target unlock nas" in proc.stderr
    listed = ok(tk("target", "list", "--json", ws=ws2))
    assert listed[0]["encryption"]["key_id"] == claimed_key(nas)

    empty = tk("target", "unlock", "nas", ws=ws2, stdin=b"")
    assert empty.returncode == 2 and b"No passphrase was given" in empty.stderr
    short = tk("target", "add", "folder", "usb", str(tmp_path / "usb"), "--encrypt", ws=ws2,
               stdin=b"short\n")  # fmt: skip
    assert short.returncode == 2 and b"too short" in short.stderr
    assert b"Traceback" not in empty.stderr + short.stderr
    proc = tk("target", "unlock", "nas", ws=ws2, stdin=line)
    assert proc.returncode == 0 and b"nas unlocked" in proc.stderr, proc.stderr.decode()
    assert PASSPHRASE.encode() not in proc.stderr + proc.stdout


def keys_in(seaweed: SeaweedHarness, bucket: str) -> list[str]:  # noqa: F811
    listed = seaweed.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def bucket_of(seaweed: SeaweedHarness) -> dict[str, Any]:  # noqa: F811
    """A new bucket on the S3 server, as `add_s3_target` takes it."""
    return {"bucket": seaweed.make_bucket(), "endpoint_url": seaweed.endpoint,
            "region": seaweed.region, "addressing": "path", "storage_class": "STANDARD",
            "access_key": seaweed.access_key, "secret_key": seaweed.secret_key}  # fmt: skip


async def closed_phase(svc: Service, disk: Path, files: list[Path]) -> None:
    """Phase p1 of `files`, backed up to the folder `disk` and closed: ready to archive."""
    await svc.add_folder_target("usb", str(disk))
    await lifecycle.phase_new(svc.db, svc.workspace, "p1")
    await svc.import_now([str(p) for p in files])
    assert (await svc.jobs.wait((await svc.start_backup([], "usb")).id)).state == JobState.DONE
    await lifecycle.phase_close(svc.db, svc.workspace, "p1")


async def test_an_archive_bucket_encrypted_since_it_was_added_parks_the_plain_archive(
    tmp_path: Path,
    seaweed: SeaweedHarness,  # noqa: F811
) -> None:
    s3 = bucket_of(seaweed)
    plain = await Service.start(tmp_path / "ws2")
    try:
        await plain.add_s3_target("deep", **s3)  # type: ignore[arg-type]
        await closed_phase(plain, tmp_path / "usb2", SECOND)
        first = await Service.start(tmp_path / "ws1")
        try:  # the other computer encrypts the same bucket and archives there first
            await first.add_s3_target("deep", passphrase=PASSPHRASE, **s3)  # type: ignore[arg-type]
            await closed_phase(first, tmp_path / "usb1", FIRST)
            job = await first.start_archive("p1", target="deep")
            assert (await first.jobs.wait(job.id)).state == JobState.DONE
        finally:
            await first.stop()
        held = keys_in(seaweed, s3["bucket"])

        parked = await plain.jobs.wait((await plain.start_archive("p1", target="deep")).id)
        assert parked.state == JobState.WAITING and parked.needs_user
        assert "target unlock deep" in (parked.wait_reason or "")
        assert keys_in(seaweed, s3["bucket"]) == held  # nothing new, no plain tarball
    finally:
        await plain.stop()


async def test_an_archive_that_frees_a_shared_folder_leaves_the_other_keys_index_alone(
    tmp_path: Path,
    seaweed: SeaweedHarness,  # noqa: F811
) -> None:
    """The archive lets the phase go from the backup folder, and would then write that
    folder's index anew. Another computer has since encrypted the folder and written
    an index naming its key: a plain index over it would make that computer's next
    backup wait for a key nobody removed, and tell a new computer the folder is plain."""
    disk = tmp_path / "usb"
    s3 = bucket_of(seaweed)
    plain = await Service.start(tmp_path / "ws2")
    try:
        await plain.add_s3_target("deep", **s3)  # type: ignore[arg-type]
        await closed_phase(plain, disk, SECOND)
        await lifecycle.phase_new(plain.db, plain.workspace, "p2")
        plain.config.retention.backup_phases = 1  # p1 leaves the folder once archived
        first = await Service.start(tmp_path / "ws1")
        try:  # the other computer now encrypts the same folder, and backs up to it
            target = await first.add_folder_target("usb", str(disk), passphrase=PASSPHRASE)
            assert (await backed_up(first, FIRST, "usb")).state == JobState.DONE
        finally:
            await first.stop()
        assert target.encryption is not None
        claim = (disk / "Tierkeeper" / "index.json").read_bytes()
        assert claimed_key(disk) == target.encryption.key_id

        done = await plain.jobs.wait((await plain.start_archive("p1", target="deep")).id)

        assert done.state == JobState.DONE
        assert (done.result or {})["tier2_phases_removed"] == ["p1"]
        assert not list((disk / "Tierkeeper" / "p1").rglob("manifest.json"))
        assert (disk / "Tierkeeper" / "index.json").read_bytes() == claim
    finally:
        await plain.stop()
