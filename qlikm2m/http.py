"""The HTTP layer: one session, timeouts, TLS, retries, redirects and Qlik error parsing.

The only module that imports ``requests`` (and ``truststore``), and only when a request is made:
``import requests`` alone costs about 0.2 s, which a ``--help`` should not pay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urljoin, urlsplit

from qlikm2m import __version__
from qlikm2m.errors import ApiError, AuthError, NetworkError, QlikM2MError
from qlikm2m.redaction import redact

if TYPE_CHECKING:
    import ssl

    import requests

Params = Mapping[str, str] | Sequence[tuple[str, str]] | None
# The requests.Session that qlikm2m.library.session() hands out, named here so that requests is
# imported in this module only.
RequestsSession: TypeAlias = "requests.Session"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Bodies read whole (JSON pages, objects) are bounded: a hostile or broken server must not make
# us hold hundreds of MB. Error bodies need far less to say what went wrong.
MAX_JSON_BODY = 64 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 10
CHUNK_SIZE = 64 * 1024
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 8.0
_RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")
_CA_HINT = (
    "If the tenant or a TLS-inspecting proxy uses a private CA, pass --ca-bundle FILE.pem or set "
    "QLIK_CA_BUNDLE (the system trust store is always used as well)."
)


@dataclass(frozen=True)
class HttpOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retry_wait: float = 60.0
    max_retries: int = 4
    ca_bundle: str | None = None


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: what "same origin" compares."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@``: proxy URLs often carry a password."""
    from urllib.parse import urlunsplit

    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{netloc}", parts.path, "", ""))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path or "/"


# --- responses ----------------------------------------------------------------------------------


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


# --- Qlik error bodies --------------------------------------------------------------------------


@dataclass(frozen=True)
class QlikErrorInfo:
    title: str | None = None
    detail: str | None = None
    code: str | None = None
    trace_id: str | None = None
    html: bool = False

    @property
    def text(self) -> str:
        parts = [p.rstrip(". ") for p in (self.title, self.detail) if p and p.rstrip(". ")]
        if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
            parts = parts[1:]
        text = ": ".join(parts)
        if self.code and text:
            text += f" ({self.code})"
        return text


def _clean(value: Any, limit: int = 300) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(body: bytes, content_type: str = "") -> QlikErrorInfo:
    """Read Qlik's error shape in all its variants; never raises.

    ``{"errors": [{"code", "title", "detail", "status"}], "traceId"}`` with ``status`` a number, a
    string or absent depending on the service; RFC 6749 ``error``/``error_description``; a bare
    ``message``; an HTML page from a proxy; plain text; or nothing at all.
    """
    try:
        text = body.decode("utf-8", errors="replace").strip()
    except Exception:  # pragma: no cover - bytes.decode with "replace" does not raise
        return QlikErrorInfo()
    if not text:
        return QlikErrorInfo()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            return _from_json(data)
    if "html" in content_type or text[:1] == "<":
        return _from_html(text)
    first_line = text.splitlines()[0] if text.splitlines() else text
    return QlikErrorInfo(detail=_clean(first_line, 200))


def _from_json(data: Any) -> QlikErrorInfo:
    if isinstance(data, list):
        data = {"errors": data}
    if not isinstance(data, dict):
        return QlikErrorInfo(detail=_clean(data, 200))
    trace_id = _clean(data.get("traceId") or data.get("traceid"), 64)
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return QlikErrorInfo(
            title=_clean(first.get("title")),
            detail=_clean(first.get("detail")),
            code=_clean(first.get("code"), 64),
            trace_id=trace_id,
        )
    if isinstance(data.get("error"), str):
        return QlikErrorInfo(
            title=_clean(data.get("error")),
            detail=_clean(data.get("error_description")),
            trace_id=trace_id,
        )
    if isinstance(data.get("error"), dict):
        return _from_json({"errors": [data["error"]], "traceId": data.get("traceId")})
    return QlikErrorInfo(
        title=_clean(data.get("title")),
        detail=_clean(data.get("message") or data.get("detail")),
        code=_clean(data.get("code"), 64),
        trace_id=trace_id,
    )


def _from_html(text: str) -> QlikErrorInfo:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL) or re.search(
        r"<h1[^>]*>(.*?)</h1>", text, re.IGNORECASE | re.DOTALL
    )
    title = _clean(re.sub(r"<[^>]+>", " ", match.group(1)), 120) if match else None
    return QlikErrorInfo(title=title, html=True)


