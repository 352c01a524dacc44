"""The bundle's `tierkeeper`: the command line; `-m gui` hands over to `tierkeeper-gui`.

`tierkeeper gui` starts the window in a process of its own as `sys.executable -m
gui`, so the core never loads Qt. Frozen, `sys.executable` is this program and
there is no interpreter to take `-m`; the window is the sibling program, which
alone carries Qt's start-up hooks (this one must start fast: it is the agent's
hook on every tool call).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["-m", "gui"]:
        suffix = ".exe" if os.name == "nt" else ""
        window = str(Path(sys.executable).with_name(f"tierkeeper-gui{suffix}"))
        if os.name == "posix":
            os.execv(window, [window, *args[2:]])
        return subprocess.call([window, *args[2:]])
    from core.cli.entry import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
