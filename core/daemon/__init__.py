"""The daemon: one process owns the workspace and serves it over a private socket.

The window, the CLI and scripts then share one service (one job queue, one event
stream) instead of fighting over the workspace lock. The API under `/v1/` mirrors
`core.client.Client` method for method, so a caller cannot tell the transports apart.
"""

from __future__ import annotations
