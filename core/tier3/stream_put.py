"""Whether the archive target can take an object while it is being produced.

An S3 store can (a multipart upload fed part by part: core/remote/s3_stream.py);
a folder or Drive cannot, and gets the tarball as a finished file. Like the
thaw capability, it is asked of the store, looking through the wrappers
(retry, metering, cache): those only know whole-file puts, and a streamed put
retries its parts itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from core.remote.base import ObjectInfo, ProgressFn, ResumeSlot
from core.tier3.phase_pack import Sink

_T = TypeVar("_T")


@runtime_checkable
class StreamingStore(Protocol):
    async def put_stream(
        self,
        key: str,
        produce: Callable[[Sink], _T],
        *,
        tag: str,
        size_bound: int,
        resume: ResumeSlot | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[_T, ObjectInfo]: ...


def stream_control(store: object) -> StreamingStore | None:
    while store is not None:
        if isinstance(store, StreamingStore):
            return store
        store = getattr(store, "inner", None)
    return None
