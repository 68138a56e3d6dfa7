"""Qlik Cloud's endpoints as the sandbox answers them: routing, OAuth, bearer checks, lists."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from qlikm2m.sandbox.config import ClientSpec
from qlikm2m.sandbox.credentials import authenticate_client
from qlikm2m.sandbox.paging import CursorError, Cursors, take_page
from qlikm2m.sandbox.state import ItemFilter, RefreshGrant, TenantState, Token
from qlikm2m.sandbox.wire import (
    JSON_TYPE,
    Response,
    Service,
    error_body,
    error_response,
    iso,
    json_response,
    json_text,
    page_body,
    redirect_response,
)

T = TypeVar("T")

IMPERSONATION_GRANT = "urn:qlik:oauth:user-impersonation"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query_pairs: tuple[tuple[str, str], ...]
    raw_query: str
    headers: Mapping[str, str]
    body: bytes
    base_url: str  # scheme://host[:port] as the client addressed us
    # For routes declared with stream=True: the body, read as the handler goes (uploads).
    stream: BodyStream | None = None

    def param(self, name: str) -> str | None:
        for key, value in self.query_pairs:
            if key == name:
                return value
        return None

    @property
    def self_url(self) -> str:
        return f"{self.base_url}{self.path}" + (f"?{self.raw_query}" if self.raw_query else "")


class BodyStream:
    """A request body of a known length read in pieces, so a 1 GiB upload never sits in memory.

    `cut_after` ends the body early (a forced connection reset mid-upload): `dropped` then says
    the connection is to be reset without an answer, after the handler kept what arrived.
    """

    def __init__(self, raw: Any, length: int, cut_after: int | None = None) -> None:
        self._raw = raw
        self.length = length
        self.remaining = length
        self._cut = None if cut_after is None else min(cut_after, length)
        self.dropped = False

    def read(self, size: int) -> bytes:
        allowed = self.remaining
        if self._cut is not None:
            allowed = min(allowed, self._cut - (self.length - self.remaining))
            if allowed <= 0:
                self.dropped = True
                return b""
        if allowed <= 0:
            return b""
        data: bytes = self._raw.read(min(size, allowed))
        if not data:
            self.dropped = True  # the client hung up mid-body
            self.remaining = 0
            return b""
        self.remaining -= len(data)
        return data

    def drain(self) -> None:
        while not self.dropped and self.remaining > 0 and self.read(1 << 20):
            pass


@dataclass(frozen=True)
class Principal:
    user_id: str
    client_id: str | None


Handler = Callable[["Api", Request, Principal | None, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    service: Service
    tier: int
    needs_auth: bool
    streams_body: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class BadRequest(Exception):
    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


_ROUTES: list[Route] = []


def route(
    method: str,
    template: str,
    service: Service,
    *,
    tier: int | None = None,
    auth: bool = True,
    stream: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        pattern = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        )
        chosen_tier = tier if tier is not None else (1 if method == "GET" else 2)
        _ROUTES.append(
            Route(method, template, pattern, handler, service, chosen_tier, auth, stream)
        )
        return handler

    return register


class Api:
    """Stateless request handling over a TenantState."""

    def __init__(self, state: TenantState) -> None:
        self.state = state
        self.cursors = Cursors(secrets.token_bytes(16))

    # -- dispatch ---------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path known for another method)."""
        path_known = False
        for candidate in _ROUTES:
            found = candidate.pattern.match(path)
            if found is None:
                continue
            if candidate.method == method:
                return candidate, {k: unquote(v) for k, v in found.groupdict().items()}, True
            path_known = True
        return None, {}, path_known

    def respond(self, matched: Route, params: dict[str, str], request: Request) -> Response:
        principal: Principal | None = None
        if matched.needs_auth:
            principal, failure = self.authenticate(request, matched.service)
            if failure is not None:
                return failure
        if matched.tier:
            # Qlik counts per user; unauthenticated endpoints share one bucket here.
            key = principal.user_id if principal else "anonymous"
            wait = self.state.rate_limit(matched.tier, key)
            if wait is not None:
                return rate_limited(wait, matched.service)
        try:
            return matched.handler(self, request, principal, params)
        except BadRequest as error:
            code = "HTTP-400"
            return error_response(
                matched.service, 400, code, "Bad Request", error.message, parameter=error.parameter
            )

    def authenticate(
        self, request: Request, service: Service
    ) -> tuple[Principal | None, Response | None]:
        scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None, unauthorized(service, "Missing bearer token.")
        api_key = self.state.config.api_key
        if api_key is not None and hmac.compare_digest(credential.encode(), api_key.encode()):
            return Principal(self.state.api_key_user_id, None), None
        token = self.state.tokens.get(credential)
        if token is None:
            return None, unauthorized(service, "Invalid bearer token.")
        if token.revoked:
            return None, unauthorized(service, "The access token has been revoked.")
        if not token.live(self.state.now()):
            return None, unauthorized(service, "The access token has expired.")
        return Principal(token.user_id, token.client_id), None


