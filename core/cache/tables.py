"""Which tables a committed statement wrote: what the query cache must forget.

A coarse reading of the SQL the service itself sends, not a parser: the
statement's verb and first table name. Anything it does not recognise as a
plain read or a plain write (DDL, a migration, PRAGMA user_version) counts
as writing every table, so a surprise costs hits, never correctness. Rows
that triggers write elsewhere (the FTS index) belong to the table that fired
them, and queries name that table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EVERYTHING = "*"

_WRITE = re.compile(
    r"""^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)
        \s+["`\[]?(\w+)""",
    re.IGNORECASE | re.VERBOSE,
)
_READ = re.compile(r"^\s*(?:SELECT|EXPLAIN|PRAGMA\s+\w+\s*(?:\(\s*\w*\s*\))?\s*;?\s*$)", re.I)


def written_tables(statements: Iterable[str]) -> set[str]:
    tables: set[str] = set()
    for sql in statements:
        found = _WRITE.match(sql)
        if found is not None:
            tables.add(found.group(1).lower())
        elif not _READ.match(sql):
            return {EVERYTHING}
    return tables
