"""Light or dark on request, when the desktop does not say.

Qt follows the desktop's colour scheme where the platform reports one (GNOME and
KDE do, through their portals and themes). Elsewhere — a bare X session, a window
manager without settings, a screenshot under Xvfb — Qt stays light, so
`--color-scheme dark` gives the window Fusion's colours for a dark scheme. Every
custom colour in the window reads the palette, never a fixed light value, so the
same widgets work either way.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

SCHEMES = ("system", "light", "dark")

_DARK = {
    QPalette.ColorRole.Window: "#2b2d30",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1f22",
    QPalette.ColorRole.AlternateBase: "#26282b",
    QPalette.ColorRole.ToolTipBase: "#2b2d30",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#8c8f94",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#34363a",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#4a4d52",
    QPalette.ColorRole.Midlight: "#3c3f43",
    QPalette.ColorRole.Mid: "#2f3134",
    QPalette.ColorRole.Dark: "#1a1b1d",
    QPalette.ColorRole.Shadow: "#0d0d0e",
    QPalette.ColorRole.Highlight: "#3d7bd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7fb3ff",
    QPalette.ColorRole.LinkVisited: "#c29cff",
}
_DISABLED = (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText)


def apply_scheme(app: QApplication, scheme: str) -> None:
    """`system` leaves Qt's own choice; `light` or `dark` sets Fusion's colours for it."""
    if scheme == "system":
        return
    if scheme == "light":
        app.setPalette(app.style().standardPalette())
        return
    if scheme != "dark":
        raise ValueError(f"unknown colour scheme {scheme!r}")
    pal = QPalette()
    for role, colour in _DARK.items():
        pal.setColor(role, QColor(colour))
    for role in _DISABLED:
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7d82"))
    app.setPalette(pal)
