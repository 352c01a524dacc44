"""A Google Drive target: its secrets in the keyring, its store, its sign-in.

config.toml keeps only what is not secret (the client id, the folder, the
account address). The refresh token and the OAuth client's secret go to the
OS keyring under names scoped to the workspace, so two workspaces with a
target of the same name never share a sign-in. A target whose token is
missing or revoked raises `NeedsReconnect`: jobs park and the user is asked
to run `tierkeeper target reconnect`.
"""

from __future__ import annotations

from collections.abc import Callable

from core.config import TargetConfig
from core.remote.base import NeedsReconnect
from core.remote.drive import DriveStore
from core.remote.oauth_loopback import DRIVE_FILE_SCOPE, OAuthClient, drive_credentials, sign_in
from core.secrets import Secrets

REFRESH = "refresh-token"
CLIENT_SECRET = "client-secret"


def _account(scope: str, target: str, what: str) -> str:
    return f"{scope}/{target}/{what}"


def oauth_client(target: TargetConfig, client_secret: str | None) -> OAuthClient:
    assert target.client_id is not None  # the config refuses a drive target without one
    return OAuthClient(
        client_id=target.client_id,
        client_secret=client_secret,
        auth_uri=target.auth_uri,
        token_uri=target.token_uri,
        scopes=(DRIVE_FILE_SCOPE,),
    )


def open_drive(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> DriveStore:
    keys = secrets or Secrets()
    refresh = keys.get(_account(scope, target.name, REFRESH))
    if refresh is None:
        raise NeedsReconnect(
            f"{target.name} is not signed in to Google Drive",
            hint=f"run `tierkeeper target reconnect {target.name}`",
        )
    client = oauth_client(target, keys.get(_account(scope, target.name, CLIENT_SECRET)))
    return DriveStore(
        drive_credentials(client, refresh),
        name=target.name,
        root_folder=target.folder,
        api_root=target.api_root,
    )


async def sign_in_target(
    target: TargetConfig,
    scope: str,
    *,
    client_secret: str | None,
    on_url: Callable[[str], None],
    open_browser: bool = True,
    timeout: float = 300.0,  # noqa: ASYNC109 - the user's time in the browser
    secrets: Secrets | None = None,
) -> None:
    """Runs the browser consent and keeps the tokens; the old ones stay until it succeeds."""
    keys = secrets or Secrets()
    if client_secret is None:
        client_secret = keys.get(_account(scope, target.name, CLIENT_SECRET))
    tokens = await sign_in(
        oauth_client(target, client_secret),
        on_url=on_url,
        open_browser=open_browser,
        timeout=timeout,
    )
    keep_tokens(target, scope, tokens.refresh_token, client_secret, keys)


def keep_tokens(
    target: TargetConfig,
    scope: str,
    refresh_token: str,
    client_secret: str | None,
    secrets: Secrets | None = None,
) -> None:
    """Stores a sign-in in the keyring (and only there)."""
    keys = secrets or Secrets()
    keys.set(_account(scope, target.name, REFRESH), refresh_token)
    if client_secret is not None:
        keys.set(_account(scope, target.name, CLIENT_SECRET), client_secret)


def forget(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> None:
    """Removes the target's secrets from the keyring (when the target is removed)."""
    keys = secrets or Secrets()
    for what in (REFRESH, CLIENT_SECRET):
        keys.delete(_account(scope, target.name, what))
