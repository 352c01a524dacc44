"""Tier 2 to a folder, as a user drives it from the CLI: back up, verify, restore."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from tests.support import CLAUDE_FIXTURES, ok, tk

SESSION = "edge_cases"
SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tier2")
    ws, disk = root / "ws", root / "disk"
    ok(tk("import", str(CLAUDE_FIXTURES), "--json", ws=ws))
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    out = ok(tk("backup", "--all", "--json", ws=ws))
    assert out["job"]["state"] == "done" and out["result"]["failed"] == []
    return ws, disk


def test_backup_writes_the_tier2_layout_with_manifests(backed_up: tuple[Path, Path]) -> None:
    _, disk = backed_up
    folder = disk / "Tierkeeper" / "no-phase" / "sessions" / f"session_{SESSION}"
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    (entry,) = manifest["files"]
    assert (
        entry["name"] == SOURCE.name
        and entry["sha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    )
    stored = (folder / entry["stored_name"]).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == entry["stored_sha256"]
    assert entry["remote_sha256"] == entry["stored_sha256"]


def test_restore_gives_back_the_same_bytes_and_never_overwrites(
    backed_up: tuple[Path, Path], tmp_path: Path
) -> None:
    ws, _ = backed_up
    dest = tmp_path / "restored"
    (first,) = ok(tk("restore", SESSION, "--to", str(dest), "--json", ws=ws))
    assert Path(first).read_bytes() == SOURCE.read_bytes()
    Path(first).write_bytes(b"edited since")
    (second,) = ok(tk("restore", SESSION, "--to", str(dest), "--json", ws=ws))
    assert second != first and "(restored 1)" in second
    assert Path(first).read_bytes() == b"edited since"
    assert Path(second).read_bytes() == SOURCE.read_bytes()


def test_restore_into_a_file_says_so_and_leaves_the_file(
    backed_up: tuple[Path, Path], tmp_path: Path
) -> None:
    """`--to` naming a file (or a path through one) is the user's slip, not a crash."""
    ws, _ = backed_up
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_bytes(b"mine")
    for dest in (in_the_way, in_the_way / "restored"):
        proc = tk("restore", SESSION, "--to", str(dest), ws=ws)
        said = proc.stderr.decode()
        assert proc.returncode == 2, said
        assert "a file with that name is in the way" in said and "internal error" not in said
    assert in_the_way.read_bytes() == b"mine"


def test_verify_finds_a_damaged_artifact_and_restore_refuses_it(
    tmp_path: Path,
) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("import", str(SOURCE), "--json", ws=ws))
    ok(tk("target", "add", "folder", "nas", str(disk), "--json", ws=ws))
    ok(tk("backup", SESSION, "--json", ws=ws))
    assert all(r["ok"] for r in ok(tk("verify", "--deep", "--json", ws=ws)))
    folder = disk / "Tierkeeper" / "no-phase" / "sessions" / f"session_{SESSION}"
    stored = folder / f"{SOURCE.name}.zst"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # bit rot on the backup disk, same size
    stored.write_bytes(bytes(data))
    proc = tk("verify", "--deep", "--json", ws=ws)
    assert proc.returncode == 4
    (result,) = orjson.loads(proc.stdout)
    assert not result["ok"] and "damaged" in result["problems"][0]
    dest = tmp_path / "out"
    proc = tk("restore", SESSION, "--to", str(dest), ws=ws)
    assert proc.returncode != 0 and b"Traceback" not in proc.stderr
    assert not dest.exists() or not any(dest.iterdir())


def test_verify_checks_the_manifest_too_and_the_next_backup_mends_it(tmp_path: Path) -> None:
    """A restore reads the manifest first: sound files under a damaged or lost manifest are
    a lost backup, so verify says so, and the next backup writes the session again."""
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("import", str(SOURCE), "--json", ws=ws))
    ok(tk("target", "add", "folder", "nas", str(disk), "--json", ws=ws))
    ok(tk("backup", SESSION, "--json", ws=ws))
    folder = disk / "Tierkeeper" / "no-phase" / "sessions" / f"session_{SESSION}"
    manifest = folder / "manifest.json"
    good = manifest.read_bytes()

    def verified(*deep: str) -> list[str]:
        proc = tk("verify", *deep, "--json", ws=ws)
        (result,) = orjson.loads(proc.stdout)
        assert proc.returncode == (0 if result["ok"] else 4)
        return list(result["problems"])

    # the same size, one byte changed: only reading it can tell
    bent = good.replace(b'"zstd"', b'"zstx"')
    assert len(bent) == len(good) and bent != good
    manifest.write_bytes(bent)
    assert verified() == []
    (problem,) = verified("--deep")
    assert problem == "manifest.json: content does not match its recorded digest (damaged)"

    manifest.write_bytes(b"garbage{")
    (problem,) = verified()
    assert problem.startswith("manifest.json: size 8, expected ")
    proc = tk("restore", SESSION, "--to", str(tmp_path / "lost"), ws=ws)
    assert proc.returncode == 2 and b"not valid JSON" in proc.stderr

    manifest.unlink()
    assert verified() == ["manifest.json: missing from the target"]

    again = ok(tk("backup", SESSION, "--json", ws=ws))  # not "unchanged": it failed verify
    assert again["result"]["sessions"] == 1 and again["result"]["unchanged"] == 0
    assert verified("--deep") == []
    (path,) = ok(tk("restore", SESSION, "--to", str(tmp_path / "back"), "--json", ws=ws))
    assert Path(path).read_bytes() == SOURCE.read_bytes()


