"""The bundle's `tierkeeper`: the command line; `-m gui` hands over to `tierkeeper-gui`.

`tierkeeper gui` starts the window in a process of its own as `sys.executable -m
gui`, so the core never loads Qt. Frozen, `sys.executable` is this program and
there is no interpreter to take `-m`; the window is the sibling program, which
alone carries Qt's start-up hooks (this one should start fast: every command
line starts here, and so does `tierkeeper hook` where an older install wrote
that rather than `tierkeeper-hook` into Claude Code's settings).
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["-m", "gui"]:
        from pathlib import Path

        suffix = ".exe" if os.name == "nt" else ""
        window = str(Path(sys.executable).with_name(f"tierkeeper-gui{suffix}"))
        if os.name == "posix":
            os.execv(window, [window, *args[2:]])
        import subprocess  # not at the top: `tierkeeper hook` must not pay for it

        return subprocess.call([window, *args[2:]])
    from core.cli.entry import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
