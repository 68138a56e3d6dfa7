"""Temporary contents: tus resumable uploads and downloads (temp-contents.json).

The tus steps as Qlik serves them: `POST /api/v1/temp-contents/files` (creation, with
`Upload-Length` and `Upload-Metadata`), `HEAD` on the upload for its `Upload-Offset` (tus core; not
in Qlik's spec), `PATCH` with `Upload-Offset` and `application/offset+octet-stream`. A PATCH keeps
every byte that arrived, also when its connection drops; the upload then answers 423 Locked for
`upload_lock_seconds`, as Qlik documents, before a client may ask its offset again.
"""

from __future__ import annotations

import base64
import binascii
import time

from qlikm2m.sandbox.api import Api, Principal, Request, not_found, route
from qlikm2m.sandbox.storage import READ_SIZE, Upload
from qlikm2m.sandbox.wire import Response, error_response

TUS_VERSION = "1.0.0"
DEFAULT_TTL = 3600.0  # temp-contents.json: one hour unless Upload-Metadata's ttl says otherwise
MAX_TTL = 259200.0  # three days
TUS_HEADERS = [("Tus-Resumable", TUS_VERSION)]


def _error(
    status: int, title: str, detail: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return error_response("temp-contents", status, f"HTTP-{status}", title, detail, headers=headers)


def _tus_version_error(request: Request) -> Response | None:
    given = request.headers.get("Tus-Resumable")
    if given == TUS_VERSION:
        return None
    return _error(
        412,
        "Precondition Failed",
        f"tus version {given!r} is not supported; send Tus-Resumable: {TUS_VERSION}.",
        [("Tus-Version", TUS_VERSION)],
    )


def parse_metadata(header: str) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64value` pairs; bad pairs raise ValueError."""
    found: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            found[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"the value of {key!r} is not base64 text") from None
    return found


def _upload_or_error(api: Api, upload_id: str) -> Upload | Response:
    with api.state.lock:
        upload = api.state.stores.uploads.get(upload_id)
    if upload is None or upload.generated:
        return _error(404, "Not Found", "Non-existent upload resource.")
    if api.state.now() >= upload.expires_at:
        return _error(410, "Gone", "The upload resource expired.")
    return upload


@route("POST", "/api/v1/temp-contents/files", "temp-contents")
def create_upload(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _tus_version_error(request)
    if refused is not None:
        return refused
    raw_length = request.headers.get("Upload-Length", "")
    if not raw_length.isdigit():
        return _error(400, "Bad Request", "Upload-Length must be a number of bytes.")
    length = int(raw_length)
    if length > api.state.config.max_upload_bytes:
        return _error(
            413,
            "Request Entity Too Large",
            f"The upload is larger than {api.state.config.max_upload_bytes} bytes.",
        )
    try:
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        ttl = float(metadata.get("ttl", DEFAULT_TTL))
    except ValueError as error:
        return _error(400, "Bad Request", f"Upload-Metadata: {error}.")
    if not 0 < ttl <= MAX_TTL:
        return _error(400, "Bad Request", f"ttl must be from 1 to {int(MAX_TTL)} seconds.")
    with api.state.lock:
        upload = api.state.stores.create_upload(
            length, metadata.get("filename", ""), api.state.now(), ttl
        )
    location = f"{request.base_url}/api/v1/temp-contents/files/{upload.id}"
    return Response(201, headers=[("Location", location), *TUS_HEADERS])


@route("HEAD", "/api/v1/temp-contents/files/{id}", "temp-contents", tier=0)
def upload_offset(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _tus_version_error(request)
    if refused is not None:
        return Response(refused.status, headers=refused.headers)
    found = _upload_or_error(api, params["id"])
    if isinstance(found, Response):
        return Response(found.status, headers=TUS_HEADERS)  # a HEAD answer has no body
    with api.state.lock:
        if api.state.stores.locked(found):
            return Response(423, headers=TUS_HEADERS)
        offset = found.offset
    return Response(
        200,
        headers=[
            ("Upload-Offset", str(offset)),
            ("Upload-Length", str(found.length)),
            ("Cache-Control", "no-store"),
            *TUS_HEADERS,
        ],
    )


@route("PATCH", "/api/v1/temp-contents/files/{id}", "temp-contents", tier=0, stream=True)
def patch_upload(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    stream = request.stream
    assert stream is not None
    refused = _tus_version_error(request)
    if refused is not None:
        return refused
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/offset+octet-stream":
        return _error(
            415, "Unsupported Media Type", "Send Content-Type: application/offset+octet-stream."
        )
    raw_offset = request.headers.get("Upload-Offset", "")
    if not raw_offset.isdigit():
        return _error(400, "Bad Request", "Upload-Offset must be a number of bytes.")
    found = _upload_or_error(api, params["id"])
    if isinstance(found, Response):
        return found
    upload = found
    with api.state.lock:
        if api.state.stores.locked(upload):
            return _error(423, "Locked", "Concurrent access is not allowed; retry later.")
        if int(raw_offset) != upload.offset:
            return _error(
                409,
                "Conflict",
                f"Upload-Offset {raw_offset} does not match the upload's offset {upload.offset}.",
            )
        if upload.offset + stream.length > upload.length:
            return _error(400, "Bad Request", "The body goes beyond Upload-Length.")
        upload.busy = True
    try:
        assert upload.path is not None
        with open(upload.path, "r+b") as handle:
            handle.seek(upload.offset)
            while True:
                piece = stream.read(READ_SIZE)
                if not piece:
                    break
                handle.write(piece)
                # Acknowledged as written: what arrived before a drop is kept.
                with api.state.lock:
                    upload.offset += len(piece)
    finally:
        with api.state.lock:
            upload.busy = False
            if stream.dropped:
                upload.locked_until = time.monotonic() + api.state.config.upload_lock_seconds
    return Response(204, headers=[("Upload-Offset", str(upload.offset)), *TUS_HEADERS])


@route("GET", "/api/v1/temp-contents/{id}", "temp-contents")
def download(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    with api.state.lock:
        upload = api.state.stores.uploads.get(params["id"])
    if upload is None:
        return not_found("temp-contents", "Temporary content")
    if api.state.now() >= upload.expires_at:
        return _error(410, "Gone", "The temporary content expired.")
    if not upload.complete:
        return Response(204)
    name = (upload.filename or f"{upload.id}.bin").replace('"', "")
    return Response(
        200,
        content_type="application/octet-stream",
        headers=[("Content-Disposition", f'attachment; filename="{name}"')],
        stream=upload.content.chunks(),
        stream_length=upload.length,
    )
