"""The `tierkeeper` executable's first stop.

`tierkeeper hook` runs on every tool call of the agent, so it must start in a
few milliseconds: it is dispatched here before typer, rich or pydantic load.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["hook"]:
        from core.hooks.record import main as record

        return record()
    if args[:1] == ["tree"]:  # backups of whole folders: no need for the service's imports
        from core.cli.tree_cmd import run as tree

        return tree(args[1:])
    from core.cli.app import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
