"""Wraps the PyInstaller bundle in a .deb: `python packaging/build_deb.py`.

    /opt/tierkeeper/                      the bundle (tierkeeper, tierkeeper-gui,
                                          tierkeeper-hook, _internal/)
    /usr/bin/tierkeeper, tierkeeper-gui   links into it, so both are on PATH (the hook
                                          program needs none: its settings entry is absolute)
    /usr/share/applications/tierkeeper.desktop
    /usr/share/metainfo/<id>.metainfo.xml
    /usr/share/icons/hicolor/*/apps/tierkeeper.{png,svg}
    /usr/lib/systemd/user/tierkeeper.service   (not enabled: the user's choice)

The bundle carries its own Python and Qt; Depends lists only what Qt loads from
the system (the X11/Wayland client libraries, OpenGL/EGL, fontconfig, D-Bus):
the list `make system-deps` installs, plus Wayland's client libraries. Nothing
here or in the maintainer scripts touches a user's workspace, settings or keyring.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DESKTOP = HERE / "desktop"
APP_ID = "io.github.tierkeeper.Tierkeeper"
PREFIX = Path("opt/tierkeeper")

DEPENDS = (
    "libc6 (>= 2.28)", "libgl1", "libegl1", "libfontconfig1", "libglib2.0-0", "libxkbcommon0",
    "libdbus-1-3", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
    "libxcb-render-util0", "libxcb-randr0", "libxcb-shape0", "libxcb-xinerama0", "libxcb-xkb1",
    "libxkbcommon-x11-0", "libwayland-client0", "libwayland-cursor0", "libwayland-egl1",
)  # fmt: skip
RECOMMENDS = ("fonts-dejavu-core | fonts-liberation2",)
SUGGESTS = ("gnome-keyring | kwalletmanager",)  # where the Drive sign-in and S3 keys are kept

# Caches of the desktop's menus and icon theme; Debian's triggers refresh them too,
# but a minimal system may have the tools without the triggers.
CACHES = """\
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q /usr/share/applications || true
fi
if [ -f /usr/share/icons/hicolor/index.theme ] \\
        && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
fi
"""
POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
{CACHES}fi
exit 0
"""
# Only the package's own folder: workspaces live in the users' homes and stay.
POSTRM = f"""#!/bin/sh
set -e
case "$1" in
    remove|purge)
        rm -rf /{PREFIX}
{CACHES}        ;;
esac
exit 0
"""


def version() -> str:
    text = (ROOT / "core" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit("no __version__ in core/__init__.py")
    return found.group(1)


def architecture() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    return out.stdout.strip() or "amd64"


def control(ver: str, arch: str, installed_kib: int) -> str:
    return (
        "Package: tierkeeper\n"
        f"Version: {ver}\n"
        f"Architecture: {arch}\n"
        "Maintainer: The Tierkeeper developers <tierkeeper@users.noreply.github.com>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        f"Recommends: {', '.join(RECOMMENDS)}\n"
        f"Suggests: {', '.join(SUGGESTS)}\n"
        "Section: utils\n"
        "Priority: optional\n"
        "Description: storage manager for AI coding-agent session data\n"
        " Tierkeeper imports the session logs that AI coding agents leave on disk,\n"
        " makes them searchable, and keeps them in three tiers: the local\n"
        " workspace, a backup in a folder or on Google Drive, and a long-term\n"
        " archive in S3 Glacier. It has a desktop window, a command line and a\n"
        " background daemon (a systemd user unit, not enabled by default).\n"
    )


def systemd_unit() -> str:
    """The repo's unit, pointed at the installed program (no PATH search in ExecStart)."""
    text = (HERE / "systemd" / "tierkeeper.service").read_text(encoding="utf-8")
    body = text[text.index("[Unit]") :]
    body = re.sub(r"^ExecStart=tierkeeper ", "ExecStart=/usr/bin/tierkeeper ", body, flags=re.M)
    header = (
        "# Tierkeeper's daemon as a systemd user service (installed by the tierkeeper package).\n"
        "#   systemctl --user enable --now tierkeeper\n"
    )
    return header + body


def normalise_modes(root: Path) -> None:
    """0755 for folders and programs, 0644 for the rest, whatever the build's umask was."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir() or path.stat().st_mode & 0o111:
            path.chmod(0o755)
        else:
            path.chmod(0o644)


def stage(bundle: Path, tree: Path, python: str) -> None:
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(bundle, tree / PREFIX, symlinks=True)
    bin_dir = tree / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("tierkeeper", "tierkeeper-gui", "tierkeeper-hook"):
        if not (tree / PREFIX / program).is_file():
            raise SystemExit(f"{bundle} has no {program}: build it with the spec first")
    for program in ("tierkeeper", "tierkeeper-gui"):
        (bin_dir / program).symlink_to(f"/{PREFIX}/{program}")
    share = tree / "usr" / "share"
    _copy(DESKTOP / "tierkeeper.desktop", share / "applications" / "tierkeeper.desktop")
    _copy(DESKTOP / f"{APP_ID}.metainfo.xml", share / "metainfo" / f"{APP_ID}.metainfo.xml")
    subprocess.run(
        [python, str(DESKTOP / "render_icons.py"), str(share / "icons" / "hicolor")], check=True
    )
    unit = tree / "usr" / "lib" / "systemd" / "user" / "tierkeeper.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(systemd_unit(), encoding="utf-8")
    doc = share / "doc" / "tierkeeper"
    _copy(HERE / "autostart" / "tierkeeper-daemon.desktop", doc / "examples" / "autostart.desktop")
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: tierkeeper\n\nFiles: *\nCopyright: The Tierkeeper developers\n"
        "License: MIT\n",
        encoding="utf-8",
    )
    normalise_modes(tree)


def _copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)


def validate_metainfo() -> None:
    """AppStream's validator, when installed; its warnings are shown, errors stop the build."""
    tool = shutil.which("appstreamcli")
    if tool is None:
        print("appstreamcli not installed: metainfo not validated", file=sys.stderr)
        return
    path = DESKTOP / f"{APP_ID}.metainfo.xml"
    subprocess.run([tool, "validate", "--no-net", str(path)], check=True)


def build(bundle: Path, out: Path, work: Path, python: str) -> Path:
    validate_metainfo()
    tree = work / "root"
    stage(bundle, tree, python)
    installed = sum(p.lstat().st_size for p in tree.rglob("*")) // 1024 + 1
    debian = tree / "DEBIAN"
    debian.mkdir()
    ver, arch = version(), architecture()
    (debian / "control").write_text(control(ver, arch, installed), encoding="utf-8")
    for name, text in (("postinst", POSTINST), ("postrm", POSTRM)):
        (debian / name).write_text(text, encoding="utf-8")
        (debian / name).chmod(0o755)
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"tierkeeper_{ver}_{arch}.deb"
    # xz -9 ("extreme"): the package is built once and downloaded many times
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z9", "-Sextreme", "--build", str(tree),
         str(deb)],
        check=True,
    )  # fmt: skip
    return deb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=HERE / "dist" / "tierkeeper")
    parser.add_argument("--out", type=Path, default=HERE / "dist")
    parser.add_argument("--work", type=Path, default=HERE / "build" / "deb")
    parser.add_argument("--python", default=sys.executable, help="a Python with PySide6")
    args = parser.parse_args(argv)
    deb = build(args.bundle, args.out, args.work, args.python)
    print(f"{deb} ({deb.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
