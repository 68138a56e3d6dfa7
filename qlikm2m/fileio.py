"""Crash-safe, private file writes and cross-process locks (the one place filelock is imported).

A reader must only ever see the old or the new content of a file, never a torn one, and files
that may hold a token or secret must never exist, even for an instant, with permissions wider
than 0600: so the temporary file is created 0600, written, fsynced and renamed over the target.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from qlikm2m.errors import ConfigError
from qlikm2m.paths import ensure_private_dir

DEFAULT_LOCK_TIMEOUT = 30.0
# A writer holds its temporary file for milliseconds; one this old was left by a killed process.
STALE_TEMP_AGE = 60.0


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically; the folder is created 0700 if missing."""
    ensure_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)
    _remove_stale_temps(path)


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files of ``path`` left by killed writers (they may hold a token)."""
    cutoff = time.time() - STALE_TEMP_AGE
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable across a power loss; not every filesystem allows it.
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def locked(lock_path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive cross-process lock on ``lock_path`` (created 0600) for the block."""
    from filelock import FileLock, Timeout

    ensure_private_dir(lock_path.parent)
    lock = FileLock(str(lock_path), timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except Timeout as error:
        raise ConfigError(
            f"Timed out after {timeout:g}s waiting for the lock {lock_path}.",
            hint="Another qlikm2m process holds it; if none is running, delete the lock file.",
        ) from error
    try:
        yield
    finally:
        lock.release()
