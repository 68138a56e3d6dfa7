"""The transport: one requests session, retries, same-origin redirects, a redacted trace."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from qlikm2m import __version__
from qlikm2m.errors import ApiError, NetworkError, QlikM2MError
from qlikm2m.http.base import (
    IDEMPOTENT_METHODS,
    MAX_ERROR_BODY,
    MAX_REDIRECTS,
    HttpOptions,
    Params,
    _path_of,
    origin_of,
    without_userinfo,
)
from qlikm2m.http.proxies import proxy_for
from qlikm2m.http.responses import Response
from qlikm2m.http.retries import _Failure, _Retryable, backoff_delay, parse_retry_after
from qlikm2m.http.tls import (
    _CA_HINT,
    _tls_reason,
    add_environment_ca_bundle,
    environment_ca_bundle,
    tls_context,
)
from qlikm2m.redaction import redact

if TYPE_CHECKING:
    import requests

_RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")


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
            # The connection pool of each origin reached directly, once urllib3 has given it:
            # finding it again costs requests two URL parses and urllib3 a pool key (a tuple of
            # 30 normalised settings) under the pool manager's lock, on every request.
            self._direct_pools: dict[tuple[str, str], Any] = {}
            super().init_poolmanager(*args, **kwargs)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            direct = not proxies and verify is True and cert is None
            scheme, _, rest = str(request.url).partition("://")
            origin = (scheme.lower(), rest.partition("/")[0])
            remembered = self._direct_pools.get(origin) if direct else None
            if remembered is not None and remembered.pool is not None:  # None: the pool closed
                return remembered
            # A new pool may push the least recently used one out of urllib3's pool manager
            # (urllib3 1.x closes it then): none is remembered past that.
            self._direct_pools.clear()
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if direct:
                self._direct_pools[origin] = pool
            return pool

        def close(self) -> None:
            self._direct_pools.clear()
            super().close()

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
            if verify is True and cert is None:
                # What requests would leave (its https branch) once the lines below cleared
                # the path it sets, without its two stat() calls of certifi's bundle on every
                # request: certifi is never used (this adapter is mounted for https:// only).
                conn.cert_reqs = "CERT_REQUIRED"
                conn.ca_certs = None
                conn.ca_cert_dir = None
                return
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
            if self._trace_stream is not None:
                self._trace(f"> {method} {self._display_url(url, params)}")
            if self._trace_headers:
                for name, value in headers.items():
                    shown = "Bearer ***" if name.lower() == "authorization" else value
                    self._trace(f">   {name}: {shown}")
            try:
                raw = self._send_once(method, url, params, headers, body)
            except Exception as error:
                failure = self._transport_error(error, method, url)
                retryable = isinstance(failure, _Retryable) and (idempotent or failure.unsent)
                delay = backoff_delay(attempt - 1, self._rand)
                if retryable and attempt <= self.options.max_retries and waited + delay <= budget:
                    from qlikm2m.http.causes import _cause_text

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

    def _send_once(
        self, method: str, url: str, params: Params, headers: dict[str, str], body: bytes | None
    ) -> requests.Response:
        """One exchange, through the session's mounted adapter (``HTTPAdapter.send``).

        What ``Session.request`` and ``Session.send`` would add around the adapter, each paid on
        every page of a listing, is either done here as this session needs it or not needed:

        - the per-call merge of the session's settings with the request's (headers, params,
          hooks, cookies, proxies, verify, the environment): the PreparedRequest is built here,
          session headers first, ours over them; proxies come from ``proxy_for``;
        - cookies: the session's jar is sent when it holds any and filled from a response that
          sets one (``Set-Cookie``), as ``Session.send`` does; a response without one would add
          nothing, so cookielib is not run over it;
        - basic auth from ``user:password@`` in the URL: only looked for when the URL has an
          ``@`` (trust_env is off, so ~/.netrc is never read);
        - response hooks: this session is never handed out (``library.session()`` builds its
          own), so it has none;
        - ``resolve_redirects``' look-ahead at a redirect (it read the redirect's whole body,
          unbounded, and prepared the next request): ``request`` follows redirects itself.
        """
        from requests import PreparedRequest
        from requests.structures import CaseInsensitiveDict

        session = self.session
        merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        prepared = PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, params or None)
        prepared.prepare_headers(merged)
        jar = session.cookies
        if len(jar):
            prepared.prepare_cookies(jar)
        prepared.prepare_body(body, None)
        if "@" in (prepared.url or ""):
            prepared.prepare_auth(None, prepared.url)
        adapter = session.get_adapter(prepared.url or url)
        raw = adapter.send(
            prepared,
            stream=True,
            timeout=(self.options.connect_timeout, self.options.read_timeout),
            verify=True,
            cert=None,
            proxies=dict(self._proxies_for(url)),
        )
        if "set-cookie" in raw.headers or "set-cookie2" in raw.headers:
            from requests.cookies import extract_cookies_to_jar

            extract_cookies_to_jar(jar, prepared, raw.raw)  # type: ignore[no-untyped-call]
        return raw

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

        # Loaded here, on a failure only: a run whose requests succeed does not import them.
        from qlikm2m.http.causes import _cause_text, _nothing_sent, _unresolved

        host = urlsplit(url).hostname or url
        where = f"{method} {_path_of(url)}"
        if isinstance(error, QlikM2MError):
            return _Failure(error)
        if isinstance(error, requests.exceptions.SSLError):
            if _answered_in_plain_http(error):
                # A TLS hello answered with "HTTP/1.x 400": no certificate was involved, so the
                # CA hint would send the person the wrong way (the sandbox serves plain http).
                origin = urlsplit(url)
                plain = f"http://{origin.netloc}"
                return _Failure(
                    NetworkError(
                        f"{origin.netloc} answered in plain HTTP, not TLS: it speaks http://, "
                        "or the port is not the tenant's HTTPS port.",
                        hint=f"Use {plain} (plain http is allowed for loopback hosts only), or "
                        "check the port.",
                        details={"plainHttp": True},
                    )
                )
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


def _answered_in_plain_http(error: BaseException) -> bool:
    """OpenSSL's reading of a plain-HTTP answer to a TLS hello: WRONG_VERSION_NUMBER (or the
    HTTP_REQUEST/record-layer reasons some builds give)."""
    text = str(error).lower()
    return any(
        reason in text
        for reason in ("wrong version number", "wrong_version_number", "http request")
    )