def error_sentence(response: Response, info: QlikErrorInfo) -> str:
    """One sentence naming the request, the status and what the server said."""
    status = f"HTTP {response.status}" + (f" {response.reason}" if response.reason else "")
    sentence = f"{response.method} {_path_of(response.url)} failed with {status}"
    # Said once: "HTTP 404 Not Found: Item not found", not "...Not Found: Not Found: ... (HTTP-404)".
    info = replace(
        info,
        title=None if (info.title or "").lower() == (response.reason or "").lower() else info.title,
        code=None if info.code == f"HTTP-{response.status}" else info.code,
    )
    if info.html:
        said = f" ({info.title})" if info.title else ""
        sentence += f": the answer was an HTML page{said}, probably from a proxy or load balancer"
    elif info.text:
        sentence += f": {info.text}"
    if response.attempts > 1:
        sentence += f", after {response.attempts} attempts"
    return redact(sentence.rstrip(".") + ".")


def error_for(response: Response) -> QlikM2MError:
    """The project error for a final non-2xx response (after retries and redirects)."""
    info = parse_error_body(response.read_prefix(), response.content_type)
    message = error_sentence(response, info)
    details: dict[str, Any] = {"status": response.status}
    if info.code:
        details["code"] = info.code
    if info.trace_id:
        details["traceId"] = info.trace_id
    status = response.status
    if status == 401:
        return AuthError(
            message,
            hint="The tenant refused the token: check the OAuth client's scopes and that it is "
            "still enabled.",
            details=details,
        )
    if status == 429:
        wait = response.headers.get("retry-after")
        return NetworkError(
            message,
            hint="The tenant's rate limit was reached"
            + (f" (it asks to wait {wait} s)" if wait else "")
            + "; retry later, or allow a longer wait with QLIKM2M_MAX_RETRY_WAIT.",
            details=details,
        )
    if status >= 500:
        return NetworkError(
            message, hint="The tenant or a proxy is failing; retry later.", details=details
        )
    if status == 403:
        hint = "The OAuth client (or its bot user) lacks the permission or scope for this."
    elif status == 404:
        hint = "Check the path and the ids in it."
    else:
        hint = None
    return ApiError(message, hint=_CODE_HINTS.get(info.code or "", hint), details=details)


# Errors whose code says more than their status. RELOADS-005 is a 403 for an app id that matches
# nothing the client can see: a typo far more often than a missing permission (reloads.json).
_CODE_HINTS = {
    "RELOADS-005": "Check the app id: no app with this id is visible to the OAuth client "
    "(`qlikm2m apps ls` lists the ids it can see); if the id is right, give the client access "
    "to the app's space.",
}


def raise_for_status(response: Response) -> Response:
    if response.status >= 400 or response.status < 200:
        raise error_for(response)
    return response


# --- retry timing -------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``retry-after`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, rand: Callable[[], float] | None = None) -> float:
    """Exponential backoff with jitter: between half and all of 0.5 s * 2^attempt (capped)."""
    if rand is None:
        import random

        rand = random.random
    base = min(_BACKOFF_CAP, _BACKOFF_BASE * (2.0**attempt))
    return base * (0.5 + rand() / 2)


# --- the transport ------------------------------------------------------------------------------


def _cause_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: requests and urllib3 nest the real cause deeply."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        for attribute in ("reason", "__cause__", "__context__"):
            linked = getattr(current, attribute, None)
            if isinstance(linked, BaseException):
                stack.append(linked)


def _cause_text(error: BaseException) -> str:
    import socket
    from http.client import IncompleteRead

    for cause in _cause_chain(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, IncompleteRead):
            # urllib3's subclass counts bytes (ints); the standard library's keeps the bytes.
            partial, missing = cause.partial, cause.expected
            got = partial if isinstance(partial, int) else len(partial)
            short = f", {missing} bytes short of its Content-Length" if missing else ""
            return f"the server closed the connection after {got} bytes of the body{short}"
    text = str(error)
    if "RemoteDisconnected" in text or "closed connection" in text.lower():
        return "the server closed the connection without answering"
    if "timed out" in text.lower():
        return "timed out"
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>", "", text)
    return _clean(text, 200) or type(error).__name__


def _unresolved(error: BaseException) -> bool:
    """True when a host name (the tenant's, or the proxy's) did not resolve."""
    import socket

    return any(isinstance(cause, socket.gaierror) for cause in _cause_chain(error))


