"""Setting a workspace up: its settings, its targets, the Drive sign-in, Tier 3 prices.

The logic behind the set-up wizard, the Settings page and `tierkeeper target …`,
reached through `Service.setup` (and so through both client transports).
"""
