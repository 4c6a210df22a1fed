"""Advisory file locks, so that two runners (or two jobs of one runner) never train the same thing at once.

``file_lock(path)`` holds an exclusive ``flock`` on ``path`` (created if needed; it stays behind, empty, and is
harmless) for the ``with`` block. ``blocking=False`` raises :class:`Busy` at once when another process or thread
holds it; ``held(path)`` only asks whether someone holds it now. The lock goes with the open file: a killed process releases it, so a stale lock file never blocks.
On a system without ``fcntl`` (Windows) the lock is a no-op.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None


class Busy(RuntimeError):
    """The lock is held elsewhere (only raised with ``blocking=False``)."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                raise Busy(f"{path} is held by another process") from None
        try:
            yield path
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def held(path: str | os.PathLike) -> bool:
    """Whether another process (or thread) holds the lock ``path`` now."""
    try:
        with file_lock(path, blocking=False):
            return False
    except Busy:
        return True