def unauthorized(service: Service, detail: str) -> Response:
    return error_response(
        service,
        401,
        "HTTP-401",
        "Unauthorized",
        detail,
        headers=[("WWW-Authenticate", 'Bearer realm="qlik"')],
    )


def not_found(service: Service, what: str) -> Response:
    return error_response(service, 404, "HTTP-404", "Not Found", f"{what} not found.")


def rate_limited(wait: int, service: Service) -> Response:
    return error_response(
        service,
        429,
        "HTTP-429",
        "API rate limit reached.",
        f"You need to wait {wait} seconds until limit is lifted.",
        headers=[("retry-after", str(wait))],
    )


def _limit(request: Request, default: int, maximum: int = 100) -> int:
    raw = request.param("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {raw!r}.", "limit") from None
    if not 1 <= value <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}, got {value}.", "limit")
    return value


def _start(api: Api, request: Request, kind: str) -> int:
    cursor = request.param("next")
    if not cursor:
        return 0
    try:
        return api.cursors.decode(kind, cursor)
    except CursorError as error:
        raise BadRequest(f"Invalid next cursor: {error}.", "next") from None


def _list_page(
    api: Api,
    request: Request,
    kind: str,
    scan: Callable[[int], Iterator[tuple[int, Any]]],
    limit: int,
    **extra: Any,
) -> Response:
    page = take_page(
        scan,
        start=_start(api, request, kind),
        limit=limit,
        kind=kind,
        cursors=api.cursors,
        self_url=request.self_url,
        base_path_url=f"{request.base_url}{request.path}",
        query_pairs=request.query_pairs,
    )
    return Response(200, page_body(page.data, page.links, **extra), JSON_TYPE)


