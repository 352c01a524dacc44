"""Where a phase's review lives and what its files are called.

Apart from the review itself so that readers of a written review (the service's
`review` call, the phase-close upload) need not load what writes one (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

from core.local.lifecycle import validate_phase_name
from core.workspace import Workspace

INSIGHTS = "phase_insights.md"
HTML = "phase_insights.html"
ANALYTICS = "phase_analytics.db"
METADATA = "phase_metadata.json"
CHARTS = "charts"


def phase_folder(ws: Workspace, phase: str) -> Path:
    """Where a phase's review lives in the workspace: `phases/<phase>/`, laid out like the
    phase's folder on the backup target so the files upload as they are."""
    return ws.root / "phases" / validate_phase_name(phase)
