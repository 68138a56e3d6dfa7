"""Moving files to and from a tenant: streamed downloads and tus resumable uploads.

Both keep memory flat whatever the file size: bytes go between the socket and the disk in pieces
of ``PIECE`` bytes, hashed (sha256) on the way.

Why not the ``tuspy`` library: it sends each request with ``requests.patch``/``requests.head`` at
module level (tusclient/request.py), outside any session we could hand it, so it would bypass our
TLS trust (the OS store plus ``--ca-bundle``), our proxy handling, our token re-mint and our
retries and traces, and it reads each chunk whole into memory; it also pulls in aiohttp. The tus
client steps are few (creation, HEAD for the offset, PATCH at that offset), so they are written
here over our HTTP layer (``http.send_stream``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urljoin

from qlikm2m.errors import ApiError, NetworkError, QlikM2MError, UsageError

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient

# Bytes moved between socket and disk at a time. Measured on the benchmark machine (1 GiB over
# TLS on loopback): 256 KiB pieces with sha256 on its own thread beat 1 MiB (the pieces fall out
# of the CPU caches between decrypting, hashing and writing) and 64 KiB (more Python per byte).
PIECE = 256 << 10
# Bytes per write(2) of a download: with 16 KiB (what curl writes) the kernel spent a third of the
# system time it did with 256 KiB writes of the same bytes on the benchmark machine.
WRITE_SIZE = 16 << 10
DEFAULT_CHUNK_SIZE = 16 << 20  # bytes per tus PATCH: what a dropped connection can cost again
MIN_CHUNK_SIZE = 64 << 10
TUS_VERSION = "1.0.0"
TUS_FILES_PATH = "/api/v1/temp-contents/files"
# Qlik documents 423 Locked "for a moment" after a dropped connection, without a length.
LOCK_WAIT = 120.0
MAX_STALLS = 6  # failed PATCH attempts in a row, with no progress in between, before giving up
MAX_STALL_WAIT = 8.0  # seconds, the longest pause between two of them

Progress = Callable[[int, int], None]  # (bytes acknowledged, total)


@dataclass(frozen=True)
class FileDigest:
    """A file written or read whole: its path, size in bytes and sha256 (hex)."""

    path: Path
    bytes: int
    sha256: str


@dataclass(frozen=True)
class UploadResult:
    """A finished tus upload: the temporary-contents file id and what it cost.

    ``bytes_sent`` counts body bytes put on the wire (re-sent ones included), ``patches`` the
    PATCH requests, ``resumes`` how often the upload continued from the server's offset.
    """

    file_id: str
    location: str
    digest: FileDigest
    bytes_sent: int
    patches: int
    resumes: int


class _HashedBuffers:
    """Buffers that go round: filled by the caller, hashed in order on a thread, then free again.

    hashlib releases the GIL on large pieces, so hashing overlaps the socket and the disk; the
    buffers are reused, so memory stays at ``count`` x ``size`` whatever the file size.
    """

    def __init__(self, count: int = 4, size: int = PIECE) -> None:
        self._digest = hashlib.sha256()
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(count):
            self._free.put(bytearray(size))
        self._full: queue.Queue[tuple[bytearray, int, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buffer, start, end = item
            self._digest.update(memoryview(buffer)[start:end])
            self._free.put(buffer)

    def take(self) -> bytearray:
        return self._free.get()

    def hash(self, buffer: bytearray, length: int, start: int = 0) -> None:
        """Hash ``buffer[start:length]`` after what came before, then free the buffer."""
        self._full.put((buffer, start, length))

    def release(self, buffer: bytearray) -> None:
        """Free a buffer without hashing it."""
        self._free.put(buffer)

    def hexdigest(self) -> str:
        self._full.put(None)
        self._thread.join()
        return self._digest.hexdigest()


# -- downloads -----------------------------------------------------------------------------------


def download(client: QlikClient, url: str, target: Path, *, overwrite: bool = False) -> FileDigest:
    """GET ``url`` (a tenant path or same-origin URL) into ``target``, atomically.

    The body goes to a temporary file next to ``target`` and is renamed over it once complete and
    as long as announced, so a failed download never leaves a torn file under the name. Raises
    UsageError (target exists without ``overwrite``, or is not writable), NetworkError (the body
    stopped short), ApiError/AuthError for error statuses.
    """
    if target.exists() and not overwrite:
        raise UsageError(f"{target} exists.", hint="Pass --overwrite to replace it.")
    response = client.request("GET", url)
    if response.status == 204:
        raise ApiError(
            f"GET {url} answered 204: the file is not complete yet.",
            hint="An export or upload is still being written; retry shortly.",
        )
    declared = response.headers.get("content-length", "")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as error:
        response.close()
        raise UsageError(f"Cannot write to {folder}: {error.strerror or error}.") from None
    from qlikm2m.http import read_body_into

    digest = _HashedBuffers()
    size = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as handle:
            while True:
                buffer = digest.take()
                length = read_body_into(response, buffer)
                if not length:
                    break
                view = memoryview(buffer)[:length]
                while view:
                    view = view[handle.write(view[:WRITE_SIZE]) or 0 :]
                digest.hash(buffer, length)
                size += length
        response.close()
        if declared.isdigit() and int(declared) != size:
            raise NetworkError(
                f"The download of {url} stopped after {size} of {declared} bytes.",
                hint="Run the command again.",
            )
        os.replace(temp_name, target)
    except BaseException:
        digest.hexdigest()  # ends its thread
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return FileDigest(target, size, digest.hexdigest())


def file_digest(path: Path) -> FileDigest:
    """Size and sha256 of a local file, read in pieces."""
    digest = hashlib.sha256()
    size = 0
    with _open_source(path) as handle:
        while piece := handle.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return FileDigest(path, size, digest.hexdigest())


def _open_source(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder, not a file.") from None
    except OSError as error:
        raise UsageError(f"Cannot read {path}: {error.strerror or error}.") from None


# -- tus uploads ----------------------------------------------------------------------------------


def _metadata(filename: str, ttl: int | None) -> str:
    pairs = {"filename": filename}
    if ttl is not None:
        pairs["ttl"] = str(ttl)
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


class TusUpload:
    """Upload one file to temporary contents over tus (temp-contents.json postTus, patchTus).

    The file is sent in PATCH requests of ``chunk_size`` bytes, each streamed from disk. After a
    dropped connection or a failed PATCH the server's offset is asked (HEAD) and the upload goes on
    from there; a 423 Locked, which Qlik answers for a moment after a dropped connection, is waited
    out (up to ``lock_wait`` seconds) before asking again. A 401 re-mints the token once. Failed
    attempts without progress back off exponentially up to ``stall_wait`` seconds each.
    """

    def __init__(
        self,
        client: QlikClient,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        lock_wait: float = LOCK_WAIT,
        stall_wait: float = MAX_STALL_WAIT,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if chunk_size < MIN_CHUNK_SIZE:
            raise UsageError(f"The chunk size must be at least {MIN_CHUNK_SIZE} bytes.")
        self.client = client
        self.chunk_size = chunk_size
        self.lock_wait = lock_wait
        self.stall_wait = stall_wait
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.bytes_sent = 0
        self.patches = 0
        self.resumes = 0

    def upload(
        self, path: Path, *, filename: str | None = None, ttl: int | None = None
    ) -> UploadResult:
        """Send ``path``; returns the file id to give `apps import` or data files."""
        with _open_source(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            location = self._create(size, filename or path.name, ttl)
            hasher = _OrderedHash()
            offset = 0
            stalls = 0
            while offset < size:
                end = min(size, offset + self.chunk_size)
                try:
                    offset = self._patch(location, handle, offset, end, hasher)
                    stalls = 0
                except _Resume as resume:
                    if stalls >= 1:
                        self.sleep(min(0.5 * 2**stalls, self.stall_wait))
                    self.resumes += 1
                    resumed = self._offset(location, size)
                    # A drop mid-PATCH still moves the offset on: only no progress is a stall.
                    stalls = 0 if resumed > offset else stalls + 1
                    if stalls > MAX_STALLS:
                        raise resume.error from None
                    offset = resumed
                if self.progress is not None:
                    self.progress(offset, size)
            if hasher.size < size:
                hasher.catch_up(handle, size)
        file_id = location.rstrip("/").rsplit("/", 1)[-1]
        digest = FileDigest(path, size, hasher.hexdigest())
        return UploadResult(file_id, location, digest, self.bytes_sent, self.patches, self.resumes)

    # -- steps --------------------------------------------------------------------------------
    def _create(self, size: int, filename: str, ttl: int | None) -> str:
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Length": str(size),
            "Upload-Metadata": _metadata(filename, ttl),
        }
        response = self.client.request("POST", TUS_FILES_PATH, headers=headers)
        location = response.headers.get("location")
        response.read_prefix()
        if not location:
            raise ApiError(f"POST {TUS_FILES_PATH} answered without a Location for the upload.")
        return urljoin(self.client.url_for(TUS_FILES_PATH), location)

    def _patch(
        self, location: str, handle: IO[bytes], start: int, end: int, hasher: _OrderedHash
    ) -> int:
        from qlikm2m.http import error_for, send_stream

        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(start),
            "Content-Type": "application/offset+octet-stream",
        }
        token = self.client.tokens.token()
        self.patches += 1
        try:
            response = send_stream(
                self.client.transport,
                "PATCH",
                self.client.url_for(location),
                body=self._pieces(handle, start, end, hasher),
                length=end - start,
                headers=headers,
                bearer=token.value,
            )
        except NetworkError as dropped:
            raise _Resume(dropped) from None
        status = response.status
        if status == 204:
            response.read_prefix()
            acknowledged = response.headers.get("upload-offset", "")
            return int(acknowledged) if acknowledged.isdigit() else end
        error = error_for(response)
        if status == 401 and self.client.tokens.after_unauthorized(token) is not None:
            raise _Resume(error)
        if status in (409, 423) or status >= 500 or status == 429:
            # 409: our offset is not the server's; 423: locked after a drop; 5xx: not applied.
            raise _Resume(error)
        if status == 410:
            raise ApiError(
                "The upload expired on the tenant before it finished (HTTP 410).",
                hint="Run the command again; a slow link may need a larger --chunk-size.",
                details=error.details,
            )
        raise error

    def _pieces(
        self, handle: IO[bytes], start: int, end: int, hasher: _OrderedHash
    ) -> Iterator[memoryview]:
        # Read into buffers that go round (no fresh allocation per piece); a buffer is handed
        # to the hash only once the socket has taken it, when the generator resumes.
        handle.seek(start)
        position = start
        while position < end:
            buffer = hasher.take()
            handed = False
            try:
                length = handle.readinto(memoryview(buffer)[: min(PIECE, end - position)])  # type: ignore[attr-defined]
                if not length:
                    raise UsageError("The file shrank while it was being uploaded.")
                self.bytes_sent += length
                yield memoryview(buffer)[:length]
                hasher.update_at(position, buffer, length)
                handed = True
                position += length
            finally:
                if not handed:
                    hasher.release(buffer)

    def _offset(self, location: str, size: int) -> int:
        """The server's offset (HEAD), waiting out 423 Locked."""
        from qlikm2m.http import error_for

        deadline = self.clock() + self.lock_wait
        delay = 0.25
        while True:
            response = self.client.request(
                "HEAD", location, headers={"Tus-Resumable": TUS_VERSION}, check=False
            )
            response.read_prefix()
            if response.status == 423 and self.clock() + delay <= deadline:
                self.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if response.status == 423:
                raise NetworkError(
                    f"The upload stayed locked (HTTP 423) for more than {self.lock_wait:g} s.",
                    hint="The tenant is still busy with a dropped request; run the command again.",
                )
            if response.status == 410:
                raise ApiError("The upload expired on the tenant before it finished (HTTP 410).")
            if response.status >= 400:
                raise error_for(response)
            raw = response.headers.get("upload-offset", "")
            if not raw.isdigit() or int(raw) > size:
                raise ApiError(f"HEAD {location} did not answer a valid Upload-Offset ({raw!r}).")
            return int(raw)


