"""Advisory locks that let a log's tail repair tell a torn line from one being written.

An activity log has many writers (the service, the CLI, one hook process per
event), each appending a whole line with one `write`. A reader can still see a
line half done: Linux grows the file page by page during a large write, so an
unterminated last line may be a write in progress rather than a crash. Only the
writers know, so each holds a shared `flock` for the duration of its write and
the repair takes the exclusive one before it looks: while it holds that, an
unterminated tail belongs to no living writer. A writer that dies mid-write
loses its lock with its descriptor, so its tail is then really torn.

`flock` belongs to the open file description, so two descriptors of the same
file in one process exclude each other just as two processes do.

Nobody may hang on a lock: writers wait a bounded time and then write without
it (the line matters more than the repair), the repair waits a bounded time and
then leaves the tail for the next open. Where `fcntl` does not exist (Windows)
or the file system refuses locks, both sides go on as if locks did not exist.

Imported by the hook on every event: stdlib only, no `typing` at run time.
"""

from __future__ import annotations

import sys
import time

if sys.platform == "win32":
    fcntl = None
else:
    import fcntl

__all__ = ["BUSY", "HELD", "UNAVAILABLE", "lock_exclusive", "lock_shared", "unlock"]

WRITER_WAIT = 5.0
"""How long a writer waits out a repair (which holds its lock for a few fsyncs at most)."""
REPAIR_WAIT = 1.0
"""How long a repair tries before leaving the tail for the next open."""

HELD = "held"
BUSY = "busy"
"""Another descriptor held a conflicting lock for the whole wait."""
UNAVAILABLE = "unavailable"
"""No locks here (no fcntl, or the file system refused): behave as if there were none."""

_FIRST_PAUSE = 0.0005
_MAX_PAUSE = 0.01


def lock_shared(fd: int, wait: float | None = None) -> str:
    """Take the writers' lock on `fd`; `HELD`, or why the caller goes on without it."""
    return _acquire(fd, exclusive=False, wait=WRITER_WAIT if wait is None else wait)


def lock_exclusive(fd: int, wait: float | None = None) -> str:
    """Take the repair's lock on `fd`: `HELD` means no writer is inside a write."""
    return _acquire(fd, exclusive=True, wait=REPAIR_WAIT if wait is None else wait)


def unlock(fd: int) -> None:
    """Release whatever `fd` holds (closing the last descriptor releases it too)."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass


def _acquire(fd: int, *, exclusive: bool, wait: float) -> str:
    # Polling with LOCK_NB rather than a blocking flock: a blocking call cannot time out.
    if fcntl is None:
        return UNAVAILABLE
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = -1.0
    pause = _FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, op)
            return HELD
        except BlockingIOError:
            pass
        except OSError:  # ENOLCK, EINVAL, EBADF: this file system does no flock
            return UNAVAILABLE
        now = time.monotonic()
        if deadline < 0:
            deadline = now + wait
        if now >= deadline:
            return BUSY
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, _MAX_PAUSE)
