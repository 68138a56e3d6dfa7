"""The Python library: qlikm2m's contexts, keyring, token cache, retries, redirects and pagination
for scripts (``import qlikm2m``; documented in docs/library.md).

Everything goes through the CLI's own modules: settings are resolved by ``settings.resolve_settings``
(flag-like arguments > environment > the chosen or current context), tokens come from
``tokens.TokenManager`` (the same cache files, the same single-flight minting across processes),
requests from ``client.QlikClient`` and ``http.Transport`` (bounded retries, 429 ``Retry-After``,
the ``*/me`` redirects with the token sent to the tenant's own origin only). Errors are the CLI's
(``qlikm2m.errors``), each with its documented exit code.

``session()`` hands out a ``requests.Session`` for code that already speaks requests. It is the
session ``http.Transport`` builds (the one module that imports requests configures TLS with the OS
trust store and the CA bundle); this module only attaches ``QlikAuth``, a plain callable (requests
takes any callable as ``auth``), so requests stays imported in ``qlikm2m.http`` alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from qlikm2m.errors import ApiError, AuthError, ConfigError, NetworkError, QlikM2MError

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.http import Params, RequestsSession
    from qlikm2m.settings import ResolvedSettings
    from qlikm2m.tokens import Token, TokenManager

__all__ = [
    "ApiError",
    "AuthError",
    "Client",
    "ConfigError",
    "NetworkError",
    "QlikAuth",
    "QlikM2MError",
    "paginate",
    "session",
    "token",
]

_RESENT = "_qlikm2m_resent"  # marks a request QlikAuth already re-sent after a 401


class Client:
    """Authenticated access to one tenant, from a context or from the environment.

    ``Client()`` resolves settings exactly as a ``qlikm2m`` command without flags does:
    ``$QLIK_CONTEXT`` or the current context, or ``QLIK_SERVER`` with ``QLIK_CLIENT_ID`` and
    ``QLIK_CLIENT_SECRET`` (or ``QLIK_API_KEY``, ``QLIK_ACCESS_TOKEN``). ``Client("prod")`` uses
    that context (its secret from the OS keyring, read only when a token must be minted).
    ``server``, ``client_id`` and ``scope`` override like the CLI's ``--server``, ``--client-id``
    and ``--scope``; ``env`` replaces ``os.environ`` (the secret variables are read from it).

    Raises ConfigError (no or unknown context, no credentials, a bad URL). Use it as a context
    manager, or call ``close()``, to release its connections.
    """

    def __init__(
        self,
        context: str | None = None,
        *,
        server: str | None = None,
        client_id: str | None = None,
        scope: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        import io

        from qlikm2m.client import QlikClient
        from qlikm2m.runtime import Runtime
        from qlikm2m.settings import resolve_settings

        # A library never prompts and never traces: stdin is empty, -v is off.
        self._runtime = Runtime(
            env=dict(os.environ if env is None else env), stdin=io.StringIO(), no_input=True
        )
        self._runtime.context = context
        self._settings: ResolvedSettings = resolve_settings(
            self._runtime, server=server, client_id=client_id, scope=scope
        )
        self._client: QlikClient = QlikClient(self._settings, self._runtime)
        # The close() of each session handed out, as requests defined it.
        self._session_closers: list[Callable[[], None]] = []

    @property
    def server(self) -> str:
        """The tenant URL, normalised: ``https://tenant.eu.qlikcloud.com`` (no trailing slash)."""
        return self._settings.server_url

    @property
    def context(self) -> str | None:
        """The name of the context the settings came from, or None (environment only)."""
        return self._settings.context_name.value

    def token(self) -> str:
        """A valid access token: cached while it has more than 5 minutes left, else minted (and
        cached for every process and the CLI). Raises AuthError, NetworkError, KeyringError."""
        return self._client.tokens.token().value

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``v1/items``, ``/api/v1/items``, ``api/v1/items``)."""
        return self._client.url_for(path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return its JSON body (None when empty).

        ``path`` as for ``url``. Retries 429/503 (honouring ``Retry-After``) and 502/504 on
        idempotent methods within the retry budget, follows redirects (the token only to the
        tenant's origin), re-mints once after a 401 on a cached token. Raises ApiError (4xx),
        AuthError (401 after the re-mint), NetworkError (unreachable, 5xx or 429 after retries).
        """
        response = self._client.request(method, path, params=params, json=json, headers=headers)
        return response.json()

    def get(self, path: str, params: Params = None) -> Any:
        """``GET`` a resource and return its JSON, e.g. ``get("v1/users/me")`` (follows the 301)."""
        return self.request("GET", path, params=params)

    def paginate(self, path: str, params: Params = None) -> Iterator[dict[str, Any]]:
        """Every item (the ``data`` arrays) of every page of a list, fetched page by page as the
        iteration goes, following ``links.next.href`` as given. Raises ApiError when the endpoint
        is not a list."""
        return self._client.paginate(path, params)

    def session(self) -> RequestsSession:
        """A ``requests.Session`` whose requests to the tenant carry a token from the cache
        (``QlikAuth``): see that class. Closed with the client."""
        from qlikm2m.http import Transport

        transport = Transport(self._settings.http_options())
        handed_out = transport.session
        handed_out.auth = QlikAuth(self)
        self._session_closers.append(handed_out.close)
        return handed_out

    @property
    def _tokens(self) -> TokenManager:
        return self._client.tokens

    def close(self) -> None:
        """Release the connections of the client and of the sessions it handed out."""
        closers, self._session_closers = self._session_closers, []
        for close_session in closers:
            close_session()
        self._client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class QlikAuth:
    """requests authentication for a ``Client``: ``session.auth = QlikAuth(client)``.

    - Adds ``Authorization: Bearer <token>`` to requests for the tenant's origin only (scheme,
      host and port), with the token from the shared cache (minted when needed).
    - After a 401 on a cached token, re-mints once and re-sends the request.
    - After a 429 or 503 with ``Retry-After``, waits that long and re-sends, within the client's
      retry budget (``QLIKM2M_MAX_RETRIES``, ``QLIKM2M_MAX_RETRY_WAIT``).
    - Redirects are requests' own: it keeps the header for the same host (the ``*/me`` redirects)
      and drops it for any other; a 401 from another origin is never answered with a token.
    """

    def __init__(self, client: Client) -> None:
        from qlikm2m.http import origin_of

        self._client = client
        self._origin = origin_of(client.server)
        self._issued: dict[str, Token] = {}

    def _for_tenant(self, url: str | None) -> bool:
        from qlikm2m.http import origin_of

        return url is not None and origin_of(url) == self._origin

    def _bearer(self) -> str:
        current = self._client._tokens.token()
        self._issued[current.value] = current
        return current.value

    # requests' PreparedRequest and Response: typed loosely so that requests is imported in
    # qlikm2m.http only.
    def __call__(self, request: Any) -> Any:
        if self._for_tenant(request.url):
            request.headers["Authorization"] = f"Bearer {self._bearer()}"
            request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response: Any, **send_options: Any) -> Any:
        from qlikm2m.http import backoff_delay, parse_retry_after

        settings = self._client._settings
        budget = settings.seconds("max_retry_wait")
        waited = 0.0
        attempt = 0
        while self._for_tenant(response.request.url):
            status = response.status_code
            if status == 401 and not getattr(response.request, _RESENT, False):
                sent = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
                rejected = self._issued.get(sent)
                replacement = (
                    self._client._tokens.after_unauthorized(rejected) if rejected else None
                )
                if replacement is None:
                    return response
                self._issued[replacement.value] = replacement
                response = self._resend(response, replacement.value, send_options, mark=True)
                continue
            if status in (429, 503) and attempt < settings.retries:
                delay = parse_retry_after(response.headers.get("retry-after"), now=time.time())
                delay = backoff_delay(attempt) if delay is None else delay
                if waited + delay > budget:
                    return response
                time.sleep(delay)
                waited += delay
                attempt += 1
                response = self._resend(response, self._bearer(), send_options, mark=False)
                continue
            return response
        return response

    @staticmethod
    def _resend(response: Any, bearer: str, send_options: dict[str, Any], *, mark: bool) -> Any:
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        again = response.request.copy()
        again.headers["Authorization"] = f"Bearer {bearer}"
        setattr(again, _RESENT, mark or getattr(response.request, _RESENT, False))
        answer = response.connection.send(again, **send_options)
        answer.history.append(response)
        answer.request = again
        return answer


def token(context: str | None = None) -> str:
    """A valid access token for ``context`` (or the environment / current context): the CLI's
    cached one while it has more than 5 minutes left. Same errors as ``Client``."""
    with Client(context) as client:
        return client.token()


def session(context: str | None = None) -> RequestsSession:
    """A ``requests.Session`` bound to ``context`` (or the environment / current context), with
    ``QlikAuth`` attached; close it when done. Use ``client.url(path)`` or the tenant URL
    (``$QLIK_SERVER``) to build URLs: the token is only sent to the tenant's origin."""
    client = Client(context)
    handed_out = client.session()
    # The session owns the client from here: closing it closes the client's connections too.
    handed_out.close = client.close  # type: ignore[method-assign]
    return handed_out


def paginate(
    path: str, params: Params = None, *, context: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every item of a list endpoint (e.g. ``paginate("v1/items", {"resourceType": "app"})``),
    page by page as the iteration goes. Same errors as ``Client.paginate``."""
    with Client(context) as client:
        yield from client.paginate(path, params)
