"""A restore that puts each file back where it came from (`restore SESSION --original`).

Real transcripts copied to a folder of their own are imported and backed up to a real
folder target; the originals are then deleted, changed or their folder taken away,
the way a user loses them, and the restore goes through the CLI as they would run it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import BadInputError
from core.service import Service
from core.tier2 import original_places
from tests.support import CLAUDE_FIXTURES, ok, tk

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
SESSION = "edge_cases"


def backed_up(tmp_path: Path) -> tuple[Path, Path]:
    """(workspace, the original file): imported from a copy the test may destroy."""
    mine = tmp_path / "projects" / "-home-me-app" / SOURCE.name
    mine.parent.mkdir(parents=True)
    shutil.copyfile(SOURCE, mine)
    ws = tmp_path / "ws"
    ok(tk("import", str(mine), "--json", ws=ws))
    ok(tk("target", "add", "folder", "usb", str(tmp_path / "disk"), "--json", ws=ws))
    ok(tk("backup", SESSION, "--json", ws=ws))
    return ws, mine


def test_a_lost_file_comes_back_where_it_was(tmp_path: Path) -> None:
    ws, mine = backed_up(tmp_path)
    mine.unlink()

    (path,) = ok(tk("restore", SESSION, "--original", "--json", ws=ws))

    assert Path(path) == mine
    assert mine.read_bytes() == SOURCE.read_bytes()


def test_a_file_that_is_still_there_is_kept_unless_overwrite_is_said(tmp_path: Path) -> None:
    ws, mine = backed_up(tmp_path)
    mine.write_bytes(b"my edits since\n")

    (beside,) = ok(tk("restore", SESSION, "--original", "--json", ws=ws))
    assert Path(beside) == mine.with_name(f"{mine.stem} (restored 1){mine.suffix}")
    assert Path(beside).read_bytes() == SOURCE.read_bytes()
    assert mine.read_bytes() == b"my edits since\n"

    (replaced,) = ok(tk("restore", SESSION, "--original", "--overwrite", "--json", ws=ws))
    assert Path(replaced) == mine and mine.read_bytes() == SOURCE.read_bytes()


def test_a_folder_that_is_gone_is_made_again(tmp_path: Path) -> None:
    """The usual reason to restore: the project folder (or all of `~/.claude`) is gone."""
    ws, mine = backed_up(tmp_path)
    shutil.rmtree(tmp_path / "projects")

    (path,) = ok(tk("restore", SESSION, "--original", "--json", ws=ws))

    assert Path(path) == mine and mine.read_bytes() == SOURCE.read_bytes()
    proc = tk("restore", SESSION, "--original", "--to", str(tmp_path / "x"), ws=ws)
    assert proc.returncode == 2 and b"not both" in proc.stderr


def test_a_file_in_the_way_of_the_folder_stops_the_restore_before_anything_is_written(
    tmp_path: Path,
) -> None:
    ws, _ = backed_up(tmp_path)
    shutil.rmtree(tmp_path / "projects")
    (tmp_path / "projects").write_bytes(b"not a folder")

    proc = tk("restore", SESSION, "--original", ws=ws)

    said = proc.stderr.decode()
    assert proc.returncode == 2, said
    assert f"a file is in the way at {tmp_path / 'projects'}" in said and "--to DIR" in said
    assert (tmp_path / "projects").read_bytes() == b"not a folder"


async def test_a_folder_on_a_disk_that_is_not_mounted_is_not_made_on_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/media/me/usb/...` with the disk away: making the folders would write the
    session onto the computer's own disk, under the empty mount point."""
    media = tmp_path / "media"
    mine = media / "me" / "usb" / "app" / SOURCE.name
    mine.parent.mkdir(parents=True)
    shutil.copyfile(SOURCE, mine)
    monkeypatch.setattr(original_places, "REMOVABLE", (media,))
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await svc.import_now([str(mine)])
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        assert (await svc.jobs.wait((await svc.start_backup([SESSION], "usb")).id)).result
        shutil.rmtree(media / "me" / "usb")  # unplugged: its mount point is gone too

        with pytest.raises(BadInputError, match="its disk may not be mounted"):
            await svc.restore(SESSION, None)
        assert sorted(p.name for p in media.rglob("*")) == ["me"]

        (media / "me" / "usb").mkdir()  # plugged in again (an empty disk this time)
        (path,) = await svc.restore(SESSION, None)
        assert path == mine and mine.read_bytes() == SOURCE.read_bytes()