def _nothing_sent(error: BaseException) -> bool:
    """True when the failure happened before the request left: safe to retry any method."""
    from urllib3.exceptions import NewConnectionError

    return any(isinstance(cause, NewConnectionError) for cause in _cause_chain(error))


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The client TLS context: the OS trust store (truststore) plus the CAs of ``ca_bundle``."""
    import ssl

    from qlikm2m.trust import lazy_os_trust_context

    # The OS roots from OpenSSL's hashed directory, read as needed (qlikm2m/trust.py); truststore
    # where that is not the OS's layout.
    context = lazy_os_trust_context()
    if context is None:
        import truststore

        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_bundle and not is_os_trust_file(ca_bundle):
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as error:
            from qlikm2m.errors import ConfigError

            raise ConfigError(
                f"The CA bundle {ca_bundle!r} could not be loaded: {error}.",
                hint="It must be a PEM file with one or more CA certificates.",
            ) from error
    return context


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment_ca_bundle(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, path) of the CA bundle requests takes from the environment, or None.

    requests reads ``$REQUESTS_CA_BUNDLE``, then ``$CURL_CA_BUNDLE``, from the process
    environment for every HTTPS request; a file or a folder of hashed certificates.
    """
    import os

    environ = os.environ if environ is None else environ
    for name in CA_BUNDLE_VARIABLES:
        value = environ.get(name)
        if value:
            return name, value
    return None


def add_environment_ca_bundle(
    context: ssl.SSLContext, path: str, environ: Mapping[str, str] | None = None
) -> None:
    """Load the environment's CA bundle ``path`` into ``context`` (skipped for the OS file).

    Raises ConfigError (exit 3) naming the variable when ``path`` is missing, unreadable or not
    PEM certificates: requests would fail every request with a bare OSError or a misleading
    TLS verification error.
    """
    import os
    import ssl

    from qlikm2m.errors import ConfigError

    found = environment_ca_bundle(environ)
    name = f"${found[0]}" if found and found[1] == path else "The CA bundle variable"
    hint = (
        f"Point {name.lstrip('$')} at a PEM file of CA certificates, or unset it: the system "
        "trust store is always used, and --ca-bundle / QLIK_CA_BUNDLE add a private CA."
    )
    if not os.path.exists(path):
        raise ConfigError(f"{name} names {path}, which does not exist.", hint=hint)
    if os.path.isfile(path) and is_os_trust_file(path):
        return
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as error:
        if isinstance(error, ssl.SSLError) and error.reason:
            reason = error.reason.replace("_", " ").lower()  # NO_CERTIFICATE_OR_CRL_FOUND
        else:
            reason = (error.strerror or str(error)).lower()
        raise ConfigError(
            f"{name} names {path}, which could not be loaded as CA certificates: {reason}.",
            hint=hint,
        ) from None


