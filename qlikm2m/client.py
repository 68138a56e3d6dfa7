"""The facade every command uses to talk to a tenant: bearer tokens, the 401 re-mint, paths, pages."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from qlikm2m.errors import ApiError, AuthError, UsageError

_LOOP_WINDOW = 64

if TYPE_CHECKING:
    from qlikm2m.http import Params, Response
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import ResolvedSettings
    from qlikm2m.tokens import Token


class QlikClient:
    """Authenticated requests to one tenant, resolved once per command."""

    def __init__(
        self, settings: ResolvedSettings, runtime: Runtime, *, use_token_cache: bool = True
    ) -> None:
        from qlikm2m.http import Transport
        from qlikm2m.tokens import TokenManager

        self.settings = settings
        self.runtime = runtime
        options = settings.http_options()
        self.transport = Transport(
            options,
            trace=runtime.stderr if runtime.verbose else None,
            notices=runtime.stderr if runtime.stderr_is_tty else None,
            trace_headers=runtime.verbose >= 2,
            env=runtime.env,
        )
        self.tokens = TokenManager(
            settings,
            runtime.env,
            self.transport,
            use_cache=use_token_cache,
            warn=lambda message: runtime.stderr.write(f"warning: {message}\n"),
        )

    # -- URLs --

    def url_for(self, path: str) -> str:
        """``/api/v1/items``, ``api/v1/items``, ``v1/items`` or a same-origin absolute URL."""
        from qlikm2m.http import origin_of

        path = path.strip()
        base = self.settings.server_url
        if "://" in path:
            if origin_of(path) != origin_of(base):
                raise UsageError(
                    f"Refusing to send the token to {urlsplit(path).netloc or path}: it is not "
                    f"the tenant {base}.",
                    hint="Give a path such as v1/items, or a URL on the tenant itself.",
                )
            return path
        if not path:
            raise UsageError("The API path is empty.", hint="e.g. qlikm2m api v1/items")
        if path.startswith("/"):
            return base + path
        if path.lower().startswith("api/"):
            return f"{base}/{path}"
        return f"{base}/api/{path}"

    # -- requests --

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        follow_redirects: bool = True,
        check: bool = True,
    ) -> Response:
        """Send a request with a bearer token; a 401 on a cached token re-mints once and retries.

        ``stream`` is accepted for the interface's sake: bodies are always read on demand
        (``Response.iter_bytes``) or bounded (``Response.json``).
        """
        del stream
        url = self.url_for(path)
        token = self.tokens.token()
        response = self._send(method, url, token, params, json, data, headers, follow_redirects)
        if response.status == 401:
            replacement = self.tokens.after_unauthorized(token)
            if replacement is not None:
                response.read_prefix()
                response = self._send(
                    method, url, replacement, params, json, data, headers, follow_redirects
                )
            if response.status == 401:
                raise self._unauthorized(response)
        if check and not 200 <= response.status < 400:
            # Imported on a failure only: the error shapes are not needed on success.
            from qlikm2m.http import raise_for_status

            raise_for_status(response)
        return response

    def _send(
        self,
        method: str,
        url: str,
        token: Token,
        params: Params,
        json: Any,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        follow_redirects: bool,
    ) -> Response:
        return self.transport.request(
            method,
            url,
            params=params,
            headers=headers,
            json_body=json,
            data=data,
            bearer=token.value,
            follow_redirects=follow_redirects,
        )

    def _unauthorized(self, response: Response) -> AuthError:
        from qlikm2m.http import error_for

        error = error_for(response)
        kind = self.settings.kind
        if kind == "apikey":
            hint = "The API key was refused: it may be expired or revoked, or API keys disabled."
        elif kind == "token":
            hint = "QLIK_ACCESS_TOKEN was refused: it may be expired or revoked; mint a new one."
        else:
            hint = (
                "A freshly minted token was refused: check the OAuth client's scopes, that it is "
                "enabled, and the impersonated user (if any)."
            )
        return AuthError(error.message, hint=hint, details=error.details)

    def get_json(self, path: str, params: Params = None) -> Any:
        """GET and parse JSON, following the 301/302 of the ``/me`` endpoints."""
        return self.request("GET", path, params=params).json()

    def iter_pages(
        self,
        path: str,
        params: Params = None,
        *,
        on_response: Callable[[Response], None] | None = None,
    ) -> Iterator[Any]:
        """Every page of a list, following ``links.next.href`` exactly as given, one at a time."""
        from qlikm2m.http import origin_of

        url: str | None = self.url_for(path)
        # Recent pages only: enough to catch a looping server without growing with the list.
        recent: deque[str] = deque(maxlen=_LOOP_WINDOW)
        first = True
        while url is not None:
            response = self.request("GET", url, params=params if first else None)
            if on_response is not None:
                on_response(response)
            page = response.json()
            first = False
            yield page
            next_href = _next_href(page)
            if next_href is None:
                return
            url = urljoin(url, next_href)
            if origin_of(url) != origin_of(self.settings.server_url):
                raise ApiError(
                    f"The next page is on {urlsplit(url).netloc}, not on the tenant "
                    f"{self.settings.server_url}; the token is not sent elsewhere.",
                    hint="If that is the tenant's own host name, use it as QLIK_SERVER/--server.",
                )
            if url in recent:
                raise ApiError(
                    f"The list at {urlsplit(url).path} points back to a page already read.",
                    hint="The server's pagination links loop; stop with fewer items or report it.",
                )
            recent.append(url)

    def paginate(self, path: str, params: Params = None) -> Iterator[dict[str, Any]]:
        """Every item of every page (the ``data`` arrays), streamed page by page."""
        for page in self.iter_pages(path, params):
            items = page.get("data") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ApiError(
                    f"{urlsplit(self.url_for(path)).path} did not answer with a list "
                    '(no "data" array).',
                    hint="Only list endpoints can be paginated.",
                )
            yield from items

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> QlikClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _next_href(page: Any) -> str | None:
    if not isinstance(page, dict):
        return None
    links = page.get("links")
    if not isinstance(links, dict):
        return None
    next_link = links.get("next")
    href = next_link.get("href") if isinstance(next_link, dict) else None
    return href if isinstance(href, str) and href else None


def client_from_runtime(runtime: Runtime, **flags: Any) -> QlikClient:
    """Resolve the settings from flags, environment and context, and build the client."""
    from qlikm2m.settings import resolve_settings

    settings = resolve_settings(runtime, **flags)
    return QlikClient(settings, runtime)
