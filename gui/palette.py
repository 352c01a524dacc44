"""Secondary text that stays readable in light and dark palettes.

The palette's disabled text colour is meant for controls that do nothing and
is too faint for information; a mix of text and background is not.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget


def mix(a: QColor, b: QColor, share_a: float) -> QColor:
    return QColor(
        round(a.red() * share_a + b.red() * (1 - share_a)),
        round(a.green() * share_a + b.green() * (1 - share_a)),
        round(a.blue() * share_a + b.blue() * (1 - share_a)),
    )


def muted(pal: QPalette, *, on_base: bool = False) -> QColor:
    """Text colour for secondary facts, on the window (or on a view's base)."""
    if on_base:
        return mix(pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Base), 0.6)
    return mix(pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window), 0.6)


def set_muted(widget: QWidget) -> None:
    pal = widget.palette()
    pal.setColor(QPalette.ColorRole.WindowText, muted(widget.palette()))
    widget.setPalette(pal)
