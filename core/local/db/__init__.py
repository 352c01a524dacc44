"""The analytics DB: schema, migrations, async access, batched writes."""

from core.local.db.database import Database

__all__ = ["Database"]
