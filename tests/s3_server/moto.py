"""moto's S3 in this process (`ThreadedMotoServer`), for Glacier rules SeaweedFS lacks.

What moto models (moto 5.x, read from its source):
- A GET of a GLACIER/DEEP_ARCHIVE object fails with InvalidObjectState (403) unless
  the key's `x-amz-restore` header says `ongoing-request="false"`.
- RestoreObject sets the key's expiry (now + Days) and answers 202 the first time,
  200 after (AWS answers 409 RestoreAlreadyInProgress while one runs; moto never does).
  A STANDARD object gets InvalidObjectState.
- The restore's progress is a moto "managed state" (`s3::keyrestore`, states
  None → IN_PROGRESS → RESTORED) driven by moto's global `state_manager`. The default
  transition is "immediate", so a restore is complete as soon as anyone looks. With a
  "manual" transition whose tick count is never reached, the state stays wherever it
  is put — and since moto treats any state but IN_PROGRESS as done, holding a restore
  means setting that key's state to IN_PROGRESS by hand (`hold_restore`), and
  completing it means setting RESTORED (`complete_restore`).
- moto does not check checksums (SeaweedFS does).

The state manager is process-global: `MotoS3Server` sets the manual transition while it
runs and removes it at stop.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager
from moto.s3.models import FakeKey, s3_backends
from moto.server import ThreadedMotoServer

RESTORE_MODEL = "s3::keyrestore"
NEVER = {"progression": "manual", "times": 10**12}


class MotoS3Server:
    access_key = "moto-test-key"
    secret_key = "moto-test-secret"
    region = "us-east-1"

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        state_manager.set_transition(RESTORE_MODEL, NEVER)

    def stop(self) -> None:
        state_manager.unset_transition(RESTORE_MODEL)
        self._server.stop()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def make_bucket(self) -> str:
        name = f"tk-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def _key(self, bucket: str, key: str) -> FakeKey:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        found = backend.get_object(bucket, key)
        if found is None:
            raise KeyError(f"moto has no object {bucket}/{key}")
        return found

    def hold_restore(self, bucket: str, key: str) -> None:
        """Make the object's restore (requested before or after this call) stay "ongoing"."""
        self._key(bucket, key).status = "IN_PROGRESS"

    def complete_restore(self, bucket: str, key: str) -> None:
        self._key(bucket, key).status = "RESTORED"


@contextmanager
def running_moto() -> Iterator[MotoS3Server]:
    server = MotoS3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()
