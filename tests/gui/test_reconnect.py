"""The window when its daemon goes away: it says so, keeps working, and comes back.

A real daemon runs on its own loop in a thread (as `tierkeeper daemon` would in its own
process) and the window talks to it over its Unix socket. Stopping the daemon ends the
window's event stream; the window shows the lost-service banner, looks for the daemon
again, and when one serves the workspace again (or the user runs the service in the
window) it resubscribes: an import started afterwards shows up in the session list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.client import HttpClient, InProcessClient, connect_daemon
from core.client_switch import unwrapped
from gui.service_banner import LOST
from tests.daemon_harness import ThreadedDaemon
from tests.gui.conftest import FIXTURES

pytestmark = pytest.mark.gui

SOURCE = FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


@pytest.fixture
def threaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedDaemon]:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    daemon = ThreadedDaemon()
    try:
        yield daemon
    finally:
        daemon.close()


def stop(threaded: ThreadedDaemon) -> None:
    assert threaded.daemon is not None
    threaded.run(threaded.daemon.stop())
    threaded.daemon = None


def served_window(make_window, run, threaded: ThreadedDaemon, ws: Path):  # type: ignore[no-untyped-def]
    threaded.start(ws)
    client = run(connect_daemon(ws))
    assert isinstance(client, HttpClient)
    h = make_window(ws, client=client)
    assert h.window.service_label.text() == f"daemon (pid {os.getpid()}) · 0 jobs running"
    return h


def test_a_restarted_daemon_is_found_again_and_the_window_resubscribes(
    make_window, run, threaded: ThreadedDaemon, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    h = served_window(make_window, run, threaded, ws)
    w = h.window
    stop(threaded)
    h.wait(lambda: w.service_banner.message() == LOST)
    assert w.service_label.text() == "no service — reconnecting…"
    assert w.isEnabled() and w.banner.message() == ""  # no traceback, nothing frozen

    threaded.start(ws)
    h.wait(lambda: w.service_banner.message() == "")
    assert w.service_label.text().startswith(f"daemon (pid {os.getpid()})")
    assert isinstance(unwrapped(w.client), HttpClient)
    job = h.call(w.client.start_import([str(SOURCE)]))
    h.wait(lambda: w.sessions.row_count() == 1)  # the new event stream brought the change
    assert h.call(w.client.wait_job(job.id)).state.value == "done"


def test_run_in_this_window_serves_the_workspace_in_process(
    make_window, run, threaded: ThreadedDaemon, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    h = served_window(make_window, run, threaded, ws)
    w = h.window
    stop(threaded)
    h.wait(lambda: w.service_banner.message() == LOST)
    w.service_banner.run_button.click()
    h.wait(lambda: w.service_banner.message() == "")
    assert w.service_label.text() == "in-process service · 0 jobs running"
    assert isinstance(unwrapped(w.client), InProcessClient)
    h.call(w.client.start_import([str(SOURCE)]))
    h.wait(lambda: w.sessions.row_count() == 1)
    assert "1 session" in w.facts_label.text() or h.call(w.refresh_status()) is None
