"""What a target's own index says about its encryption, held against this workspace's config.

A target can be shared: a second computer adds the same NAS folder or Drive, or
this computer does after a reinstall. The index (core/recovery/index.py) is
where a target says whether it is encrypted, and with which key. A workspace
that wrote there without that key would put plain sessions beside encrypted
ones and then rewrite the index as plain: the user's choice to encrypt that
place undone without a word. So adding a target adopts the key the index
names (checking a passphrase against it, if one is given), and a job checks it
again before it writes, because another computer may have changed it since.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from core.config import EncryptionConfig, TargetConfig
from core.errors import TierkeeperError
from core.recovery import index
from core.recovery.publish import TIER2_INDEX, TIER3_INDEX
from core.remote.base import ObjectNotFound, Store
from core.tier2.encryption import KeyMissingError
from core.tier2.manifest_landing import uncached

log = logging.getLogger(__name__)


def config_of(body: dict[str, Any]) -> EncryptionConfig | None:
    """The encryption an index body names: its key's id, the passphrase's salt and cost."""
    enc = body.get("encryption")
    if not enc:
        return None
    return EncryptionConfig.model_validate({**enc["kdf"], "key_id": enc["key_id"]})


async def claimed_by(store: Store, index_key: str) -> EncryptionConfig | None:
    """The encryption the target's index at `index_key` names; None when it names none,
    when there is no index yet, or when it cannot be read (a damaged index claims
    nothing; the backup that follows writes a good one)."""
    buf = io.BytesIO()
    try:
        await uncached(store).get(index_key, buf)  # another computer may have written it
    except ObjectNotFound:
        return None
    try:
        return config_of(index.read_body(buf.getvalue()))
    except (TierkeeperError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: the index at %s is unreadable (%s)", store.name, index_key, exc)
        return None


def refuse_other_key(target: TargetConfig, claimed: EncryptionConfig | None) -> None:
    """Raises KeyMissingError (a job parks on it, needing the user) when the target holds
    backups encrypted with a key this workspace does not use for it."""
    if claimed is None:
        return
    mine = target.encryption
    if mine is not None and mine.key_id == claimed.key_id:
        return
    what = (
        "this workspace has no key for it, so it would store sessions there unencrypted"
        if mine is None
        else f"not with this workspace's key {mine.key_id}"
    )
    raise KeyMissingError(
        f"{target.name} holds backups encrypted with key {claimed.key_id} (made on another "
        f"computer or workspace); {what}",
        hint=f"run `tierkeeper target unlock {target.name}` and give that key's passphrase "
        "or recovery code",
    )


async def claims_of(store: Store) -> EncryptionConfig | None:
    """What the target's Tier 2 index names, else its Tier 3 index (a target added anew
    may hold either, from another computer)."""
    for key in (TIER2_INDEX, TIER3_INDEX):
        found = await claimed_by(store, key)
        if found is not None:
            return found
    return None


def adopting(target: TargetConfig, claimed: EncryptionConfig | None) -> TargetConfig:
    """The target as this workspace must keep it: with the key the target names, when it
    names one other than the config's."""
    if claimed is None or (target.encryption is not None
                           and target.encryption.key_id == claimed.key_id):  # fmt: skip
        return target
    return target.model_copy(update={"encryption": claimed})
