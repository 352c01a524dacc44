"""A whole folder tree backed up exactly as it is and brought back, on real stores.

Folder targets for the details (modes, mtimes, links, empty folders, unicode
names, incremental growth, damage, unsafe manifests); the SeaweedFS S3 server
through the real CLI for the round trip a user runs.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.errors import BadInputError, PartialFailure
from core.remote.folder import FolderStore
from core.tree import catalog
from core.tree.backup import BackupReport, backup_tree
from core.tree.manifest import BadManifestError, Manifest
from core.tree.restore import restore_tree
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import REPO

KiB = 1024
FRAME, PACK = 256 * KiB, 32 * KiB
"""Small frames and packs, so a small tree already spans several of each."""


def text(rng: random.Random, n: int) -> bytes:
    words = b"agent tier backup restore session phase cache token upload verify".split()
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def make_tree(root: Path) -> None:
    rng = random.Random(7)
    (root / "projects" / "demo").mkdir(parents=True)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    (root / "commands").mkdir()
    (root / "CLAUDE.md").write_bytes(b"# rules\n" + text(rng, 3000))
    (root / "settings.json").write_bytes(b'{"theme": "dark"}\n')
    (root / "empty-file").write_bytes(b"")
    (root / "commands" / "deploy.sh").write_bytes(b"#!/bin/sh\necho deploy\n")
    (root / "commands" / "deploy.sh").chmod(0o755)
    (root / "secret.token").write_bytes(b"not-really-a-token")
    (root / "secret.token").chmod(0o600)
    (root / "café ☕ 日本語.md").write_bytes("unicode ✓\n".encode())
    big = text(rng, 700 * KiB)  # spans several 256 KiB frames
    (root / "projects" / "demo" / "session.jsonl").write_bytes(big)
    for k in range(12):  # near-duplicate snapshots, natural order 2 < 10
        body = big[: 60 * KiB] + f"edit {k}".encode()
        (root / "projects" / "demo" / f"snap{k}.json").write_bytes(body)
    (root / "link-to-claude").symlink_to("CLAUDE.md")
    (root / "dangling").symlink_to("nowhere/at/all")
    (root / "projects" / "readonly.txt").write_bytes(b"keep")
    (root / "projects" / "readonly.txt").chmod(0o444)
    os.mkfifo(root / "a-fifo")
    (root / "empty").chmod(0o750)
    for i, path in enumerate(sorted(root.rglob("*"))):
        os.utime(path, ns=(1_600_000_000_000_000_000 + i * 1_000_000_123,) * 2,
                 follow_symlinks=False)  # fmt: skip
    os.utime(root, ns=(1_500_000_000_000_000_000,) * 2)


def picture(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a restore must reproduce: kind, mode, mtime, content or link target."""
    seen: dict[str, tuple[object, ...]] = {".": ("dir", stat.S_IMODE(root.stat().st_mode),
                                                 root.stat().st_mtime_ns)}  # fmt: skip
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            seen[rel] = ("link", os.readlink(path), st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            seen[rel] = ("dir", mode, st.st_mtime_ns)
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[rel] = ("file", mode, st.st_mtime_ns, digest)
    return seen


def stored_bytes(target: Path) -> int:
    return sum(p.stat().st_size for p in target.rglob("*.tkp"))


async def backup(store: FolderStore, src: Path, cache: Path) -> BackupReport:
    return await backup_tree(store, src, "home", cache=cache, frame_size=FRAME, pack_size=PACK)


async def latest(store: FolderStore) -> Manifest:
    ids = await catalog.snapshots(store, "home")
    return await catalog.load(store, "home", ids[-1])


async def test_a_tree_comes_back_exactly_as_it_was(tmp_path: Path) -> None:
    src, target, dest = tmp_path / "src", tmp_path / "target", tmp_path / "restored"
    src.mkdir()
    target.mkdir()
    make_tree(src)
    store = FolderStore(target, name="t")

    report = await backup(store, src, tmp_path / "cache")
    assert report.files == 20 and report.links == 2 and report.dirs == 5
    assert report.packs > 1  # several packs: the upload ran beside the packing
    assert any("a-fifo" in note and "named pipe" in note for note in report.skipped)
    # near-duplicates side by side compress to a fraction of their size
    assert report.stored < report.bytes_in / 2

    manifest = await latest(store)
    restored = await restore_tree(store, manifest, dest)
    assert restored.files == 20
    assert picture(dest) == picture(src)  # the fifo aside: reported, never stored
    assert not (dest / "a-fifo").exists()


async def test_an_incremental_backup_stores_only_what_changed(tmp_path: Path) -> None:
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    target.mkdir()
    make_tree(src)
    store = FolderStore(target, name="t")
    await backup(store, src, tmp_path / "cache")
    first = await latest(store)
    before = picture(src)
    stored = stored_bytes(target)

    log = src / "projects" / "demo" / "session.jsonl"
    with log.open("ab") as fh:
        fh.write(os.urandom(1000))  # incompressible: what is stored is about this
    (src / "settings.json").write_bytes(b'{"theme": "lite"}\n')  # same size, new content
    report = await backup(store, src, tmp_path / "cache")

    assert report.grown == 1 and report.reused == 18
    assert report.bytes_packed == 1000 + len(b'{"theme": "lite"}\n')
    assert stored_bytes(target) - stored < 1200  # not the 700 KiB log again

    after = await latest(store)
    assert after.parent == first.id
    await restore_tree(store, after, tmp_path / "now")
    assert picture(tmp_path / "now") == picture(src)
    await restore_tree(store, first, tmp_path / "then")  # the old snapshot is intact
    assert picture(tmp_path / "then") == before


async def test_a_file_that_changed_before_growing_is_stored_whole(tmp_path: Path) -> None:
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    target.mkdir()
    (src / "log").write_bytes(b"a" * 5000)
    store = FolderStore(target, name="t")
    await backup(store, src, tmp_path / "cache")
    (src / "log").write_bytes(b"b" * 5000 + b"tail")
    report = await backup(store, src, tmp_path / "cache")
    assert report.grown == 0 and report.bytes_packed == 5004
    await restore_tree(store, await latest(store), tmp_path / "out")
    assert (tmp_path / "out" / "log").read_bytes() == b"b" * 5000 + b"tail"


async def test_a_damaged_pack_names_the_files_it_took(tmp_path: Path) -> None:
    src, target, dest = tmp_path / "src", tmp_path / "target", tmp_path / "restored"
    src.mkdir()
    target.mkdir()
    make_tree(src)
    store = FolderStore(target, name="t")
    await backup(store, src, tmp_path / "cache")
    manifest = await latest(store)
    victim = manifest.frames[0].pack
    in_victim = sorted(
        e.path for e in manifest.files()
        if any(manifest.frames[p.frame].pack == victim for p in e.pieces)
    )  # fmt: skip
    pack = target / "tree" / "home" / victim
    data = bytearray(pack.read_bytes())
    for i in range(100, 200):
        data[i] ^= 0xFF
    pack.write_bytes(bytes(data))

    with pytest.raises(PartialFailure) as caught:
        await restore_tree(store, manifest, dest)
    message = caught.value.message
    assert victim in message and "damaged" in message
    for path in in_victim[:10]:
        assert path in message
    for path in in_victim:
        assert not (dest / path).exists()  # nothing wrong under a real name
    leftovers = [p.name for p in dest.rglob(".*.tk-*")]
    assert leftovers == []
    others = [e for e in manifest.files() if e.path not in in_victim and e.size]
    assert others
    for e in others:
        assert hashlib.sha256((dest / e.path).read_bytes()).hexdigest() == e.sha256


async def test_a_manifest_pointing_outside_is_refused(tmp_path: Path) -> None:
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    target.mkdir()
    (src / "innocent.txt").write_bytes(b"hello")
    store = FolderStore(target, name="t")
    await backup(store, src, tmp_path / "cache")
    ids = await catalog.snapshots(store, "home")
    key = target / catalog.snapshot_key("home", ids[-1])
    import zstandard

    doc = orjson.loads(zstandard.ZstdDecompressor().decompress(key.read_bytes()))
    doc["entries"][0]["p"] = "../escaped.txt"
    key.write_bytes(zstandard.ZstdCompressor().compress(orjson.dumps(doc)))

    with pytest.raises(BadManifestError, match="unsafe path"):
        await catalog.load(store, "home", ids[-1])
    assert not (tmp_path / "escaped.txt").exists()


async def test_restore_never_writes_into_a_non_empty_folder_unasked(tmp_path: Path) -> None:
    src, target, dest = tmp_path / "src", tmp_path / "target", tmp_path / "dest"
    src.mkdir()
    target.mkdir()
    dest.mkdir()
    (src / "a.txt").write_bytes(b"new")
    (dest / "a.txt").write_bytes(b"mine")
    store = FolderStore(target, name="t")
    await backup(store, src, tmp_path / "cache")
    manifest = await latest(store)
    with pytest.raises(BadInputError, match="not empty"):
        await restore_tree(store, manifest, dest)
    assert (dest / "a.txt").read_bytes() == b"mine"
    await restore_tree(store, manifest, dest, overwrite=True)
    assert (dest / "a.txt").read_bytes() == b"new"


def test_the_cli_round_trip_on_s3(seaweed: SeaweedHarness, tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "claude"
    src.mkdir()
    make_tree(src)
    (src / "a-fifo").unlink()
    bucket = seaweed.make_bucket()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "config.toml").write_text(
        f'[[targets]]\nname = "s3"\nkind = "s3"\nbucket = "{bucket}"\n'
        f'endpoint_url = "{seaweed.endpoint}"\nregion = "{seaweed.region}"\n'
        'addressing = "path"\nstorage_class = "STANDARD"\n'
    )
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "TIERKEEPER_HOME": str(ws),
    }

    def cli(*args: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "core.cli.entry", "tree", *args, "--json"],
            cwd=REPO, env=env, capture_output=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()
        return orjson.loads(proc.stdout)

    first = cli("backup", str(src), "--target", "s3")
    assert first["label"] == "claude" and first["files"] == 20
    with (src / "projects" / "demo" / "session.jsonl").open("ab") as fh:
        fh.write(b"one more line\n")
    second = cli("backup", str(src), "--target", "s3")
    assert second["grown"] == 1 and second["reused"] == 19
    listed = cli("list", "--target", "s3")
    assert [row["snapshot"] for row in listed] == [first["snapshot"], second["snapshot"]]
    cli("restore", "--target", "s3", "--to", str(tmp_path / "back"))
    assert picture(tmp_path / "back") == picture(src)
    keys = seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert all(k["Key"].startswith("tree/claude/") for k in keys)
