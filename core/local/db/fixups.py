"""Data repairs that run once, inside the schema migration that names them.

Some upgrades change what rows must hold rather than the tables' shape; SQL
cannot redact a secret, so those steps are Python, run in the migration's own
transaction: either the schema version moves and the rows are repaired, or
neither happens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.redact import contains_secret, redact_text

if TYPE_CHECKING:
    from core.local.db.database import Transaction

Fixup = Callable[["Transaction"], Awaitable[None]]

_BATCH = 2000


async def redact_tool_call_previews(tx: Transaction) -> None:
    """Versions before 8 stored tool inputs and failed outputs without redaction.

    The phase review quotes them and the phase's analytics slice carries them
    to Tier 2; a key pasted into a tool call must not travel there.
    """
    last = 0
    while True:
        rows = await tx.fetchall(
            "SELECT id, input, output FROM tool_calls WHERE id > ? ORDER BY id LIMIT ?",
            (last, _BATCH),
        )
        if not rows:
            return
        fixed = []
        for row_id, given, output in rows:
            new_in = redact_text(given) if given and contains_secret(given) else given
            new_out = redact_text(output) if output and contains_secret(output) else output
            if (new_in, new_out) != (given, output):
                fixed.append((new_in, new_out, row_id))
        if fixed:
            await tx.executemany("UPDATE tool_calls SET input = ?, output = ? WHERE id = ?", fixed)
        last = rows[-1][0]


FIXUPS: dict[int, Fixup] = {8: redact_tool_call_previews}
"""Schema version → the repair that runs as the database moves to it."""
