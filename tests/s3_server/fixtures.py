"""Session-wide S3 servers as pytest fixtures; import them into a test module:

from tests.s3_server.fixtures import moto_s3, seaweed  # noqa: F401
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.s3_server.moto import MotoS3Server, running_moto
from tests.s3_server.seaweed import SeaweedServer, running_seaweed


@dataclass
class SeaweedHarness:
    server: SeaweedServer
    _client: Any = None

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def access_key(self) -> str:
        return self.server.access_key

    @property
    def secret_key(self) -> str:
        return self.server.secret_key

    @property
    def region(self) -> str:
        return self.server.region

    def client(self) -> Any:
        """A plain boto3 client with the server's keys, to set up and inspect (shared)."""
        if self._client is None:
            self._client = self.server.client()
        return self._client

    def make_bucket(self) -> str:
        """A fresh, empty bucket with a unique name (tests never share one)."""
        name = f"tk-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedHarness]:
    with running_seaweed() as server:
        yield SeaweedHarness(server)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    with running_moto() as server:
        yield server
