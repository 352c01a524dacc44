"""Tier 1: the workspace's files and its analytics DB."""