async def test_a_disk_the_file_system_table_mounts_elsewhere_is_recognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second disk at `/data` (any folder the table names), not mounted now: its
    mount point is an empty folder on the computer's own disk, and the project folder
    under it is not made there. Once the table no longer names it, it is made."""
    disk = tmp_path / "my data"  # a space: the table writes it as \040
    mine = disk / "app" / SOURCE.name
    mine.parent.mkdir(parents=True)
    shutil.copyfile(SOURCE, mine)
    fstab = tmp_path / "fstab"
    monkeypatch.setattr(original_places, "FSTAB", fstab)
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await svc.import_now([str(mine)])
        await svc.add_folder_target("usb", str(tmp_path / "backup"))
        assert (await svc.jobs.wait((await svc.start_backup([SESSION], "usb")).id)).result
        shutil.rmtree(disk / "app")  # not mounted: the empty mount point is left
        fstab.write_text(
            "# <file system> <mount point> <type> <options> <dump> <pass>\n"
            "UUID=1b2c  /  ext4  errors=remount-ro  0  1\n"
            f"UUID=9f8e  {str(disk).replace(' ', chr(92) + '040')}  ext4  defaults,nofail  0  2\n"
            "/swapfile  none  swap  sw  0  0\n"
        )

        with pytest.raises(BadInputError, match="its disk may not be mounted"):
            await svc.restore(SESSION, None)
        assert list(disk.iterdir()) == []

        fstab.write_text("UUID=1b2c  /  ext4  errors=remount-ro  0  1\n")  # a plain folder
        (path,) = await svc.restore(SESSION, None)
        assert path == mine and mine.read_bytes() == SOURCE.read_bytes()


def test_snapshots_go_back_into_the_workspace_as_it_keeps_them(tmp_path: Path) -> None:
    from core.local.snapshots import SnapshotStore

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    ok(tk("target", "add", "folder", "usb", str(disk), "--json", ws=ws))
    sid = ok(tk("session", "start", "--json", ws=ws))["session"]
    store = SnapshotStore(ws / "state")
    saved = [store.save(sid, {"step": step, "notes": "x" * 500 * step}) for step in range(3)]
    ok(tk("session", "end", sid, "--summary", "done", "--json", ws=ws))
    wanted = {info.path.name: store.load(sid, info.number) for info in saved}
    for info in saved[1:]:
        info.path.unlink()  # lost; the first is still there

    written = [Path(p) for p in ok(tk("restore", sid, "--original", "--json", ws=ws))]

    back = {p.name for p in written if p.name.endswith(".json.zst")}
    kept = saved[0].path
    assert {info.path.name for info in saved[1:]} <= back
    # the one still there is kept; its copy lies beside it, out of the snapshots' pattern
    copy = kept.with_name(kept.name.removesuffix(".zst") + " (restored 1).zst")
    assert copy in written and copy.exists()
    for info in saved:  # as the workspace reads them
        assert store.load(sid, info.number) == wanted[info.path.name]


def test_a_session_recovered_from_a_backup_is_not_put_back_by_its_catalogs_paths(
    tmp_path: Path,
) -> None:
    """On a new machine the paths are the old one's; in an altered backup, anyone's."""
    _, mine = backed_up(tmp_path)
    mine.unlink()
    ws2 = tmp_path / "ws2"
    ok(tk("target", "add", "folder", "usb", str(tmp_path / "disk"), "--json", ws=ws2))
    ok(tk("recover", "--json", ws=ws2))

    proc = tk("restore", SESSION, "--original", ws=ws2)

    said = proc.stderr.decode()
    assert proc.returncode == 2 and "was recovered from a backup" in said, said
    assert not mine.exists()
    (path,) = ok(tk("restore", SESSION, "--to", str(tmp_path / "here"), "--json", ws=ws2))
    assert Path(path).read_bytes() == SOURCE.read_bytes()


def test_a_file_already_there_with_the_same_bytes_gets_no_copy_beside_it(
    tmp_path: Path,
) -> None:
    """Restoring twice (or a file that was never lost) used to leave `x (restored 1)`
    copies of identical bytes beside it."""
    ws, mine = backed_up(tmp_path)
    out = tmp_path / "out"
    (first,) = ok(tk("restore", SESSION, "--to", str(out), "--json", ws=ws))
    (again,) = ok(tk("restore", SESSION, "--to", str(out), "--json", ws=ws))
    assert again == first and [p.name for p in out.iterdir()] == [SOURCE.name]
    (same,) = ok(tk("restore", SESSION, "--original", "--json", ws=ws))
    assert Path(same) == mine and list(mine.parent.iterdir()) == [mine]
    assert mine.read_bytes() == SOURCE.read_bytes()