def is_os_trust_file(path: str) -> bool:
    """Whether ``path`` is the CA file the OS trust store loads anyway.

    On Linux and the BSDs truststore parses OpenSSL's default CA file; CI images and corporate
    set-ups often point REQUESTS_CA_BUNDLE (or QLIK_CA_BUNDLE) at that same file, and parsing its
    ~150 certificates a second time costs 40-100 ms of every command under OpenSSL 3.
    macOS and Windows verify with the OS instead, so there every bundle is loaded.
    """
    import os
    import ssl
    import sys

    if sys.platform in ("darwin", "win32"):
        return False
    default = ssl.get_default_verify_paths().cafile
    if not default:
        return False
    try:
        return os.path.samefile(path, default)
    except OSError:
        return False


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    ``env`` (default: the process environment) by the rules requests, urllib and curl apply:
    ``https_proxy`` or ``http_proxy`` for the URL's scheme, else ``all_proxy`` (each in lower
    case, else upper case), unless ``no_proxy`` matches the host: ``*``, a host or domain suffix
    (``example.com`` or ``.example.com``), ``host:port``, an IP address, or a CIDR block
    (``127.0.0.0/8``). Proxy URLs may be ``http://``, ``https://``, ``socks5://``,
    ``socks5h://`` (names resolved by the proxy), ``socks4://`` or ``socks4a://``. The one
    decision both the transport and ``doctor`` use, on the run's own environment.
    """
    import os

    variables = os.environ if env is None else env

    def variable(name: str) -> str:
        return (variables.get(name) or variables.get(name.upper()) or "").strip()

    parts = urlsplit(url)
    proxy = variable(f"{parts.scheme.lower()}_proxy") or variable("all_proxy")
    if not proxy or _no_proxy_matches(parts.hostname or "", parts.port, variable("no_proxy")):
        return None
    return proxy


def _no_proxy_matches(host: str, port: int | None, no_proxy: str) -> bool:
    import ipaddress

    host = host.lower().strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, entry_port = entry, None
        if entry.startswith("["):  # [v6]:port
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":") or None
        elif entry.count(":") == 1:  # host:port (an IPv6 address has several colons)
            name, entry_port = entry.split(":")
        if entry_port is not None and (port is None or str(port) != entry_port):
            continue
        name = name.lstrip(".")
        if host == name or (address is None and host.endswith("." + name)):
            return True
    return False


def _build_session(options: HttpOptions) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    context = tls_context(options.ca_bundle)
    # requests calls cert_verify before every request: load a bundle once, not per page.
    loaded_bundles: set[str] = set()

    class TrustStoreAdapter(HTTPAdapter):
        """TLS verified by the OS trust store plus the --ca-bundle, for direct and proxied use."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            proxy_kwargs["ssl_context"] = context
            return super().proxy_manager_for(proxy, **proxy_kwargs)

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            # The session does not read the environment (trust_env is off), so the bundle of
            # $REQUESTS_CA_BUNDLE or $CURL_CA_BUNDLE is taken here: checked and loaded into our
            # context once, a bad one named (exit 3) instead of requests' bare OSError.
            bundle = verify if isinstance(verify, str) else None
            if verify is True:
                from_environment = environment_ca_bundle()
                bundle = from_environment[1] if from_environment else None
            if bundle is not None and bundle not in loaded_bundles:
                add_environment_ca_bundle(context, bundle)
                loaded_bundles.add(bundle)
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            # requests would add certifi's bundle (or the environment's) to our context for
            # every connection: the OS store replaces the first, the second is in it already.
            conn.ca_certs = None
            conn.ca_cert_dir = None

    session = requests.Session()
    # Proxies come from proxy_for() and the CA bundle from cert_verify above, so that doctor and
    # the transport decide alike; and ~/.netrc must never replace the bearer token with a
    # Basic Authorization header, as requests does when it reads the environment.
    session.trust_env = False
    adapter = TrustStoreAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"qlikm2m/{__version__} python-requests/{requests.__version__}"
    session.headers["Accept"] = "application/json"
    return session


