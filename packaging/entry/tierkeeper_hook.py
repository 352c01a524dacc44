"""The bundle's `tierkeeper-hook`: Claude Code's hook, a program of its own.

Claude Code runs the hook on every tool call and waits for it. The `tierkeeper`
program carries the whole application (typer, boto3, matplotlib…) and the
PyInstaller run-time hooks they need (`inspect`, `multiprocessing`, `pkgutil`,
matplotlib's config folder), which roughly double its start; this one is built
from an analysis of the recorder alone and starts with none of them.
`tierkeeper hook` still works, only slower.
"""

from __future__ import annotations

import sys

from core.hooks.record import main

if __name__ == "__main__":
    sys.exit(main())
