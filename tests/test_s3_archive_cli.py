"""A phase goes local → backup folder → S3 and back, from the CLI, on real S3 servers.

SeaweedFS carries the data path (checksums verified by the server); moto plays
Deep Archive, where a GET needs a thaw first: the restore request is made,
the job waits in the queue, and it finishes once the object is thawed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from core.config import Config
from core.local.snapshots import SnapshotStore
from tests.s3_server.fixtures import SeaweedHarness, moto_s3, seaweed  # noqa: F401
from tests.s3_server.moto import MotoS3Server
from tests.support import REPO


class Cli:
    def __init__(self, tmp: Path, endpoint: str, access: str, secret: str, region: str) -> None:
        self.ws = tmp / "ws"
        self.endpoint = endpoint
        self.region = region
        self.env = {
            **os.environ,
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(self.ws)],
            cwd=REPO, env=self.env, capture_output=True, timeout=120,
        )  # fmt: skip

    def ok(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        return orjson.loads(proc.stdout) if proc.stdout.strip() else None

    def closed_phase(self, tier2: Path) -> list[str]:
        self.ok("target", "add", "folder", "t2", str(tier2))
        self.ok("phase", "new", "p1")
        ids = []
        for n in range(2):
            sid = self.ok("session", "start")["session"]
            SnapshotStore(self.ws / "state").save(sid, {"n": n, "notes": "state " * 300})
            self.ok("session", "end", sid, "--summary", f"s{n}")
            ids.append(sid)
        self.ok("phase", "close", "p1")
        return ids

    def add_s3(self, bucket: str, storage_class: str) -> Any:
        return self.ok("target", "add", "s3", "deep", "--bucket", bucket, "--endpoint",
                       self.endpoint, "--region", self.region, "--addressing", "path",
                       "--storage-class", storage_class)  # fmt: skip


def test_a_phase_goes_to_s3_and_comes_back(seaweed: SeaweedHarness, tmp_path: Path) -> None:  # noqa: F811
    cli = Cli(tmp_path, seaweed.endpoint, seaweed.access_key, seaweed.secret_key, seaweed.region)
    ids = cli.closed_phase(tmp_path / "t2")
    bucket = seaweed.make_bucket()
    added = cli.add_s3(bucket, "STANDARD_IA")
    report = "\n".join(added["report"])
    assert "exists" in report and "writable: yes" in report and "AbortIncomplete" in report
    config = (cli.ws / "config.toml").read_text()
    assert seaweed.secret_key not in config and seaweed.access_key not in config

    out = cli.ok("archive", "p1")
    assert out["job"]["state"] == "done" and out["result"]["sessions"] == 2
    s3 = seaweed.client()
    head = s3.head_object(Bucket=bucket, Key="p1.tar.zst")
    assert head.get("StorageClass") == "STANDARD_IA"
    manifest_head = s3.head_object(Bucket=bucket, Key="metadata/p1_manifest.json")
    assert manifest_head.get("StorageClass", "STANDARD") == "STANDARD"

    back = tmp_path / "back"
    out = cli.ok("archive-restore", "p1", "--session", ids[1], "--to", str(back))
    assert out["job"]["state"] == "done"
    folder = back / "p1" / "sessions" / f"session_{ids[1]}"
    assert (folder / f"session_{ids[1]}.jsonl").read_bytes() == (
        cli.ws / "logs" / f"session_{ids[1]}.jsonl"
    ).read_bytes()
    assert list((folder / "snapshots").glob("*.json"))


def test_deep_archive_thaws_first_and_the_job_waits_for_it(
    moto_s3: MotoS3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path, moto_s3.endpoint, moto_s3.access_key, moto_s3.secret_key, moto_s3.region)
    ids = cli.closed_phase(tmp_path / "t2")
    bucket = moto_s3.make_bucket()
    cli.add_s3(bucket, "DEEP_ARCHIVE")
    assert cli.ok("archive", "p1")["job"]["state"] == "done"

    # archiving again inside Deep Archive's 180 days would be billed: refused, with the
    # amount (a price table of the user's own makes these few bytes cost something)
    prices = tmp_path / "prices.toml"
    prices.write_text(
        "[class.DEEP_ARCHIVE]\nstorage = 1000000.0\nput = 0.05\nmin_days = 180\n"
        "retrieval.Standard = { per_gb = 0.02, per_1000 = 0.10 }\n"
    )
    config = Config.load(cli.ws / "config.toml")
    config.storage_prices_file = str(prices)
    config.save(cli.ws / "config.toml")
    proc = cli.run("archive", "p1")
    assert proc.returncode == 2 and b"minimum storage time" in proc.stderr
    assert b"$" in proc.stderr and b"--force" in proc.stderr
    assert cli.ok("archive", "p1", "--force")["job"]["state"] == "done"

    back = tmp_path / "back"
    proc = cli.run("archive-restore", "p1", "--to", str(back), "--tier", "Standard")
    assert proc.returncode == 4, proc.stderr.decode()
    assert b"cost: " in proc.stderr and b"to thaw" in proc.stderr
    assert b"thawing p1.tar.zst from DEEP_ARCHIVE" in proc.stderr
    assert b"within 12 hours" in proc.stderr
    (job,) = cli.ok("jobs", "--active")
    assert job["state"] == "waiting" and job["resource"] == "thaw:deep:p1.tar.zst"
    assert not back.exists()

    moto_s3.hold_restore(bucket, "p1.tar.zst")  # the request was made; AWS is working on it
    moto_s3.complete_restore(bucket, "p1.tar.zst")
    (done,) = cli.ok("jobs", "retry")
    assert done["state"] == "done", done
    for sid in ids:
        assert (back / "p1" / "sessions" / f"session_{sid}" / f"session_{sid}.jsonl").exists()
