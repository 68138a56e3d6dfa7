"""Responses whose bodies are read on demand, bounded, with errors turned into ours."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qlikm2m.errors import ApiError, NetworkError, QlikM2MError
from qlikm2m.http.base import CHUNK_SIZE, MAX_ERROR_BODY, MAX_JSON_BODY, _path_of

if TYPE_CHECKING:
    import requests


class Response:
    """A response whose body is read on demand, bounded, with errors turned into ours."""

    def __init__(
        self, raw: requests.Response, *, method: str, attempts: int = 1, waited: float = 0.0
    ) -> None:
        self._raw = raw
        self.method = method
        self.attempts = attempts
        self.waited = waited
        self._body: bytes | None = None

    @property
    def status(self) -> int:
        return int(self._raw.status_code)

    @property
    def reason(self) -> str:
        return str(self._raw.reason or "")

    @property
    def url(self) -> str:
        return str(self._raw.url)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._raw.headers

    @property
    def http_version(self) -> str:
        version = getattr(self._raw.raw, "version", 11)
        return {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(version, "HTTP/1.1")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def is_json(self) -> bool:
        kind = self.content_type
        return kind == "application/json" or kind.endswith("+json")

    def iter_bytes(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body in chunks, never held whole; for downloads and binary output."""
        if self._body is not None:
            yield self._body
            return
        try:
            yield from self._raw.iter_content(chunk_size)
        except Exception as error:
            raise _body_error(error, self) from error
        finally:
            self._raw.close()

    def read(self, limit: int = MAX_JSON_BODY) -> bytes:
        """The whole body, refusing more than ``limit`` bytes."""
        if self._body is not None:
            return self._body
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            self._raw.close()
            raise self._too_large(limit)
        stream = self._raw.raw  # urllib3's response; None when requests already holds the body
        as_sent = self.headers.get("content-encoding", "identity") == "identity"
        chunked = "transfer-encoding" in self.headers
        if declared.isdigit() and as_sent and not chunked and stream is not None:
            # A body of a known length (at most ``limit``, checked above), neither compressed nor
            # chunked (a chunked body's length is not the declared one): one read of exactly
            # that many bytes, as in a page of a listing, instead of requests' chunk generator
            # over urllib3's stream. Cut short, it raises as the chunk loop would; read whole,
            # urllib3 has already put the connection back in the pool, so the close below does
            # not drop it.
            try:
                self._body = bytes(stream.read(decode_content=False))
            except Exception as error:
                raise _body_error(error, self) from error
            finally:
                self._raw.close()
            return self._body
        parts: list[bytes] = []
        size = 0
        for chunk in self.iter_bytes():
            size += len(chunk)
            if size > limit:
                self._raw.close()
                raise self._too_large(limit)
            parts.append(chunk)
        self._body = b"".join(parts)
        return self._body

    def read_prefix(self, limit: int = MAX_ERROR_BODY) -> bytes:
        """At most ``limit`` bytes of the body, for error messages; the rest is never downloaded."""
        if self._body is not None:
            return self._body[:limit]
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in self._raw.iter_content(8192):
                parts.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except Exception:  # noqa: S110 - a broken error body must not hide the error itself
            pass
        finally:
            self._raw.close()
        self._body = b"".join(parts)[:limit]
        return self._body

    def json(self, limit: int = MAX_JSON_BODY) -> Any:
        body = self.read(limit)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            kind = self.content_type or "no content type"
            raise ApiError(
                f"{self.method} {_path_of(self.url)} answered HTTP {self.status} with a body that "
                f"is not valid JSON ({kind}, {len(body)} bytes).",
                hint="A proxy in front of the tenant may have answered; run with -v to see the trace.",
            ) from error

    def close(self) -> None:
        self._raw.close()

    def _too_large(self, limit: int) -> ApiError:
        return ApiError(
            f"{self.method} {_path_of(self.url)} answered with a body larger than "
            f"{_size(limit)}; refusing to read it into memory.",
            hint="For large downloads use `qlikm2m api ... --output-file FILE`.",
        )


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MiB"
    return f"{limit / 1024:g} KiB"


def _body_error(error: BaseException, response: Response) -> QlikM2MError:
    if isinstance(error, QlikM2MError):
        return error
    from qlikm2m.http.causes import _cause_text

    text = _cause_text(error)
    host = urlsplit(response.url).hostname or "the tenant"
    if "timed out" in text.lower():
        return NetworkError(
            f"{host} stopped sending the response body of {response.method} "
            f"{_path_of(response.url)} (read timeout).",
            hint="Raise the read timeout with --read-timeout or QLIKM2M_READ_TIMEOUT if the "
            "server is just slow.",
        )
    return NetworkError(
        f"The response to {response.method} {_path_of(response.url)} was cut off: {text}.",
        hint="Retry; if it keeps happening, check proxies between you and the tenant.",
    )
