"""The OAuth clients API (oauth-clients.json) and the token registry (oauth-tokens.json), as far
as qlikm2m manages its own client: read a client, patch its public keys, create and delete its
secrets, list and delete minted tokens. Also the token endpoint's client authentication.

Managing clients needs the TenantAdmin role in Qlik Cloud; in the sandbox a client may unless
its ClientSpec says ``may_manage_clients=False``.
"""

from __future__ import annotations

import json
from typing import Any

from qlikm2m.sandbox.api import (
    IMPERSONATION_GRANT,
    Api,
    BadRequest,
    Principal,
    Request,
    _limit,
    _list_page,
    _scan_rows,
    route,
)
from qlikm2m.sandbox.config import ClientSpec
from qlikm2m.sandbox.credentials import Refusal, token_id
from qlikm2m.sandbox.state import SEED_EPOCH
from qlikm2m.sandbox.wire import Response, error_response, iso, json_response

PATCHABLE = (
    "/allowedOrigins",
    "/clientName",
    "/clientUri",
    "/description",
    "/logoUri",
    "/redirectUris",
    "/allowedScopes",
    "/allowedGrantTypes",
    "/publicKeys",
    "/allowedAuthMethods",
)


def _refused(refusal: Refusal) -> Response:
    return error_response("other", refusal.status, refusal.code, refusal.title, refusal.detail)


def _may_manage(api: Api, principal: Principal | None) -> Response | None:
    assert principal is not None
    if principal.client_id is None:
        user = api.state.users.get(principal.user_id, {})
        allowed = any(r.get("name") == "TenantAdmin" for r in user.get("assignedRoles", []))
    else:
        spec = api.state.clients.get(principal.client_id)
        allowed = spec is not None and spec.may_manage_clients
    if allowed:
        return None
    return error_response(
        "other", 403, "HTTP-403", "Forbidden", "Managing OAuth clients needs the TenantAdmin role."
    )


def _client_view(api: Api, spec: ClientSpec) -> dict[str, Any]:
    """OAuthClientAdminReadResponse (oauth-clients.json, readOAuthClient)."""
    state = api.state
    grants = ["client_credentials"] + ([IMPERSONATION_GRANT] if spec.may_impersonate else [])
    keys = state.credentials.public_keys(spec.client_id)
    return {
        "clientId": spec.client_id,
        "clientName": spec.name,
        "appType": "web",
        "ownerId": state.api_key_user_id,
        "createdAt": iso(SEED_EPOCH),
        "updatedAt": iso(SEED_EPOCH),
        "createdByType": "user",
        "allowedScopes": list(spec.scopes),
        "allowedGrantTypes": grants,
        "allowedAuthMethods": ["client_secret"] + (["private_key_jwt"] if keys else []),
        "publicKeys": keys,
        "clientSecrets": [s.view(iso) for s in state.credentials.secrets_of(spec.client_id)],
    }


def _target(api: Api, params: dict[str, str]) -> ClientSpec | Response:
    spec = api.state.clients.get(params["id"])
    if spec is None:
        return error_response("other", 404, "HTTP-404", "Not Found", "OAuth client not found.")
    return spec


@route("GET", "/api/v1/oauth-clients/{id}", "other")
def get_oauth_client(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _may_manage(api, principal)
    spec = refused or _target(api, params)
    if isinstance(spec, Response):
        return spec
    return json_response(200, _client_view(api, spec))


@route("PATCH", "/api/v1/oauth-clients/{id}", "other")
def patch_oauth_client(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _may_manage(api, principal)
    spec = refused or _target(api, params)
    if isinstance(spec, Response):
        return spec
    try:
        operations = json.loads(request.body or b"null")
    except ValueError:
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(operations, list) or not operations:
        raise BadRequest("The body must be a non-empty JSON Patch array.")
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in (
            "add",
            "remove",
            "replace",
        ):
            raise BadRequest("Each operation needs op add, remove or replace.")
        if operation.get("path") not in PATCHABLE:
            raise BadRequest(f"path must be one of {', '.join(PATCHABLE)}.")
        if operation["path"] != "/publicKeys":
            raise BadRequest(f"The sandbox patches /publicKeys only, not {operation['path']}.")
    # All or nothing: apply to a copy, keep it only when every operation passed.
    registry = api.state.credentials
    with registry.lock:
        before = registry.public_keys(spec.client_id)
        try:
            for operation in operations:
                registry.patch_public_keys(spec.client_id, operation["op"], operation.get("value"))
        except Refusal as refusal:
            registry.clients[spec.client_id].public_keys = before
            return _refused(refusal)
    return Response(204)


@route("POST", "/api/v1/oauth-clients/{id}/client-secrets", "other")
def post_client_secret(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _may_manage(api, principal)
    spec = refused or _target(api, params)
    if isinstance(spec, Response):
        return spec
    assert principal is not None
    try:
        secret = api.state.credentials.create_secret(spec.client_id, principal.user_id)
    except Refusal as refusal:
        return _refused(refusal)
    body = {"clientId": spec.client_id, "clientSecret": secret.value, **secret.view(iso)}
    return json_response(201, body, [("Cache-Control", "no-store")])


@route("DELETE", "/api/v1/oauth-clients/{id}/client-secrets/{hint}", "other")
def delete_client_secret(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    refused = _may_manage(api, principal)
    spec = refused or _target(api, params)
    if isinstance(spec, Response):
        return spec
    try:
        api.state.credentials.delete_secret(spec.client_id, params["hint"])
    except Refusal as refusal:
        return _refused(refusal)
    return Response(204)


def _token_view(api: Api, value: str) -> dict[str, Any]:
    """oauth-token (oauth-tokens.json)."""
    token = api.state.tokens[value]
    return {
        "id": token_id(value),
        "userId": token.user_id,
        "tenantId": api.state.tenant_id,
        "description": f"Issued to OAuth client {token.client_id} at {iso(token.issued_at)}",
    }


@route("GET", "/api/v1/oauth-tokens", "other")
def list_oauth_tokens(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    assert principal is not None
    limit = _limit(request, 20)
    wanted_user = request.param("userId") or None
    sort = request.param("sort")
    if sort not in (None, "", "userId"):
        raise BadRequest("sort must be userId.", "sort")
    # Admins see every user's tokens, others their own (listOAuthTokens).
    if _may_manage(api, principal) is not None:
        wanted_user = principal.user_id
    now = api.state.now()
    with api.state.lock:
        live = [
            (t.user_id, t.issued_at, value)
            for value, t in api.state.tokens.items()
            if t.live(now) and (wanted_user is None or t.user_id == wanted_user)
        ]
    values = [value for _, _, value in sorted(live)]
    scan = _scan_rows(values, lambda value: _token_view(api, value))
    return _list_page(api, request, "oauth-tokens", scan, limit)


@route("DELETE", "/api/v1/oauth-tokens/{tokenId}", "other")
def delete_oauth_token(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    assert principal is not None
    admin = _may_manage(api, principal) is None
    with api.state.lock:
        found = next(
            (
                value
                for value, t in api.state.tokens.items()
                if token_id(value) == params["tokenId"]
                and (admin or t.user_id == principal.user_id)
            ),
            None,
        )
    if found is None:
        return error_response("other", 404, "HTTP-404", "Not Found", "Token not found.")
    api.state.revoke(found)
    # The spec declares application/json on this 204 (an empty body).
    return Response(204, b"", "application/json")
