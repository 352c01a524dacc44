"""Tier 2: backups of sessions to Google Drive or any folder."""
