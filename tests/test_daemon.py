"""The daemon as its users meet it: a private socket, clear refusals, clean stops.

Real parts throughout: the daemon serves a real workspace on a real Unix socket, bad
requests are sent as raw HTTP, and the foreground command runs as a subprocess that
gets a real SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from core.client import Client, HttpClient, InProcessClient, connect_daemon, open_client
from core.daemon.app import MAX_BODY, api
from core.daemon.errors import DaemonUnavailableError, ErrorBody
from core.daemon.server import Daemon
from core.daemon.socket_path import info_path, read_info, socket_path
from core.errors import TierkeeperError
from core.models import Event, JobState
from core.service import Service
from core.tier2.targets import RetryPolicy
from tests.daemon_harness import spawn_daemon
from tests.support import CLAUDE_FIXTURES, REPO

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


@pytest.fixture
async def daemon(tmp_path: Path, xdg: Path) -> AsyncIterator[Daemon]:
    d = await Daemon.start(tmp_path / "ws")
    try:
        yield d
    finally:
        await d.stop()


async def raw(
    sock: Path, method: str, path: str, *, data: bytes | None = None
) -> tuple[int, str, bytes]:
    connector = aiohttp.UnixConnector(path=str(sock))
    body = None if data is None else io.BytesIO(data)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(method, "http://tierkeeper" + path, data=body) as resp,
    ):
        return resp.status, resp.content_type, await resp.read()


async def test_the_socket_is_private_and_named_per_workspace(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    async with await Daemon.start(ws) as d:
        assert d.socket == socket_path(ws) and d.socket.parent == xdg / "tierkeeper"
        assert stat.S_ISSOCK(d.socket.stat().st_mode)
        assert stat.S_IMODE(d.socket.stat().st_mode) == 0o600
        assert stat.S_IMODE(d.socket.parent.stat().st_mode) == 0o700
        info = read_info(d.socket)
        assert info is not None and info.pid == os.getpid() and info.api == "v1"
        assert info.workspace == str(ws)
        assert stat.S_IMODE(info_path(d.socket).stat().st_mode) == 0o600
        other = tmp_path / "other"
        assert socket_path(other) != d.socket  # one daemon per workspace
    assert not d.socket.exists() and not info_path(d.socket).exists()

    monkeypatch.delenv("XDG_RUNTIME_DIR")  # no runtime dir: a folder inside the workspace
    async with await Daemon.start(ws) as d:
        assert d.socket.parent == ws / "run"
        assert stat.S_IMODE(d.socket.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(d.socket.stat().st_mode) == 0o600


async def test_a_second_daemon_on_the_workspace_refuses_clearly(daemon: Daemon, xdg: Path) -> None:
    ws = daemon.service.workspace.root
    with pytest.raises(TierkeeperError, match=f"in use by process {os.getpid()}"):
        await Daemon.start(ws, socket=xdg / "second.sock")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.cli.entry", "daemon", "--workspace", str(ws), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    text = stderr.decode()
    assert proc.returncode == 3, text
    assert f"The workspace {ws} is in use by process {os.getpid()}" in text
    assert "stop its daemon" in text and "Traceback" not in text
    client = await connect_daemon(ws)  # the first one is untouched
    assert isinstance(client, HttpClient) and client.pid == os.getpid()
    await client.close()


BIG = b'{"text": "' + b"x" * MAX_BODY + b'"}'


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/search", b"{not json", 400, "the body is not JSON"),
        ("POST", "/v1/search", b"[1, 2]", 400, "must be a JSON object"),
        ("POST", "/v1/search", b'{"text": 5}', 400, "text: Input should be a valid string"),
        ("POST", "/v1/search", b'{"text": "a", "limit": 0}', 400, "limit: Input should be"),
        ("POST", "/v1/search", b'{"text": "a", "colour": 1}', 400, "colour: Extra inputs"),
        ("POST", "/v1/imports", b"{}", 400, "paths: Field required"),
        ("GET", "/v1/jobs?active_only=perhaps", None, 400, "active_only must be true or false"),
        ("GET", "/v1/jobs?active_only=1&active_only=0", None, 400, "more than once"),
        ("GET", "/v1/jobs/seven/wait", None, 400, "job_id must be a whole number, not 'seven'"),
        ("GET", "/v1/sessions/nope", None, 404, "No session 'nope'"),
        ("POST", "/v1/search", BIG, 413, "Maximum request body size"),
        ("GET", "/v1/no-such-route", None, 404, "Not Found: GET /v1/no-such-route"),
        ("GET", "/v2/status", None, 404, "Not Found"),
        ("DELETE", "/v1/status", None, 405, "Method Not Allowed: DELETE /v1/status"),
    ],
)
async def test_bad_requests_get_a_json_error_and_never_a_traceback(
    daemon: Daemon, method: str, path: str, body: bytes | None, status: int, message: str
) -> None:
    got, content_type, raw_body = await raw(daemon.socket, method, path, data=body)
    assert got == status, raw_body
    assert content_type == "application/json"
    error = ErrorBody.model_validate_json(raw_body).error
    assert message in error.message
    assert error.exit_code == 2
    assert b"Traceback" not in raw_body and b'File "' not in raw_body
    # the daemon is still fine afterwards
    assert (await raw(daemon.socket, "GET", "/v1/status"))[0] == 200


async def test_an_unexpected_failure_is_a_bare_500_with_the_traceback_in_the_log(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    daemon.service.workspace.current_phase_path.mkdir()  # a folder where a file belongs
    with caplog.at_level(logging.ERROR, logger="core.daemon.errors"):
        status, _, body = await raw(daemon.socket, "GET", "/v1/status")
    assert status == 500
    error = ErrorBody.model_validate_json(body).error
    assert error.message == "The daemon hit an internal error" and error.exit_code == 1
    assert b"IsADirectory" not in body and b"Traceback" not in body
    assert "IsADirectoryError" in caplog.text and "GET /v1/status failed" in caplog.text
    client = await connect_daemon(socket=daemon.socket)
    assert client is None  # a daemon whose status fails is not one to talk to
    http = HttpClient(daemon.socket)
    try:
        with pytest.raises(TierkeeperError, match="internal error"):
            await http.status()
    finally:
        await http.close()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_the_openapi_document_lists_every_route_and_its_schemas(daemon: Daemon) -> None:
    status, content_type, body = await raw(daemon.socket, "GET", "/v1/openapi.json")
    assert status == 200 and content_type == "application/json"
    doc = orjson.loads(body)
    validate(doc)  # a valid OpenAPI 3.1 document
    assert doc["openapi"] == "3.1.0"
    documented = {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert set(documented) == {(r.method, r.url) for r in api.routes}
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref
    for route in api.routes:
        op = documented[(route.method, route.url)]
        content = op["responses"][str(route.status)]["content"]
        if route.response is not None:
            (media,) = content.values()
            schema = media.get("x-event-schema") or media["schema"]
            schema = schema.get("items", schema)
            assert schema["$ref"].split("/")[-1].startswith(route.response.__name__)
        if route.body is not None:
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for name in route.path_names:
            assert {"name": name, "in": "path"}.items() <= next(
                p for p in op["parameters"] if p["name"] == name
            ).items()
    # the API mirrors the client: one operation per `Client` method
    methods = {m for m in vars(Client) if not m.startswith("_")} - {"close"}
    assert methods <= {op["operationId"] for op in documented.values()}
    setup = {"config", "update_config", "detect_sources", "add_target", "remove_target",
             "test_target", "recovery_kit", "start_drive_sign_in", "finish_drive_sign_in",
             "cancel_drive_sign_in", "cost_preview"}  # fmt: skip
    assert setup <= {op["operationId"] for op in documented.values()}
    scrape = documented[("GET", "/v1/metrics/prometheus")]  # for a Prometheus scraper
    assert scrape["operationId"] == "metrics_prometheus"
    assert list(scrape["responses"]["200"]["content"]) == ["text/plain"]
    secret = schemas["S3TargetSpec"]["properties"]["secret_key"]["anyOf"][0]
    assert secret["format"] == "password" and secret["writeOnly"] is True


async def test_events_are_server_sent_events_with_heartbeats(tmp_path: Path, xdg: Path) -> None:
    async with await Daemon.start(tmp_path / "ws", heartbeat=0.05) as d:
        connector = aiohttp.UnixConnector(path=str(d.socket))
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get("http://tierkeeper/v1/events") as resp,
        ):
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            assert await resp.content.readline() == b": subscribed\n"
            d.service.bus.publish("sessions.changed", {"sessions": 2})
            seen: list[bytes] = []
            while not (b": heartbeat\n" in seen and any(x.startswith(b"data:") for x in seen)):
                seen.append(await asyncio.wait_for(resp.content.readline(), 5))
    (data,) = [x for x in seen if x.startswith(b"data:")]
    event = Event.model_validate_json(data.removeprefix(b"data: "))
    assert event == Event(topic="sessions.changed", data={"sessions": 2})


async def test_stopping_ends_event_streams_and_long_polls(tmp_path: Path, xdg: Path) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    d = await Daemon.start(ws, retry=FAST, probe_delay=3600)
    client = await connect_daemon(ws)
    assert client is not None
    try:
        await d.service.import_now([str(SOURCE)])
        await d.service.add_folder_target("usb", str(disk))
        disk.rename(tmp_path / "unplugged")
        first = await client.start_backup([], "usb")
        assert (await client.wait_job(first.id)).state == JobState.WAITING
        second = await client.start_backup([], "usb")  # stays queued behind the parked one
        events = client.subscribe()
        waiting = asyncio.ensure_future(client.wait_job(second.id))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await asyncio.wait_for(d.stop(), 10)
        with pytest.raises(DaemonUnavailableError, match="stopping"):
            await asyncio.wait_for(waiting, 5)
        seen = [e.topic async for e in events]  # ends instead of hanging
        assert all(t.startswith(("job.", "sessions.", "backups.")) for t in seen)
        with pytest.raises(DaemonUnavailableError, match="did not answer"):
            await client.status()
    finally:
        await client.close()
        await d.stop()
    async with await Service.start(ws, readonly=True) as svc:
        assert (await svc.jobs.get(second.id)).state == JobState.QUEUED


async def test_sigterm_stops_a_subprocess_daemon_and_removes_its_socket(
    tmp_path: Path, xdg: Path
) -> None:
    ws = tmp_path / "ws"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.cli.entry", "daemon", "--workspace", str(ws), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log: list[str] = []
    try:
        while not any("serving" in line for line in log):
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "".join(log)
            log.append(line.decode())
        sock = socket_path(ws)
        assert sock.exists()
        status = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.cli.entry", "status", "--json", "--workspace", str(ws),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(status.communicate(), 60)
        assert status.returncode == 0, err.decode()
        assert orjson.loads(out)["daemon_pid"] == proc.pid

        client = await connect_daemon(ws)
        assert isinstance(client, HttpClient) and client.pid == proc.pid
        events = client.subscribe()
        await client.status()  # returns once the subscription is registered
        proc.send_signal(signal.SIGTERM)
        assert [e async for e in events] == []  # the stream ends cleanly
        await client.close()
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    text = "".join(log) + rest.decode()
    assert "Traceback" not in text and "stopped" in text
    assert not sock.exists() and not info_path(sock).exists()


async def test_open_client_uses_a_daemon_and_ignores_a_stale_socket(
    tmp_path: Path, xdg: Path
) -> None:
    ws = tmp_path / "ws"
    async with await Daemon.start(ws):
        client = await open_client(ws)
        assert isinstance(client, HttpClient)
        assert (await client.status()).workspace == str(ws)
        await client.close()

    sock = socket_path(ws)  # a crashed daemon leaves its socket file behind
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock))
    dead.close()
    assert sock.exists()
    fallback = await asyncio.wait_for(open_client(ws), 10)
    try:
        assert isinstance(fallback, InProcessClient)
        assert (await fallback.status()).workspace == str(ws)
    finally:
        await fallback.close()
    async with await Daemon.start(ws) as d:  # the next daemon replaces the leftover
        assert d.socket == sock and isinstance(await open_client_http(ws), HttpClient)


async def open_client_http(ws: Path) -> Client:
    client = await open_client(ws)
    await client.close()
    return client


async def test_a_relative_folder_means_the_callers_folder_not_the_daemons(
    tmp_path: Path, xdg: Path
) -> None:
    """`tierkeeper target add folder usb disk` beside a daemon started elsewhere: the
    target was the daemon's `disk` (here the repository's), not the one the user meant."""
    ws, here = tmp_path / "ws", tmp_path / "here"
    here.mkdir()
    name = "tierkeeper-test-relative-disk"
    proc = await spawn_daemon(ws, tmp_path / "daemon.log")  # its working folder: REPO
    try:
        add = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.cli.entry", "target", "add", "folder", "usb", name,
            "--json", "--workspace", str(ws), cwd=here,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(add.communicate(), 60)
        assert add.returncode == 0, err.decode()
        assert orjson.loads(out)["path"] == str(here / name)
        assert (here / name).is_dir() and not (REPO / name).exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        with contextlib.suppress(OSError):
            (REPO / name).rmdir()  # what the bug made, if it is back
