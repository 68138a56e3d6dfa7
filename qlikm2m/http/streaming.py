"""Streamed bodies: uploads sent piece by piece, downloads read into a reused buffer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from qlikm2m.http.responses import Response, _body_error

if TYPE_CHECKING:
    from qlikm2m.http.transport import Transport


class _SizedBody:
    """An iterable body of a known length: requests sends it with Content-Length, piece by piece
    (urllib3 writes each piece as it comes), so an upload never sits whole in memory."""

    def __init__(self, pieces: Iterator[bytes | memoryview], length: int) -> None:
        self._pieces = pieces
        self._length = length

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return iter(self._pieces)

    def __len__(self) -> int:
        return self._length


def send_stream(
    transport: Transport,
    method: str,
    url: str,
    *,
    body: Iterator[bytes | memoryview],
    length: int,
    headers: Mapping[str, str],
    bearer: str | None,
) -> Response:
    """Send one request whose body is streamed from ``body`` (``length`` bytes), once.

    Never retried and never redirected here: a body read from a file cannot be replayed by this
    layer, so the caller resumes instead (a tus upload asks the server's offset). Goes through
    the transport's session: proxies, TLS trust (``--ca-bundle`` and the OS store), timeouts,
    the redacted trace. Raises NetworkError/ConfigError like ``Transport.request``; never
    raises for a status.
    """
    send_headers = dict(headers)
    send_headers["Content-Length"] = str(length)
    if bearer:
        send_headers["Authorization"] = f"Bearer {bearer}"
    transport._trace(f"> {method.upper()} {url} ({length} bytes)")
    started = time.monotonic()
    try:
        raw = transport.session.request(
            method.upper(),
            url,
            headers=send_headers,
            data=_SizedBody(body, length),  # type: ignore[arg-type]  # iterable with a length
            stream=True,
            allow_redirects=False,
            timeout=(transport.options.connect_timeout, transport.options.read_timeout),
        )
    except Exception as error:
        raise transport._transport_error(error, method.upper(), url).error(1) from None
    response = Response(raw, method=method.upper())
    transport._trace_response(response, (time.monotonic() - started) * 1000)
    return response


def read_body_into(response: Response, buffer: bytearray | memoryview) -> int:
    """Read the next bytes of the body into ``buffer``; 0 at the end. For large downloads.

    Straight from the HTTP parser into a buffer the caller reuses: no new bytes object per piece
    (each one a fresh allocation the kernel must fault in) and no copy through urllib3's buffers.
    That parser is http.client's, inside urllib3; when it is not there (another urllib3) or the
    body is content-encoded (it would need decoding), urllib3's own ``readinto`` is used. Errors
    become the project's (NetworkError for a body cut short).
    """
    from http.client import HTTPResponse

    raw = response._raw.raw
    parser = getattr(raw, "_fp", None)
    encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
    try:
        if isinstance(parser, HTTPResponse) and not encoded:
            return parser.readinto(buffer)
        return int(raw.readinto(buffer))
    except Exception as error:
        response._raw.close()
        raise _body_error(error, response) from error
