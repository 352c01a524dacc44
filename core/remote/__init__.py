"""Tier 2 and Tier 3 stores behind one small protocol (see base.py)."""
