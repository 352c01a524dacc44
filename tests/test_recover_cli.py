"""Recovery as a person runs it: the CLI on an encrypted target, drift and repair, and a
backup read with nothing but `zstd`, `tar` and a JSON reader, following docs/FORMAT.md."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.local import lifecycle
from core.models import JobState
from core.service import Service
from tests.support import CLAUDE_FIXTURES, REPO

CASES = CLAUDE_FIXTURES / "claude-code-log-cases"
FILES = [CASES / n for n in ("dag_simple.jsonl", "edit_tool.jsonl", "sidechain_main.jsonl")]
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(tmp_path / "xdg-data")}  # fmt: skip


def tk(env: dict[str, str], ws: Path, *args: str, code: int = 0, stdin: str = "") -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli.entry", *args, "--json", "--workspace", str(ws)],
        cwd=REPO, capture_output=True, timeout=120, input=stdin.encode(), env=env,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr.decode()
    return orjson.loads(proc.stdout) if proc.stdout.strip() else None


def sessions(env: dict[str, str], ws: Path) -> list[dict[str, Any]]:
    return list(tk(env, ws, "sessions"))


async def backed_up(ws: Path, tier2: Path, *, passphrase: str | None = None) -> None:
    """In-process (fast): the CLI is what the tests below exercise, not the backup."""
    svc = await Service.start(ws)
    try:
        await svc.add_folder_target("t2", str(tier2), passphrase=passphrase)
        await lifecycle.phase_new(svc.db, svc.workspace, "p1")
        await svc.import_now([str(p) for p in FILES])
        info = await svc.jobs.wait((await svc.start_backup([], "t2")).id)
        assert info.state == JobState.DONE, info.error
    finally:
        await svc.stop()


async def test_an_encrypted_backup_is_recovered_with_its_passphrase(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PYTHON_KEYRING_BACKEND", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, env[name])
    ws1, ws2, tier2 = tmp_path / "ws1", tmp_path / "ws2", tmp_path / "t2"
    await backed_up(ws1, tier2, passphrase=PASSPHRASE)
    before = sessions(env, ws1)
    shutil.rmtree(ws1)
    shutil.rmtree(tmp_path / "xdg-data")  # the keyring went with the laptop

    tk(env, ws2, "target", "add", "folder", "t2", str(tier2))
    tk(env, ws2, "recover", code=3)  # encrypted: it needs the passphrase
    tk(env, ws2, "recover", "--passphrase-stdin", stdin="not the passphrase\n", code=2)
    report = tk(env, ws2, "recover", "--passphrase-stdin", "--restore",
                stdin=PASSPHRASE + "\n")  # fmt: skip
    (t2,) = report["targets"]
    assert t2["sessions_added"] == len(FILES) and t2["index"] == "ok"
    assert len(report["restore"]["restored"]) == len(FILES)
    assert sessions(env, ws2) == before
    config = (ws2 / "config.toml").read_text()
    assert "key_id" in config and PASSPHRASE not in config


async def test_verify_catalog_reports_drift_and_repair_fixes_only_the_local_side(
    env: dict[str, str], tmp_path: Path
) -> None:
    ws, tier2 = tmp_path / "ws", tmp_path / "t2"
    await backed_up(ws, tier2)
    gone = FILES[0].stem
    shutil.rmtree(tier2 / "Tierkeeper" / "p1" / "sessions" / f"session_{gone}")
    remote = sorted(p for p in tier2.rglob("*") if p.is_file())
    (drift,) = tk(env, ws, "verify", "--catalog", code=4)
    assert drift["missing_remotely"] == [f"session {gone} (Tierkeeper/p1/sessions/session_{gone})"]
    assert drift["unknown_locally"] == [] and drift["differs"] == []
    tk(env, ws, "catalog", "repair", code=2)  # not without --yes
    svc = await Service.start(ws)
    try:
        result = await svc.catalog_repair("t2")
        assert result["marked_missing"] == 1
        assert all(d.clean for d in await svc.catalog_drift())
    finally:
        await svc.stop()
    assert sorted(p for p in tier2.rglob("*") if p.is_file()) == remote


def zstd_d(path: Path) -> bytes:
    return subprocess.run(["zstd", "-d", "-c", "--long=27", str(path)], check=True,
                          capture_output=True).stdout  # fmt: skip


async def test_a_backup_reads_with_zstd_tar_and_a_json_reader(tmp_path: Path) -> None:
    """What docs/FORMAT.md promises a person with no Tierkeeper at hand."""
    ws, tier2 = tmp_path / "ws", tmp_path / "t2"
    await backed_up(ws, tier2)
    root = tier2 / "Tierkeeper"
    doc = json.loads((root / "index.json").read_text())
    body = json.dumps(doc["body"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["integrity"]["method"] == "sha256"
    assert hashlib.sha256(body.encode()).hexdigest() == doc["integrity"]["value"]
    assert json.loads((root / "current_phase.json").read_text())["name"] == "p1"
    originals = {p.name: p.read_bytes() for p in FILES}
    seen = set()
    for entry in doc["body"]["sessions"]:
        folder = tier2 / entry["prefix"]
        raw_manifest = (folder / "manifest.json").read_bytes()
        assert hashlib.sha256(raw_manifest).hexdigest() == entry["manifest_sha256"]
        manifest = json.loads(raw_manifest)
        for f in manifest["files"]:
            stored = folder / f["stored_name"]
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == f["stored_sha256"]
            data = zstd_d(stored)
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            if f["members"]:  # a tarball of snapshots: `zstd -d | tar -x`
                out = tmp_path / "x" / entry["id"]
                out.mkdir(parents=True)
                subprocess.run(["tar", "-x", "-C", str(out)], input=data, check=True)
                continue
            assert data == originals[f["name"]]
            seen.add(f["name"])
        catalog = json.loads(zstd_d(folder / "catalog.json.zst"))
        assert catalog["session_id"] == entry["id"] == manifest["session_id"]
        assert catalog["session"]["phase"] == "p1"
        assert sum(s["size"] for s in catalog["sources"]) == sum(
            f["size"] for f in manifest["files"] if not f["members"]
        )
    assert seen == set(originals)