def test_backup_without_a_target_says_how_to_add_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ok(tk("import", str(SOURCE), "--json", ws=ws))
    proc = tk("backup", ws=ws)
    assert proc.returncode == 2 and b"tierkeeper target add folder" in proc.stderr


def test_a_mistyped_session_id_is_refused_before_any_job_is_queued(
    backed_up: tuple[Path, Path],
) -> None:
    ws, _ = backed_up
    before = ok(tk("jobs", "--json", ws=ws))
    proc = tk("backup", SESSION, "no-such-session", ws=ws)
    assert proc.returncode != 0
    assert "No session 'no-such-session'" in proc.stderr.decode()
    assert ok(tk("jobs", "--json", ws=ws)) == before


def test_session_end_backs_the_session_up(tmp_path: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    ok(tk("phase", "new", "m1", "--json", ws=ws))
    sid = ok(tk("session", "start", "--json", ws=ws))["session"]
    end = ok(tk("session", "end", sid, "--summary", "done", "--json", ws=ws))
    assert end["backup"]["state"] == "done"
    folder = disk / "Tierkeeper" / "m1" / "sessions" / f"session_{sid}"
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    names = {f["name"] for f in manifest["files"]}
    assert names == {f"session_{sid}.jsonl", f"session_{sid}_handoff.md"}
    restored = tmp_path / "back"
    ok(tk("restore", sid, "--to", str(restored), "--json", ws=ws))
    assert (restored / f"session_{sid}_handoff.md").read_bytes() == (
        ws / "handoffs" / f"session_{sid}_handoff.md"
    ).read_bytes()


def test_snapshots_travel_as_one_long_window_tarball_and_come_back(tmp_path: Path) -> None:
    from core.local.snapshots import SnapshotStore

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    sid = ok(tk("session", "start", "--json", ws=ws))["session"]
    store = SnapshotStore(ws / "state")
    rng = __import__("random").Random(5)
    # a working state that grows a little between saves: near-duplicate snapshots
    files = {f"src/mod{i}.py": "".join(rng.choice("abcdefgh \n") for _ in range(4000))
             for i in range(60)}  # fmt: skip
    saved = []
    for step in range(8):
        files[f"src/new{step}.py"] = f"step {step}\n" * 50
        saved.append(store.save(sid, {"step": step, "files": files}))
    end = ok(tk("session", "end", sid, "--summary", "done", "--json", ws=ws))
    assert end["backup"]["state"] == "done"
    folder = next((disk / "Tierkeeper").glob(f"*/sessions/session_{sid}"))
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    (tar_entry,) = [f for f in manifest["files"] if f["name"] == "snapshots.tar"]
    assert len(tar_entry["members"]) == len(saved)
    separately = sum(info.size for info in saved)  # each snapshot compressed on its own
    assert tar_entry["stored_size"] < separately / 4  # the long window finds the repeats

    restored = tmp_path / "back"
    ok(tk("restore", sid, "--to", str(restored), "--json", ws=ws))
    for info in saved:
        plain = restored / "snapshots" / info.path.name.removesuffix(".zst")
        assert orjson.loads(plain.read_bytes()) == store.load(sid, info.number)


def test_raw_files_of_older_sessions_go_only_once_a_verified_backup_holds_them(
    tmp_path: Path,
) -> None:
    from core.local.snapshots import SnapshotStore

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ids = []
    for n in range(3):
        sid = ok(tk("session", "start", "--json", ws=ws))["session"]
        SnapshotStore(ws / "state").save(sid, {"n": n, "notes": "x" * 1000})
        if n == 1:
            ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
        ok(tk("session", "end", sid, "--summary", f"s{n}", "--json", ws=ws))
        ids.append(sid)
    log = ws / "logs" / f"session_{ids[0]}.jsonl"
    # the first session was never backed up (no target yet): it keeps its files
    assert log.exists() and list((ws / "state").glob(f"session_{ids[0]}_snap*"))

    out = ok(tk("backup", "--all", "--json", ws=ws))  # now it is backed up, and verified
    assert out["result"]["pruned_files"] == 2  # its log and its snapshot; two newest kept
    assert not log.exists() and not list((ws / "state").glob(f"session_{ids[0]}_snap*"))
    for sid in ids[1:]:
        assert (ws / "logs" / f"session_{sid}.jsonl").exists()
    assert (ws / "handoffs" / f"session_{ids[0]}_handoff.md").exists()  # notes stay

    restored = tmp_path / "back"
    ok(tk("restore", ids[0], "--to", str(restored), "--json", ws=ws))
    assert (restored / f"session_{ids[0]}.jsonl").exists()
    assert list((restored / "snapshots").glob("*.json"))


def test_a_log_changed_after_its_backup_is_not_pruned(tmp_path: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    first = ok(tk("session", "start", "--json", ws=ws))["session"]
    ok(tk("session", "end", first, "--summary", "a", "--json", ws=ws))
    log = ws / "logs" / f"session_{first}.jsonl"
    with open(log, "ab") as fh:  # an agent wrote one more event after the backup
        fh.write(b'{"type":"late","ts":"2026-01-01T00:00:00Z"}\n')
    for _ in range(2):
        sid = ok(tk("session", "start", "--json", ws=ws))["session"]
        end = ok(tk("session", "end", sid, "--summary", "b", "--json", ws=ws))
        assert end["backup"]["state"] == "done"
    assert log.exists()  # its bytes are not the ones backed up


def test_a_backup_to_an_unplugged_disk_waits_and_jobs_retry_runs_it(tmp_path: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("import", str(SOURCE), "--json", ws=ws))
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    disk.rename(tmp_path / "unplugged")
    proc = tk("backup", ws=ws)
    assert proc.returncode == 4, proc.stderr.decode()
    assert b"usb is unreachable" in proc.stderr and b"tierkeeper jobs retry" in proc.stderr
    (job,) = ok(tk("jobs", "--active", "--json", ws=ws))
    assert job["state"] == "waiting" and not job["needs_user"]
    (tmp_path / "unplugged").rename(disk)
    (done,) = ok(tk("jobs", "retry", "--json", ws=ws))
    assert done["state"] == "done" and done["id"] == job["id"]


def test_backup_verify_delete_the_original_then_restore_by_id(tmp_path: Path) -> None:
    """The promise a new user relies on, end to end from the CLI."""
    ws, disk, mine = tmp_path / "ws", tmp_path / "disk", tmp_path / "mine"
    mine.mkdir()
    original = mine / SOURCE.name
    original.write_bytes(SOURCE.read_bytes())
    ok(tk("import", str(original), "--json", ws=ws))
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    assert ok(tk("backup", "--json", ws=ws))["job"]["state"] == "done"
    assert all(r["ok"] for r in ok(tk("verify", "--deep", "--json", ws=ws)))
    original.unlink()
    (path,) = ok(tk("restore", SESSION, "--to", str(mine), "--json", ws=ws))
    assert Path(path) == original and original.read_bytes() == SOURCE.read_bytes()


def test_a_second_backup_skips_unchanged_sessions_and_keeps_pruned_snapshots(
    tmp_path: Path,
) -> None:
    from core.local.snapshots import SnapshotStore

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    ids = []
    for n in range(3):
        sid = ok(tk("session", "start", "--json", ws=ws))["session"]
        SnapshotStore(ws / "state").save(sid, {"n": n})
        ok(tk("session", "end", sid, "--summary", f"s{n}", "--json", ws=ws))
        ids.append(sid)
    assert not list((ws / "state").glob(f"session_{ids[0]}_snap*"))  # pruned after backup

    again = ok(tk("backup", "--all", "--json", ws=ws))["result"]
    assert again["unchanged"] == 3 and again["failed"] == []
    restored = tmp_path / "back"
    ok(tk("restore", ids[0], "--to", str(restored), "--json", ws=ws))
    assert len(list((restored / "snapshots").glob("*.json"))) == 1  # still in Tier 2

    log = ws / "logs" / f"session_{ids[2]}.jsonl"
    with open(log, "ab") as fh:  # the newest session's log grew
        fh.write(b'{"ts": 1, "session": "x", "type": "late"}\n')
    ok(tk("import", str(log), "--format", "tierkeeper", "--json", ws=ws))
    third = ok(tk("backup", "--all", "--json", ws=ws))["result"]
    assert third["unchanged"] == 2


def test_session_end_does_not_back_up_when_backups_are_switched_off(tmp_path: Path) -> None:
    from core.config import Config

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    config = Config.load(ws / "config.toml")
    config.schedule.backup_every = "off"
    config.save(ws / "config.toml")
    sid = ok(tk("session", "start", "--json", ws=ws))["session"]
    assert ok(tk("session", "end", sid, "--summary", "x", "--json", ws=ws))["backup"] is None
    assert not list(disk.rglob("manifest.json"))
