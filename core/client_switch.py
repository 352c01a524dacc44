"""A client whose transport can be replaced while the window keeps its reference.

Every page of the window holds the one client it was given. When the daemon behind it
goes away, the window reconnects (to a daemon started again, or to a service of its own)
and swaps the new client in here: the pages carry on with the same object. Calls go to
whichever client is current, so every `Client` method, present and future, passes through.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.client import Client


class SwitchableClient:
    def __init__(self, current: Client) -> None:
        self._current = current

    @property
    def current(self) -> Client:
        return self._current

    def swap(self, new: Client) -> Client:
        """Makes `new` current and returns the old one (the caller closes it)."""
        old, self._current = self._current, new
        return old

    def __getattr__(self, name: str) -> Any:
        # only reached for names not defined here: the Client methods
        return getattr(self._current, name)


def unwrapped(client: Client) -> Client:
    return client.current if isinstance(client, SwitchableClient) else client


def is_daemon(client: Client) -> bool:
    """Whether a daemon does the work. The HTTP client's module is only looked up if it was
    ever loaded: a window on its own service never pays for the HTTP stack."""
    module = sys.modules.get("core.daemon.http_client")
    return module is not None and isinstance(unwrapped(client), module.HttpClient)


def served_by(client: Client) -> str:
    """Who does the work, as the status bar and `tierkeeper status` say it."""
    inner = unwrapped(client)
    if is_daemon(inner):
        pid = getattr(inner, "pid", None)
        return f"daemon (pid {pid})" if pid else "daemon"
    return "in-process service"
