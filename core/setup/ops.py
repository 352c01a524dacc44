"""Set-up and settings of one workspace: what the wizard, the Settings page and the CLI share.

Every change to config.toml goes through `_commit`: one at a time (a lock), checked
against the config of that moment (a target name taken meanwhile is refused), written
atomically, then swapped into the service and announced as `config.changed` with the
keys that changed, so the scheduler and any window re-read what they show. Events and
answers carry names and settings, never a secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from core.config import Config, EncryptionConfig, TargetConfig
from core.errors import BadInputError
from core.remote.base import RemoteError
from core.secrets import Secrets
from core.setup.drive_sign_in import DriveSignIns
from core.setup.models import (
    ConfigPatch,
    CostParams,
    CostPreview,
    DetectedSource,
    DriveSignedIn,
    DriveTargetSpec,
    FolderTargetSpec,
    RecoveryKit,
    S3TargetSpec,
    Settings,
    SignInStarted,
    TargetAdded,
    TargetTestResult,
)
from core.setup.settings import detect, patched, save_config, settings_of
from core.setup.target_checks import (
    bucket_check,
    check_new_folder,
    check_new_s3,
    result,
    s3_keys,
    target_of,
    timed_probe,
)
from core.tier2.encryption import encrypt_target, kit, unlock
from core.tier2.encryption_claim import adopting, claims_of
from core.tier2.targets import RetryPolicy, open_store

if TYPE_CHECKING:
    from core.service import Service

log = logging.getLogger(__name__)

AnySpec = FolderTargetSpec | S3TargetSpec | DriveTargetSpec
CHANGED = "config.changed"


class SetupOps:
    def __init__(self, service: Service) -> None:
        self._svc = service
        self._lock = asyncio.Lock()
        self.sign_ins = DriveSignIns(self._drive_consent, self._drive_complete, self._drive_undo)

    async def close(self) -> None:
        await self.sign_ins.close()

    # settings -------------------------------------------------------------------------------
    async def settings(self) -> Settings:
        return settings_of(self._svc.config, self._svc.workspace.root)

    async def update_config(self, patch: ConfigPatch) -> Settings:
        self._svc._writable()
        async with self._lock:
            new, changed = await asyncio.to_thread(patched, self._svc.config, patch)
            if changed:
                await self._save(new, changed)
        return await self.settings()

    async def detect_sources(self) -> list[DetectedSource]:
        return await asyncio.to_thread(detect, self._svc.config)

    async def cost_preview(self, params: CostParams) -> list[CostPreview]:
        from core.setup.costs import previews

        return await asyncio.to_thread(previews, self._svc.config.storage_prices_file, params)

    # targets --------------------------------------------------------------------------------
    async def add_target(self, spec: AnySpec) -> TargetAdded:
        self._svc._writable()
        if isinstance(spec, DriveTargetSpec):
            raise BadInputError("A Drive target is added by signing in to Google",
                                hint="start_drive_sign_in, then finish_drive_sign_in")  # fmt: skip
        target = target_of(spec)
        self._check_free(target.name)
        if isinstance(spec, FolderTargetSpec):
            checked = await check_new_folder(target)
            target = await self._add(target, spec.passphrase, claimed=checked.encryption)
            return TargetAdded(target=target)
        keys = s3_keys(spec)
        found = await check_new_s3(target, keys, self._svc.scope)
        keep = None
        if keys is not None:
            from core.tier2.s3_target import keep_keys

            scope = self._svc.scope

            def keep(t: TargetConfig) -> None:
                keep_keys(t, scope, *keys)

        target = await self._add(target, spec.passphrase, keep, claimed=found.encryption)
        return TargetAdded(target=target, report=found.report, bucket=found.bucket)

    async def remove_target(self, name: str) -> None:
        """Forgets the target and its sign-in or keys; the backups on it are left alone."""
        self._svc._writable()
        async with self._lock:
            target = self._svc.config.target(name)
            await asyncio.to_thread(self._forget, target)
            rest = [t for t in self._svc.config.targets if t.name != name]
            await self._save(self._svc.config.model_copy(update={"targets": rest}), ["targets"],
                             target=name)  # fmt: skip

    async def test_target(self, target: str | AnySpec | None = None) -> TargetTestResult:
        """A real round trip (put, get, delete) plus what the kind can tell about itself."""
        if target is None or isinstance(target, str):
            return await self._test_saved(self._svc.config.target(target))
        if isinstance(target, DriveTargetSpec):
            raise BadInputError(
                "A Drive target is tested by signing in",
                hint="the sign-in reports the account and its free space",
            )
        config = target_of(target)
        if isinstance(target, FolderTargetSpec):
            return await check_new_folder(config)
        return await check_new_s3(config, s3_keys(target), self._svc.scope)

    async def unlock(self, name: str, passphrase_or_code: str) -> None:
        """Keeps the target's key; when the target's index names another key than the
        config (another computer encrypted it since), that key is the one to give, and
        the config takes it. A target that does not answer is unlocked by its config."""
        target = self._svc.config.target(name)
        store = open_store(target, self._svc.scope, RetryPolicy(attempts=1))
        try:
            claimed = await claims_of(store)
        except RemoteError as exc:
            log.info("unlocking %s by its config: the target did not answer (%s)", name, exc)
            claimed = None
        finally:
            await store.close()
        adopted = adopting(target, claimed)
        await asyncio.to_thread(unlock, adopted, self._svc.scope, passphrase_or_code)
        if adopted is not target:
            async with self._lock:
                config = self._svc.config
                rest = [adopted if t.name == name else t for t in config.targets]
                await self._save(config.model_copy(update={"targets": rest}), ["targets"],
                                 target=name)  # fmt: skip

    async def recovery_kit(self, name: str) -> RecoveryKit:
        text = await asyncio.to_thread(kit, self._svc.config.target(name), self._svc.scope)
        return RecoveryKit(target=name, text=text)

    # Drive sign-in --------------------------------------------------------------------------
    async def start_drive_sign_in(self, spec: DriveTargetSpec) -> SignInStarted:
        self._svc._writable()
        target = target_of(spec)
        self._check_free(target.name)
        return await self.sign_ins.start(target, spec)

    async def finish_drive_sign_in(self, flow_id: str) -> DriveSignedIn:
        return await self.sign_ins.finish(flow_id)

    async def cancel_drive_sign_in(self, flow_id: str) -> bool:
        return await self.sign_ins.cancel(flow_id)

    async def add_drive(
        self, spec: DriveTargetSpec, on_url: Callable[[str], None]
    ) -> DriveSignedIn:
        """Start and finish in one call, for a caller that can show the address and wait."""
        started = await self.start_drive_sign_in(spec)
        on_url(started.url)
        try:
            return await self.finish_drive_sign_in(started.flow_id)
        except asyncio.CancelledError:
            await self.cancel_drive_sign_in(started.flow_id)
            raise

    async def _drive_consent(self, target: TargetConfig, spec: DriveTargetSpec,
                             on_url: Callable[[str], None]) -> None:  # fmt: skip
        from core.tier2.drive_target import sign_in_target

        secret = spec.client_secret.get_secret_value() if spec.client_secret else None
        await sign_in_target(target, self._svc.scope, client_secret=secret, on_url=on_url,
                             open_browser=spec.open_browser,
                             timeout=spec.sign_in_timeout)  # fmt: skip

    async def _drive_complete(self, target: TargetConfig, spec: DriveTargetSpec) -> DriveSignedIn:
        from core.tier2.drive_target import open_drive

        drive = await asyncio.to_thread(open_drive, target, self._svc.scope)
        try:
            account = await drive.account()
            used, limit = await drive.quota()
            await timed_probe(drive)
            claimed = await claims_of(drive)
        finally:
            await drive.close()
        target = await self._add(target.model_copy(update={"account": account}), spec.passphrase,
                                 claimed=claimed)  # fmt: skip
        return DriveSignedIn(target=target, account=account, quota_used=used, quota_limit=limit)

    async def _drive_undo(self, target: TargetConfig) -> None:
        if any(t.name == target.name for t in self._svc.config.targets):
            return  # saved after all: its tokens are in use
        await asyncio.to_thread(self._forget, target)

    # plumbing -------------------------------------------------------------------------------
    async def _test_saved(self, target: TargetConfig) -> TargetTestResult:
        svc = self._svc
        store = open_store(target, svc.scope, svc.retry, svc.metrics)
        try:
            ms, line = await timed_probe(store)
        finally:
            await store.close()
        if target.kind == "s3":
            from core.tier2.s3_target import describe, open_s3

            s3 = await asyncio.to_thread(open_s3, target, svc.scope)
            try:
                report = await s3.head_bucket(probe_write=False)
            finally:
                await s3.close()
            return result(target, ms, [*describe(report), line], bucket=bucket_check(report))
        if target.kind == "drive":
            from core.tier2.drive_target import open_drive

            drive = await asyncio.to_thread(open_drive, target, svc.scope)
            try:
                account = await drive.account()
                used, limit = await drive.quota()
            finally:
                await drive.close()
            return result(target, ms, [f"account: {account}", line], account=account,
                          quota_used=used, quota_limit=limit)  # fmt: skip
        return result(target, ms, [line])

    def _check_free(self, name: str) -> None:
        if any(t.name == name for t in self._svc.config.targets) or self.sign_ins.busy(name):
            raise BadInputError(f"A target named {name!r} exists already")

    async def _add(self, target: TargetConfig, passphrase: SecretStr | None,
                   keep: Callable[[TargetConfig], None] | None = None, *,
                   claimed: EncryptionConfig | None = None) -> TargetConfig:  # fmt: skip
        """Saves a checked target; its secrets go to the keyring under the lock, once the
        name is known to be free, so a concurrent add cannot overwrite another's keys.

        `claimed`: the key the target's own index names (it holds encrypted backups). The
        target keeps that key, never a new one; a passphrase given must open it (else
        nothing is saved), and without one the key waits for `target unlock`."""
        async with self._lock:
            self._check_taken(target.name)
            if claimed is not None:
                target = adopting(target, claimed)
                if passphrase is not None:
                    await asyncio.to_thread(unlock, target, self._svc.scope,
                                            passphrase.get_secret_value())  # fmt: skip
            if keep is not None:
                await asyncio.to_thread(keep, target)
            if passphrase is not None and claimed is None:
                target = await asyncio.to_thread(encrypt_target, target, self._svc.scope,
                                                 passphrase.get_secret_value())  # fmt: skip
            config = self._svc.config
            new = config.model_copy(update={"targets": [*config.targets, target]})
            await self._save(new, ["targets"], target=target.name)
        return target

    def _check_taken(self, name: str) -> None:
        if any(t.name == name for t in self._svc.config.targets):
            raise BadInputError(f"A target named {name!r} exists already")

    async def _save(self, new: Config, keys: list[str], **about: str) -> None:
        """Caller holds the lock. Disk first: the service never runs on unsaved settings."""
        path: Path = self._svc.workspace.config_path
        await asyncio.to_thread(save_config, new, path)
        self._svc.config = new
        self._svc.bus.publish(CHANGED, {"keys": keys, **about})

    def _forget(self, target: TargetConfig) -> None:
        """Blocking: every secret kept for the target, except its encryption key (the
        backups it leaves behind are readable again if the target is added back)."""
        scope = self._svc.scope
        if target.kind == "drive":
            from core.tier2.drive_target import forget

            forget(target, scope, Secrets())
        elif target.kind == "s3":
            from core.tier2.s3_target import forget_keys

            forget_keys(target, scope, Secrets())
