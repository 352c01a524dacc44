"""Where the app's bundled files are, whether run from a checkout or installed.

The `resources/` folder sits beside the `gui` package; resolving from this file
keeps it working from any current directory.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def icon_path(name: str) -> Path:
    return RESOURCES / "icons" / f"{name}.svg"


def app_icon() -> QIcon:
    path = icon_path("tierkeeper")
    return QIcon(str(path)) if path.is_file() else QIcon()


def themed_icon(name: str, color: QColor, selected: QColor | None = None) -> QIcon:
    """A line icon drawn in `color` (its SVG uses currentColor), so it follows the palette."""
    path = icon_path(name)
    icon = QIcon()
    if not path.is_file():
        return icon
    source = path.read_text(encoding="utf-8")
    for mode, c in ((QIcon.Mode.Normal, color), (QIcon.Mode.Selected, selected or color)):
        renderer = QSvgRenderer(QByteArray(source.replace("currentColor", c.name()).encode()))
        for size in (16, 32):
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter, QRectF(0, 0, size, size))
            painter.end()
            icon.addPixmap(pixmap, mode)
    return icon