def _scan_rows(
    rows: Sequence[T], view: Callable[[T], dict[str, Any]]
) -> Callable[[int], Iterator[tuple[int, dict[str, Any]]]]:
    """A page scan over rows already in memory: (position, rendered row) from ``start`` on."""

    def scan(start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        for position in range(start, len(rows)):
            yield position, view(rows[position])

    return scan


def _csv(value: str | None) -> frozenset[str] | None:
    if value is None or value == "":
        return None
    # resourceType accepts sub-type brackets (app[qvd]); the sandbox has no sub-types.
    return frozenset(re.sub(r"\[[^\]]*\]", "", part).strip() for part in value.split(","))


# == OAuth =====================================================================================


def oauth_error(status: int, code: str, title: str, detail: str) -> Response:
    return error_response("oauth", status, code, title, detail)


def _parse_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    text = request.body.decode("utf-8", errors="replace")
    if content_type == "application/json" or (not content_type and text.lstrip()[:1] == "{"):
        try:
            parsed = json.loads(text or "{}")
        except json.JSONDecodeError as error:
            raise BadRequest(f"The body is not valid JSON: {error.msg}.") from None
        if not isinstance(parsed, dict):
            raise BadRequest("The body must be a JSON object.")
        return parsed
    return dict(parse_qsl(text, keep_blank_values=True))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


@route("POST", "/oauth/token", "oauth", tier=0, auth=False)
def post_token(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    try:
        body = _parse_body(request)
    except BadRequest as error:
        return oauth_error(400, "OAUTH-1", "Invalid request", error.message)
    basic = _basic_credentials(request)
    client_id = basic[0] if basic else str(body.get("client_id") or "")
    secret = basic[1] if basic else str(body.get("client_secret") or "")
    wait = api.state.rate_limit(2, f"client:{client_id}")
    if wait is not None:
        return rate_limited(wait, "oauth")
    grant = str(body.get("grant_type") or "")
    if not grant:
        return oauth_error(400, "OAUTH-1", "Invalid request", "grant_type is required.")
    client = authenticate_client(
        api.state.credentials,
        api.state.clients,
        client_id,
        secret,
        body,
        f"{request.base_url}/oauth/token",
    )
    if isinstance(client, Response):
        return client
    if grant == "client_credentials":
        user_id = api.state.bot_user_ids[client.client_id]
    elif grant == IMPERSONATION_GRANT:
        found = _impersonated_user(api, client, body)
        if isinstance(found, Response):
            return found
        user_id = found
    elif grant == "refresh_token":
        return _refresh(api, client, body)
    else:
        return oauth_error(
            400, "OAUTH-2", "Unsupported grant type", f"grant_type {grant!r} is not supported."
        )
    granted = _granted_scope(client, body.get("scope"))
    if isinstance(granted, Response):
        return granted
    return _issue(api, client, user_id, granted)


def _granted_scope(client: ClientSpec, requested: object) -> list[str] | Response:
    if requested is None or str(requested).strip() == "":
        return [s for s in client.scopes if s != "offline_access"]
    words = list(dict.fromkeys(str(requested).split()))
    unknown = [s for s in words if s not in client.scopes]
    if unknown:
        return oauth_error(
            400,
            "OAUTH-3",
            "Invalid scope",
            f"Scope {' '.join(unknown)!r} is not allowed for this client.",
        )
    return words


def _impersonated_user(api: Api, client: ClientSpec, body: dict[str, Any]) -> str | Response:
    if not client.may_impersonate:
        return oauth_error(403, "OAUTH-7", "Forbidden", "This client may not impersonate users.")
    lookup: object = body.get("user_lookup")
    if isinstance(lookup, str):
        try:
            lookup = json.loads(lookup)
        except json.JSONDecodeError:
            lookup = None
    if not isinstance(lookup, dict) or lookup.get("field") not in ("subject", "userId"):
        return oauth_error(
            400,
            "OAUTH-1",
            "Invalid request",
            'user_lookup must be {"field": "subject"|"userId", "value": ...}.',
        )
    value = str(lookup.get("value") or "")
    if lookup["field"] == "subject":
        user_id = api.state.users_by_subject.get(value)
    else:
        user_id = value if value in api.state.users else None
    if user_id is None:
        return oauth_error(400, "OAUTH-10", "Invalid user", "No user matches user_lookup.")
    if api.state.users[user_id]["status"] != "active":
        return oauth_error(403, "OAUTH-7", "Forbidden", "The user is disabled.")
    return user_id


def _refresh(api: Api, client: ClientSpec, body: dict[str, Any]) -> Response:
    value = str(body.get("refresh_token") or "")
    with api.state.lock:
        grant = api.state.refresh_grants.get(value)
    if grant is None or grant.client_id != client.client_id:
        return oauth_error(401, "OAUTH-6", "Unauthorized", "Invalid refresh token")
    return _issue(api, client, grant.user_id, grant.scope.split(), refresh_token=value)


def _issue(
    api: Api,
    client: ClientSpec,
    user_id: str,
    scopes: list[str],
    *,
    refresh_token: str | None = None,
) -> Response:
    scope = " ".join(scopes)
    with api.state.lock:
        if client.max_tokens is not None and api.state.live_tokens(client.client_id) >= (
            client.max_tokens
        ):
            return oauth_error(
                403,
                "OAUTH-7",
                "Forbidden",
                "OAuth client has reached the maximum number of tokens.",
            )
        token: Token = api.state.mint(client.client_id, user_id, scope)
    body: dict[str, Any] = {
        "access_token": token.value,
        "token_type": "bearer",
        "scope": scope,
        "expires_at": iso(token.expires_at),
        "expires_in": api.state.config.token_lifetime,
    }
    if "offline_access" in scopes:
        body["refresh_token"] = refresh_token or api.state.add_refresh_grant(
            RefreshGrant(client.client_id, user_id, scope)
        )
    return json_response(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


@route("POST", "/oauth/revoke", "oauth", tier=0, auth=False)
def post_revoke(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    try:
        body = _parse_body(request)
    except BadRequest as error:
        return oauth_error(400, "OAUTH-1", "Invalid request", error.message)
    wait = api.state.rate_limit(2, "revoke")
    if wait is not None:
        return rate_limited(wait, "oauth")
    token = body.get("token")
    if not isinstance(token, str) or not token:
        return oauth_error(400, "OAUTH-1", "Invalid request", "token is required.")
    hint = body.get("token_type_hint")
    if hint not in (None, "", "access_token", "refresh_token"):
        return oauth_error(400, "OAUTH-1", "Invalid request", "Unknown token_type_hint.")
    # RFC 7009: revoking an unknown token is not an error.
    api.state.revoke(token)
    return Response(200, b"", "application/json")


@route("GET", "/.well-known/oauth-authorization-server", "oauth", auth=False)
def get_well_known(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    base = request.base_url
    return json_response(
        200,
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "jwks_uri": f"{base}/oauth/keys",
            "grant_types_supported": ["client_credentials", IMPERSONATION_GRANT, "refresh_token"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "client_secret_basic",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS512", "ES384"],
        },
    )


# == users and tenants ============================================================================


@route("GET", "/api/v1/users/me", "users")
def get_users_me(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    assert principal is not None
    return redirect_response(301, f"/api/v1/users/{principal.user_id}")


@route("GET", "/api/v1/users/{userId}", "users")
def get_user(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    user = api.state.users.get(params["userId"])
    if user is None:
        return not_found("users", "User")
    return json_response(200, api.state.user_view(user, request.base_url))


@route("GET", "/api/v1/users", "users")
def list_users(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    limit = _limit(request, 20)
    users = api.state.users_sorted
    scan = _scan_rows(users, lambda user: api.state.user_view(user, request.base_url))
    extra = {"totalResults": len(users)} if request.param("totalResults") == "true" else {}
    return _list_page(api, request, "users", scan, limit, **extra)


@route("GET", "/api/v1/tenants/me", "tenants")
def get_tenants_me(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    return redirect_response(302, f"/api/v1/tenants/{api.state.tenant_id}")


@route("GET", "/api/v1/tenants/{tenantId}", "tenants")
def get_tenant(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    if params["tenantId"] != api.state.tenant_id:
        return not_found("tenants", "Tenant")
    return json_response(200, api.state.tenant(request.base_url))


# == spaces and items =============================================================================


@route("GET", "/api/v1/spaces", "spaces")
def list_spaces(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    limit = _limit(request, 10)
    types = _csv(request.param("type"))
    name = (request.param("name") or "").lower()
    spaces = [
        s
        for s in api.state.spaces
        if (types is None or s["type"] in types) and name in s["name"].lower()
    ]
    scan = _scan_rows(spaces, lambda space: api.state.space_view(space, request.base_url))
    return _list_page(api, request, "spaces", scan, limit, meta={"count": len(spaces)})


@route("GET", "/api/v1/spaces/{spaceId}", "spaces")
def get_space(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    space = api.state.space_by_id.get(params["spaceId"])
    if space is None:
        return not_found("spaces", "Space")
    return json_response(200, api.state.space_view(space, request.base_url))


@route("GET", "/api/v1/items", "items")
def list_items(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    limit = _limit(request, 10)
    resource_id = request.param("resourceId") or None
    resource_types = _csv(request.param("resourceType"))
    if resource_id is not None and resource_types is None:
        raise BadRequest("resourceId requires resourceType.", "resourceId")
    # resourceIds: the reload wait's tick asks for the items of the apps it waits on. noActions is
    # ignored: the items keep their `actions`, which items.json's item schema requires.
    resource_ids = _resource_ids(request.param("resourceIds"))
    if resource_ids is not None and resource_types is None:
        raise BadRequest("resourceIds requires resourceType.", "resourceIds")
    name = request.param("name") or request.param("query") or None
    wanted = ItemFilter(
        resource_types=resource_types,
        space_ids=_csv(request.param("spaceId")),
        space_types=_csv(request.param("spaceType")),
        name=name,
        resource_id=resource_id,
        resource_ids=resource_ids,
    )

    base = json_text(request.base_url)

    def scan(start: int) -> Iterator[tuple[int, str]]:
        for n in api.state.scan_items(start, wanted):
            yield n, api.state.item_json(n, base)

    return _list_page(api, request, "items", scan, limit)


# items.json resourceIds: at most 100 ids a request.
MAX_RESOURCE_IDS = 100


def _resource_ids(value: str | None) -> frozenset[str] | None:
    """items.json resourceIds: comma-separated, case-sensitive. More than 100 is a 400 (*sandbox
    choice*: the spec gives the maximum, not what happens beyond it)."""
    if value is None or value == "":
        return None
    ids = frozenset(part.strip() for part in value.split(",") if part.strip())
    if len(ids) > MAX_RESOURCE_IDS:
        raise BadRequest(
            f"At most {MAX_RESOURCE_IDS} resourceIds are supported, got {len(ids)}.", "resourceIds"
        )
    return ids


@route("GET", "/api/v1/items/{itemId}", "items")
def get_item(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    n = api.state.item_index(params["itemId"])
    if n is None:
        return not_found("items", "Item")
    return json_response(200, api.state.item(n, request.base_url))


@route("GET", "/api/v1/apps/{appId}", "apps")
def get_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    n = api.state.app_index(params["appId"])
    if n is None:
        return not_found("apps", "App")
    return json_response(200, api.state.app(n))


# == reloads ==========================================================================================


@route("POST", "/api/v1/reloads", "reloads")
def post_reload(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    assert principal is not None
    body = _parse_body(request)
    app_id = body.get("appId")
    if not isinstance(app_id, str) or not app_id:
        raise BadRequest("appId is required.", "appId")
    partial = body.get("partial", False)
    if not isinstance(partial, bool):
        raise BadRequest("partial must be a boolean.", "partial")
    weight = body.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 10:
        raise BadRequest("weight must be an integer from 1 to 10.", "weight")
    variables = _reload_variables(body.get("variables"))
    if api.state.app_index(app_id) is None:
        # The reloads service answers 403 when the app does not exist or is not accessible.
        return error_response(
            "reloads", 403, "RELOADS-005", "Forbidden", "App not found or not accessible."
        )
    reload = api.state.create_reload(
        app_id, principal.user_id, partial, weight=weight, variables=variables
    )
    view = api.state.reload_view(reload, request.base_url, with_log=False)
    return json_response(201, view, [("Location", f"/api/v1/reloads/{reload.id}")])


def _reload_variables(value: object) -> dict[str, str] | None:
    # reloads.json ReloadRequest.variables: at most 20, names and values up to 256 characters.
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("variables must be an object of names to string values.", "variables")
    if len(value) > 20:
        raise BadRequest("At most 20 variables are allowed.", "variables")
    for name, text in value.items():
        if not isinstance(text, str) or not name or len(name) > 256 or len(text) > 256:
            raise BadRequest(
                f"Variable {name!r}: names and values are strings of 1 to 256 characters.",
                "variables",
            )
    return dict(value)


@route("GET", "/api/v1/reloads/{reloadId}", "reloads")
def get_reload(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    reload = api.state.reloads.get(params["reloadId"])
    if reload is None:
        return not_found("reloads", "Reload")
    return json_response(200, api.state.reload_view(reload, request.base_url, with_log=True))


@route("GET", "/api/v1/reloads", "reloads")
def list_reloads(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    app_id = request.param("appId")
    if not app_id:
        raise BadRequest("appId is required.", "appId")
    limit = _limit(request, 10)
    with_log = request.param("log") == "true"
    partial = request.param("partial")
    reloads = api.state.reloads_for_app(app_id)
    if partial in ("true", "false"):
        reloads = [r for r in reloads if r.partial == (partial == "true")]
    scan = _scan_rows(
        reloads, lambda reload: api.state.reload_view(reload, request.base_url, with_log=with_log)
    )
    return _list_page(api, request, f"reloads:{app_id}", scan, limit)


@route("GET", "/api/v1/apps/{appId}/reloads/logs/{reloadId}", "apps")
def get_reload_log(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    # The apps service serves the whole script log as a binary download.
    reload = api.state.reloads.get(params["reloadId"])
    if reload is None or reload.app_id != params["appId"]:
        return not_found("apps", "Reload log")
    log = api.state.reload_view(reload, request.base_url, with_log=True)["log"]
    return Response(200, log.encode(), "application/octet-stream")


@route("POST", "/api/v1/reloads/{reloadId}/actions/cancel", "reloads")
def cancel_reload(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    reload = api.state.reloads.get(params["reloadId"])
    if reload is None:
        return not_found("reloads", "Reload")
    before = api.state.cancel_reload(reload)
    if before not in ("QUEUED", "RELOADING"):
        return error_response(
            "reloads", 409, "RELOADS-011", "Conflict", f"The reload is already {before}."
        )
    return Response(204)


def method_not_allowed(path: str) -> Response:
    body = error_body("other", 405, "HTTP-405", "Method Not Allowed", f"{path} does not allow it.")
    return json_response(405, body)


def unknown_route(path: str) -> Response:
    return json_response(
        404, error_body("other", 404, "HTTP-404", "Not Found", f"No route {path}.")
    )