class _Resume(Exception):
    """A PATCH that did not complete: go on from the server's offset."""

    def __init__(self, error: QlikM2MError) -> None:
        super().__init__(error.message)
        self.error = error


class _OrderedHash:
    """sha256 of the file in order, fed from pieces that may be re-read after a resume."""

    def __init__(self) -> None:
        self._pool = _HashedBuffers()
        self.size = 0

    def take(self) -> bytearray:
        return self._pool.take()

    def release(self, buffer: bytearray) -> None:
        self._pool.release(buffer)

    def update_at(self, position: int, buffer: bytearray, length: int) -> None:
        """Bytes ``buffer[:length]`` of the file at ``position``; frees the buffer when done."""
        if position + length <= self.size or position > self.size:
            # Already hashed before a resume, or after a gap that catch_up fills.
            self._pool.release(buffer)
            return
        self._pool.hash(buffer, length, self.size - position)
        self.size = position + length

    def catch_up(self, handle: IO[bytes], size: int) -> None:
        handle.seek(self.size)
        while self.size < size:
            buffer = self._pool.take()
            length = handle.readinto(memoryview(buffer)[: min(PIECE, size - self.size)])  # type: ignore[attr-defined]
            if not length:
                self._pool.release(buffer)
                break
            self.update_at(self.size, buffer, length)

    def hexdigest(self) -> str:
        return self._pool.hexdigest()
