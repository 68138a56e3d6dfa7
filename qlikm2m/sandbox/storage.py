"""What the sandbox tenant keeps of what clients send it: uploads, imported and published apps,
data files, created spaces and space assignments.

File contents live on disk in a private temporary folder (removed when the sandbox stops), so a
1 GiB upload or download never sits in memory. Content the tenant makes up (the export of a seeded
app) is a pattern generated on the fly. Imports no other part of the sandbox.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

READ_SIZE = 1 << 20
# spaces.json RoleType: the roles each space type can assign.
ASSIGNABLE_ROLES = {
    "shared": ["codeveloper", "consumer", "dataconsumer", "facilitator", "producer"],
    "managed": ["consumer", "contributor", "dataconsumer", "facilitator", "publisher",
                "basicconsumer"],
    "data": ["consumer", "dataconsumer", "datapreview", "facilitator", "operator", "producer",
             "publisher"],
}  # fmt: skip

_PATTERN = bytes(range(256)) * 4096  # 1 MiB of filler for generated contents


@dataclass(frozen=True)
class Content:
    """Bytes of a file: on disk at `path`, or (path None) `size` bytes of a generated pattern."""

    size: int
    path: str | None = None

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        if self.path is None:
            remaining = self.size - start
            offset = start % len(_PATTERN)
            while remaining > 0:
                piece = _PATTERN[offset : offset + min(remaining, READ_SIZE)]
                offset = 0
                remaining -= len(piece)
                yield piece
            return
        with open(self.path, "rb") as handle:
            handle.seek(start)
            remaining = self.size - start
            while remaining > 0:
                piece = handle.read(min(READ_SIZE, remaining))
                if not piece:
                    return
                remaining -= len(piece)
                yield piece


@dataclass
class Upload:
    """One temporary-contents file, written by tus PATCH requests (or made by an export)."""

    id: str
    length: int
    filename: str
    created_at: float  # tenant clock: the ttl counts from the creation
    expires_at: float
    path: str | None
    offset: int = 0
    busy: bool = False  # a PATCH is being received
    locked_until: float = 0.0  # monotonic: after a dropped connection, as Qlik documents (423)
    generated: bool = False

    @property
    def complete(self) -> bool:
        return self.offset >= self.length

    @property
    def content(self) -> Content:
        return Content(self.length, self.path)


@dataclass
class DeliveredApp:
    """An app the tenant holds beyond the seeded ones: imported, or published to a managed space."""

    id: str
    name: str
    space_id: str | None
    owner_id: str
    created_at: float
    content: Content
    description: str = ""
    modified_at: float = 0.0
    origin_app_id: str = ""  # set on published copies: the app they were published from
    publish_time: float | None = None
    deleted: bool = False


@dataclass
class DataFile:
    id: str
    name: str
    owner_id: str
    space_id: str | None
    connection_id: str | None
    content: Content
    created_at: float
    modified_at: float
    content_updated_at: float


@dataclass
class Stores:
    """The sandbox's writable data; every method is called with `lock` held by the caller."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    uploads: dict[str, Upload] = field(default_factory=dict)
    apps: list[DeliveredApp] = field(default_factory=list)
    app_position: dict[str, int] = field(default_factory=dict)
    data_files: dict[str, DataFile] = field(default_factory=dict)
    assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deleted_seeded: set[str] = field(default_factory=set)
    _folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> str:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="qlik-sandbox-")
        return self._folder.name

    def new_file(self) -> str:
        path = os.path.join(self.folder, secrets.token_hex(12))
        # Created empty and private: uploads are written in place at their offsets.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        return path

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    # -- uploads ------------------------------------------------------------------------------
    def create_upload(self, length: int, filename: str, now: float, ttl: float) -> Upload:
        upload = Upload(
            id=secrets.token_hex(12),
            length=length,
            filename=filename,
            created_at=now,
            expires_at=now + ttl,
            path=self.new_file(),
        )
        self.uploads[upload.id] = upload
        return upload

    def generated_upload(self, content: Content, filename: str, now: float, ttl: float) -> Upload:
        """A finished temporary file whose bytes are `content` (an export): nothing is copied."""
        upload = Upload(
            id=secrets.token_hex(12),
            length=content.size,
            filename=filename,
            created_at=now,
            expires_at=now + ttl,
            path=content.path,
            offset=content.size,
            generated=True,
        )
        self.uploads[upload.id] = upload
        return upload

    @staticmethod
    def locked(upload: Upload) -> bool:
        return upload.busy or time.monotonic() < upload.locked_until

    # -- apps ---------------------------------------------------------------------------------
    def add_app(self, app: DeliveredApp) -> int:
        self.apps.append(app)
        self.app_position[app.id] = len(self.apps) - 1
        return len(self.apps) - 1

    def live_app(self, app_id: str) -> DeliveredApp | None:
        position = self.app_position.get(app_id)
        if position is None:
            return None
        app = self.apps[position]
        return None if app.deleted else app


def new_app_id() -> str:
    return str(uuid.uuid4())


def new_space_id() -> str:
    # Qlik's space ids are 24 hex digits, like the seeded ones.
    return secrets.token_hex(12)
