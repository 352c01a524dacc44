"""Source formats and the engine that imports them incrementally and losslessly."""

from __future__ import annotations

from core.local.importers.base import Format


def default_formats() -> dict[str, Format]:
    """Formats in detection order: the most specific layouts first."""
    from core.local.importers.claude_code import ClaudeCodeFormat

    formats: list[Format] = []
    try:
        from core.local.importers.roo_cline import ClineFormat, RooFormat

        formats += [RooFormat(), ClineFormat()]
    except ImportError:  # pragma: no cover - while the module is being written
        pass
    try:
        from core.local.importers.tierkeeper_layout import TierkeeperFormat

        formats.append(TierkeeperFormat())
    except ImportError:  # pragma: no cover
        pass
    formats.append(ClaudeCodeFormat())
    return {f.name: f for f in formats}
