"""Tierkeeper's headless core. Kept import-light: the Claude Code hook starts here."""

from __future__ import annotations

__version__ = "0.1.0"
