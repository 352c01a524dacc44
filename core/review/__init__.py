"""The end-of-phase review: `phase_insights.md`, `phase_analytics.db`, `phase_metadata.json`."""
