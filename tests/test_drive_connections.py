"""One Drive client per store, a connection per thread (core/remote/drive_discovery.py).

httplib2 connections are not thread-safe: two threads writing to one socket interleave
their requests. The store shares the client that builds requests between its worker
threads, so what must hold is that every request goes out on the sending thread's own
connection, against the real client and the test Drive server.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from core.remote.drive_discovery import build_api, drive_document
from tests.drive_server.fixture import DriveHarness, drive_fixture

drive = drive_fixture()

THREADS = 8


def test_each_thread_sends_on_its_own_connection_and_close_closes_them_all(
    drive: DriveHarness,
) -> None:
    api = build_api(drive.credentials(), drive_document(drive.base_url), timeout=15.0)
    made = api.files.create(
        body={"name": "probe", "mimeType": "application/vnd.google-apps.folder"}, fields="id"
    )
    start = threading.Barrier(THREADS)
    seen: dict[int, list[object]] = {}

    def work(_: int) -> list[str]:
        client = api.on_this_thread()
        assert client.http is api.on_this_thread().http  # one per thread, kept
        start.wait()  # every thread sends at the same moment
        names = []
        for _ in range(10):
            listed = client.files.list(q="name = 'probe'", fields="files(id,name)").execute()
            names += [f["name"] for f in listed["files"]]
        seen[threading.get_ident()] = list(client.http.http.connections.values())
        return names

    try:
        made.execute(http=api.connections.mine())
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(work, range(THREADS)))

        assert results == [["probe"] * 10] * THREADS
        sockets = [conn for conns in seen.values() for conn in conns]
        assert len(seen) == THREADS and len(sockets) == THREADS  # one each, none shared
        assert len({id(conn) for conn in sockets}) == THREADS
        assert all(conn.sock is not None for conn in sockets)
    finally:
        api.close()
    assert all(conn.sock is None for conns in seen.values() for conn in conns)
