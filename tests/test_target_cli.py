"""`tierkeeper target test` and `remove` after the move to the shared set-up logic:
the same output and exit codes as before, on a real folder, from a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.support import REPO


def tk(ws: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(ws)],
                          cwd=REPO, capture_output=True, timeout=120)  # fmt: skip


def test_target_test_and_remove_from_the_cli(tmp_path: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    assert tk(ws, "target", "add", "folder", "usb", str(disk)).returncode == 0
    proc = tk(ws, "target", "test", "usb", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert orjson.loads(proc.stdout) == {
        "result": "write, read back and delete of a 64 KiB probe: ok"
    }
    disk.rename(tmp_path / "unplugged")
    proc = tk(ws, "target", "test")  # the only one; its disk is gone
    assert proc.returncode != 0 and b"Traceback" not in proc.stderr

    proc = tk(ws, "target", "add", "folder", "bad name", str(disk))
    assert proc.returncode == 2 and b"not a usable target name" in proc.stderr
    assert tk(ws, "target", "remove", "usb").returncode == 0
    assert orjson.loads(tk(ws, "target", "list", "--json").stdout) == []
    assert tk(ws, "target", "remove", "usb").returncode == 2
