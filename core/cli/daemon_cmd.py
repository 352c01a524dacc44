"""`tierkeeper daemon`: serve one workspace to the window, the CLI and scripts.

Runs in the foreground (systemd or a desktop autostart keeps it alive) until SIGTERM
or Ctrl-C. A second daemon on the same workspace exits 3: someone must stop the
first one, and a service manager should not keep restarting this one.
"""

from __future__ import annotations

import logging
import os

from core.cli.common import WorkspaceOpt
from core.cli.output import err
from core.cli.runner import debug_enabled, run_async
from core.errors import ExitCode, WorkspaceLockedError


def daemon(workspace: WorkspaceOpt = None) -> None:
    """Serve the workspace over a private local socket until stopped (SIGTERM, Ctrl-C)."""
    from core.daemon.server import Daemon, serve

    def ready(d: Daemon) -> None:
        err.print(f"Tierkeeper daemon (pid {os.getpid()}) serving {d.service.workspace.root} "
                  f"on {d.socket}", highlight=False)  # fmt: skip

    async def go() -> None:
        logging.basicConfig(
            level=logging.DEBUG if debug_enabled() else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        try:
            await serve(workspace, on_ready=ready)
        except WorkspaceLockedError as exc:
            exc.exit_code = ExitCode.NEEDS_USER
            raise
        err.print("Tierkeeper daemon stopped", highlight=False)

    run_async(go)
