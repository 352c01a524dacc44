"""Disaster recovery: what the remotes hold so the catalog can be rebuilt without the DB.

The local DB must never be the only record of what the tiers hold. Each
backup leaves a small per-session catalog beside its manifest, each archive a
per-phase catalog beside its manifest, and each target an index; a fresh
machine rebuilds its DB from those alone (see docs/FORMAT.md).
"""
