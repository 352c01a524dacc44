"""Renders the app icon from resources/icons/tierkeeper.svg into PNGs.

    python packaging/desktop/render_icons.py OUT_DIR          # OUT_DIR/<N>x<N>/apps/tierkeeper.png
    python packaging/desktop/render_icons.py --single 256 tierkeeper.ico   # one file, any
                                                                       # format Qt writes

Desktops pick a bitmap of the size they draw (16 in menus, 48 in docks, 256+ in
software centres) and scale the SVG badly or not at all at small sizes, so the
hicolor theme wants each size rendered. The SVG is the one source: the PNGs are
built, never committed. `--single` makes the Windows .ico and macOS .icns the
PyInstaller spec uses there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "resources" / "icons" / "tierkeeper.svg"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
NAME = "tierkeeper"


def render(size: int, path: Path) -> None:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SOURCE}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise SystemExit(f"Qt cannot write {path} (no image plugin for {path.suffix}?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="hicolor folder, or the file with --single")
    parser.add_argument("--single", type=int, metavar="SIZE", help="write one image of SIZE px")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    if args.single:
        render(args.single, args.out)
    else:
        for size in SIZES:
            render(size, args.out / f"{size}x{size}" / "apps" / f"{NAME}.png")
        scalable = args.out / "scalable" / "apps" / f"{NAME}.svg"
        scalable.parent.mkdir(parents=True, exist_ok=True)
        scalable.write_bytes(SOURCE.read_bytes())
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