class Transport:
    """Sends requests: retries, same-origin redirects, a redacted trace. Never raises for a status;
    ``raise_for_status`` turns the final one into the project's error."""

    def __init__(
        self,
        options: HttpOptions,
        *,
        trace: IO[str] | None = None,
        notices: IO[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] | None = None,
        trace_headers: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        # Proxy variables come from the run's environment (requests' own reading is off).
        self._env = env
        self._trace_stream = trace
        # A person at a terminal sees each retry, so a wait is never a silent hang.
        self._notice_stream = notices
        self._trace_headers = trace_headers
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._session: requests.Session | None = None
        self._proxies: dict[tuple[str, str, int], dict[str, str]] = {}

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = _build_session(self.options)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _proxies_for(self, url: str) -> dict[str, str]:
        """requests' ``proxies`` argument for ``url``, from ``proxy_for``, once per origin."""
        origin = origin_of(url)
        if origin not in self._proxies:
            proxy = proxy_for(url, self._env)
            self._proxies[origin] = {"http": proxy, "https": proxy} if proxy else {}
            if proxy:
                self._trace(f"* through the proxy {without_userinfo(proxy)}")
        return self._proxies[origin]

    def _retrying(self, delay: float, after: str, attempt: int) -> None:
        """One line per retry: in the -v trace, or else on ``notices`` (a terminal)."""
        total = self.options.max_retries + 1
        line = f"retrying in {delay:.1f} s after: {after} (attempt {attempt + 1} of {total})"
        if self._trace_stream is not None:
            self._trace(f"! {line}")
        elif self._notice_stream is not None:
            self._notice_stream.write(redact(line) + "\n")
            self._notice_stream.flush()

    def _trace(self, line: str) -> None:
        if self._trace_stream is not None:
            self._trace_stream.write(redact(line) + "\n")
            self._trace_stream.flush()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        bearer: str | None = None,
        follow_redirects: bool = True,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one logical request, following redirects and retrying what is safe to retry."""
        method = method.upper()
        origin = origin_of(url)
        body = data
        extra = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            extra.setdefault("Content-Type", "application/json")
        for _ in range(MAX_REDIRECTS + 1):
            send_headers = dict(extra)
            if bearer and origin_of(url) == origin:
                send_headers["Authorization"] = f"Bearer {bearer}"
            response = self._send_with_retries(
                method,
                url,
                params=params,
                headers=send_headers,
                body=body,
                idempotent=(method in IDEMPOTENT_METHODS) if idempotent is None else idempotent,
            )
            location = response.headers.get("location")
            if not (follow_redirects and response.status in (301, 302, 303, 307, 308) and location):
                return response
            response.read_prefix(MAX_ERROR_BODY)  # drain small bodies so the connection is reused
            url = urljoin(response.url, location)
            params = None  # the Location is complete
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                extra.pop("Content-Type", None)
            if origin_of(url) != origin:
                if body is not None:
                    # A 307/308 re-sends the body, and the token request's body holds the client
                    # secret: it must never go to a host other than the tenant.
                    raise _cross_origin_body(response, url)
                self._trace(f"* redirected to another origin: {url} (Authorization not sent)")
        raise NetworkError(
            f"Too many redirects (more than {MAX_REDIRECTS}) starting from {_path_of(url)}.",
            hint="The tenant or a proxy redirects in a loop; check the tenant URL.",
        )

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        params: Params,
        headers: dict[str, str],
        body: bytes | None,
        idempotent: bool,
    ) -> Response:
        waited = 0.0
        attempt = 0
        budget = self.options.max_retry_wait
        while True:
            attempt += 1
            started = time.monotonic()
            self._trace(f"> {method} {self._display_url(url, params)}")
            if self._trace_headers:
                for name, value in headers.items():
                    shown = "Bearer ***" if name.lower() == "authorization" else value
                    self._trace(f">   {name}: {shown}")
            try:
                raw = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    data=body,
                    stream=True,
                    allow_redirects=False,
                    proxies=self._proxies_for(url),
                    timeout=(self.options.connect_timeout, self.options.read_timeout),
                )
            except Exception as error:
                failure = self._transport_error(error, method, url)
                retryable = isinstance(failure, _Retryable) and (idempotent or failure.unsent)
                delay = backoff_delay(attempt - 1, self._rand)
                if retryable and attempt <= self.options.max_retries and waited + delay <= budget:
                    self._retrying(delay, _cause_text(error), attempt)
                    self._sleep(delay)
                    waited += delay
                    continue
                raise failure.error(attempt) from None
            elapsed_ms = (time.monotonic() - started) * 1000
            response = Response(raw, method=method, attempts=attempt, waited=waited)
            self._trace_response(response, elapsed_ms)
            delay_or_none = self._retry_delay(response, idempotent, attempt)
            if delay_or_none is None or attempt > self.options.max_retries:
                return response
            if waited + delay_or_none > budget:
                self._trace(
                    f"! not retrying: waiting {delay_or_none:.1f} s would exceed the "
                    f"{budget:g} s retry budget"
                )
                return response
            response.read_prefix(MAX_ERROR_BODY)
            status = f"HTTP {response.status} {response.reason}".strip()
            self._retrying(delay_or_none, status, attempt)
            self._sleep(delay_or_none)
            waited += delay_or_none

    def _retry_delay(self, response: Response, idempotent: bool, attempt: int) -> float | None:
        status = response.status
        if status in (429, 503):
            # The server asked us to come back: the request was not processed, any method is safe.
            after = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
            return after if after is not None else backoff_delay(attempt - 1, self._rand)
        if status in (502, 504) and idempotent:
            return backoff_delay(attempt - 1, self._rand)
        return None

    def _display_url(self, url: str, params: Params) -> str:
        if not params:
            return url
        from urllib.parse import urlencode

        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        return url + ("&" if "?" in url else "?") + urlencode(items)

    def _trace_response(self, response: Response, elapsed_ms: float) -> None:
        if self._trace_stream is None:
            return
        limits = [
            f"{name}={response.headers[name]}"
            for name in _RATE_LIMIT_HEADERS
            if name in response.headers
        ]
        line = f"< {response.status} {response.reason} ({elapsed_ms:.0f} ms)"
        if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
            line += f" -> {response.headers['location']}"
        if limits:
            line += "  " + " ".join(limits)
        self._trace(line)
        if self._trace_headers:
            for name, value in response.headers.items():
                shown = "***" if name.lower() in ("set-cookie", "authorization") else value
                self._trace(f"<   {name}: {shown}")

    def _transport_error(self, error: BaseException, method: str, url: str) -> _Failure:
        import requests

        host = urlsplit(url).hostname or url
        where = f"{method} {_path_of(url)}"
        if isinstance(error, QlikM2MError):
            return _Failure(error)
        if isinstance(error, requests.exceptions.SSLError):
            return _Failure(
                NetworkError(
                    f"TLS verification of {host} failed: {_tls_reason(error)}.", hint=_CA_HINT
                )
            )
        if isinstance(error, requests.exceptions.ProxyError):
            return _Failure(
                NetworkError(
                    f"The proxy refused or failed {where}: {_cause_text(error)}.",
                    hint="Check HTTPS_PROXY/HTTP_PROXY and NO_PROXY.",
                )
            )
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return _Failure(
                NetworkError(
                    f"Could not connect to {host} within the connect timeout of "
                    f"{self.options.connect_timeout:g} s.",
                    hint="Check the tenant URL and the network; raise --connect-timeout or "
                    "QLIKM2M_CONNECT_TIMEOUT if the network is slow.",
                )
            )
        if isinstance(error, requests.exceptions.ReadTimeout):
            return _Failure(
                NetworkError(
                    f"{host} did not answer {where} within the read timeout of "
                    f"{self.options.read_timeout:g} s.",
                    hint="Raise --read-timeout or QLIKM2M_READ_TIMEOUT if the server is just slow.",
                )
            )
        if isinstance(error, requests.exceptions.ConnectionError):
            proxy = self._proxies.get(origin_of(url), {}).get("https")
            if proxy:
                failure = NetworkError(
                    f"Could not reach {host} for {where} through the proxy "
                    f"{without_userinfo(proxy)}: {_cause_text(error)}.",
                    hint="Check that the proxy runs and the proxy variables (HTTPS_PROXY, "
                    "ALL_PROXY, NO_PROXY); `qlikm2m doctor` shows which one applies.",
                )
            else:
                failure = NetworkError(
                    f"Could not reach {host} for {where}: {_cause_text(error)}.",
                    hint="Check the tenant URL, DNS, proxies (HTTPS_PROXY/NO_PROXY) and firewall.",
                )
            if _unresolved(error):
                # A name that does not resolve now will not in the next seconds either: a
                # typo in the URL or a missing VPN. Retrying only made it fail 5 s later.
                return _Failure(failure)
            return _Retryable(failure, unsent=_nothing_sent(error))
        if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            from qlikm2m.errors import ConfigError

            return _Failure(ConfigError(f"Invalid URL for {where}: {_cause_text(error)}."))
        if isinstance(error, requests.exceptions.RequestException):
            return _Failure(NetworkError(f"{where} failed: {_cause_text(error)}."))
        raise error


def _cross_origin_body(response: Response, target: str) -> ApiError:
    parts = urlsplit(target)
    return ApiError(
        f"{response.method} {_path_of(response.url)} was redirected (HTTP {response.status}) to "
        f"another origin, {parts.scheme}://{parts.netloc}; not re-sending the request body there.",
        hint="The body may hold credentials (the token request carries the client secret). Check "
        "the tenant URL and any proxy between you and the tenant.",
    )


def _tls_reason(error: BaseException) -> str:
    import ssl

    for cause in _cause_chain(error):
        # OpenSSL's own words, with the name that was checked ("... not valid for 'host'").
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return (
                _clean(str(cause.verify_message).rstrip(". "), 160) or "certificate verify failed"
            )
    text = str(error)
    for pattern in (
        r"certificate verify failed: ([^(\]'\")]+)",
        r"(hostname mismatch[^'\")]*)",
        r"(wrong version number)",
        r"(handshake failure)",
    ):
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return _clean(match.group(1), 160) or "certificate verify failed"
    return "the certificate could not be verified"


class _Failure:
    def __init__(self, error: QlikM2MError) -> None:
        self._error = error
        self.unsent = False

    @property
    def message(self) -> str:
        return self._error.message

    def error(self, attempts: int) -> QlikM2MError:
        if attempts > 1:
            self._error.message = self._error.message.rstrip(".") + f" (after {attempts} attempts)."
        return self._error


class _Retryable(_Failure):
    def __init__(self, error: QlikM2MError, *, unsent: bool) -> None:
        super().__init__(error)
        self.unsent = unsent


# --- streamed request bodies (uploads) ------------------------------------------------------------


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
