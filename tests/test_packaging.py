"""The .deb's layout: what a user gets on PATH, in the menu, and what removal may touch.

Built with the real build_deb.py and dpkg-deb around a stand-in bundle (two
shell programs), so it runs in a second instead of the minutes of PyInstaller;
`make package-test` installs the real one.
"""

from __future__ import annotations

import configparser
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

sys.path.insert(0, str(REPO / "packaging"))
import build_deb

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("deb")
    bundle = tmp / "bundle"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    (bundle / "_internal" / "resources" / "pricing.toml").write_text("")
    for program in ("tierkeeper", "tierkeeper-gui", "tierkeeper-hook"):
        (bundle / program).write_text("#!/bin/sh\necho tierkeeper 0.0\n")
        (bundle / program).chmod(0o700)  # a strict umask: the package must fix modes
    return build_deb.build(bundle, tmp / "out", tmp / "work", sys.executable)


@pytest.fixture(scope="module")
def tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extracted")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True, capture_output=True)
    return out.stdout.decode().strip()


def test_both_programs_are_on_path_and_point_into_opt(tree: Path) -> None:
    for program in ("tierkeeper", "tierkeeper-gui"):
        link = tree / "usr" / "bin" / program
        assert link.is_symlink()
        assert str(link.readlink()) == f"/opt/tierkeeper/{program}"
        assert (tree / "opt" / "tierkeeper" / program).stat().st_mode & 0o777 == 0o755
    assert (tree / "opt" / "tierkeeper" / "_internal" / "resources" / "pricing.toml").is_file()
    # the agent's hook program: run by its full path (settings written by `hook install`)
    hook = tree / "opt" / "tierkeeper" / "tierkeeper-hook"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert not (tree / "usr" / "bin" / "tierkeeper-hook").exists()


def test_the_menu_entry_starts_the_window_with_the_themed_icon(tree: Path) -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(tree / "usr" / "share" / "applications" / "tierkeeper.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert (tree / "usr" / "bin" / desktop["Exec"].split()[0]).is_symlink()
    assert desktop["Icon"] == "tierkeeper"
    hicolor = tree / "usr" / "share" / "icons" / "hicolor"
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        png = (hicolor / f"{size}x{size}" / "apps" / "tierkeeper.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (size, size)
    assert (hicolor / "scalable" / "apps" / "tierkeeper.svg").is_file()
    metainfo = tree / "usr" / "share" / "metainfo" / f"{build_deb.APP_ID}.metainfo.xml"
    assert '<launchable type="desktop-id">tierkeeper.desktop</launchable>' in metainfo.read_text()


def test_the_daemon_unit_runs_the_installed_program(tree: Path) -> None:
    unit = (tree / "usr" / "lib" / "systemd" / "user" / "tierkeeper.service").read_text()
    assert "\nExecStart=/usr/bin/tierkeeper daemon\n" in unit
    assert "WantedBy=default.target" in unit


def test_control_names_the_libraries_qt_loads_from_the_system(deb: Path) -> None:
    assert field(deb, "Package") == "tierkeeper"
    assert field(deb, "Version") == build_deb.version()
    depends = field(deb, "Depends")
    for lib in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1"):
        assert lib in depends
    assert int(field(deb, "Installed-Size")) > 0


def test_removal_scripts_touch_only_the_packages_own_folder(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    postrm = (tmp_path / "postrm").read_text()
    removals = [line.strip() for line in postrm.splitlines() if line.strip().startswith("rm ")]
    assert removals == ["rm -rf /opt/tierkeeper"]
    for script in ("postinst", "postrm"):
        text = (tmp_path / script).read_text()
        assert "HOME" not in text and "/home" not in text and "/root" not in text
        assert (tmp_path / script).stat().st_mode & 0o111
