"""Contract tests: every kind of answer the sandbox gives validates against Qlik's own OpenAPI specs.

The specs are Qlik's and are not part of this project: they are read at test time from
``../shared/qlik-specs`` next to the repository, and these tests skip when that folder is absent.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # test extras: a missing one must fail the run, not skip the contract
import pytest
import referencing
import requests
from fixtures_sandbox import TEST_DEFAULTS, SandboxCA, Tenant
from harness import FakeClock
from keys_support import key_pair, token_form
from referencing.jsonschema import DRAFT4

from qlikm2m.sandbox import Sandbox, SandboxConfig

# ../shared/qlik-specs next to the repository, or next to a folder of clones holding it.
SPECS = next(
    (
        folder / "shared" / "qlik-specs"
        for folder in Path(__file__).resolve().parents[3:5]
        if (folder / "shared" / "qlik-specs").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "qlik-specs",
)
if not SPECS.is_dir():
    pytest.skip(
        f"Qlik's OpenAPI specs are not at {SPECS}: contract tests need them (see README there)",
        allow_module_level=True,
    )

# (spec file, path template, method) of every operation the sandbox implements.
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "POST /oauth/token": ("oauth.json", "/oauth/token", "post"),
    "POST /oauth/revoke": ("oauth.json", "/oauth/revoke", "post"),
    "GET /.well-known/oauth-authorization-server": (
        "well-known.json",
        "/.well-known/oauth-authorization-server",
        "get",
    ),
    "GET /api/v1/users/me": ("users.json", "/api/v1/users/me", "get"),
    "GET /api/v1/users/{userId}": ("users.json", "/api/v1/users/{userId}", "get"),
    "GET /api/v1/users": ("users.json", "/api/v1/users", "get"),
    "GET /api/v1/tenants/me": ("tenants.json", "/api/v1/tenants/me", "get"),
    "GET /api/v1/tenants/{tenantId}": ("tenants.json", "/api/v1/tenants/{tenantId}", "get"),
    "GET /api/v1/spaces": ("spaces.json", "/api/v1/spaces", "get"),
    "GET /api/v1/spaces/{spaceId}": ("spaces.json", "/api/v1/spaces/{spaceId}", "get"),
    "GET /api/v1/items": ("items.json", "/api/v1/items", "get"),
    "GET /api/v1/items/{itemId}": ("items.json", "/api/v1/items/{itemId}", "get"),
    "GET /api/v1/apps/{appId}": ("apps.json", "/api/v1/apps/{appId}", "get"),
    "POST /api/v1/reloads": ("reloads.json", "/api/v1/reloads", "post"),
    "GET /api/v1/reloads": ("reloads.json", "/api/v1/reloads", "get"),
    "GET /api/v1/reloads/{reloadId}": ("reloads.json", "/api/v1/reloads/{reloadId}", "get"),
    "POST /api/v1/reloads/{reloadId}/actions/cancel": (
        "reloads.json",
        "/api/v1/reloads/{reloadId}/actions/cancel",
        "post",
    ),
    "GET /api/v1/oauth-clients/{id}": ("oauth-clients.json", "/api/v1/oauth-clients/{id}", "get"),
    "PATCH /api/v1/oauth-clients/{id}": (
        "oauth-clients.json",
        "/api/v1/oauth-clients/{id}",
        "patch",
    ),
    "POST /api/v1/oauth-clients/{id}/client-secrets": (
        "oauth-clients.json",
        "/api/v1/oauth-clients/{id}/client-secrets",
        "post",
    ),
    "DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}": (
        "oauth-clients.json",
        "/api/v1/oauth-clients/{id}/client-secrets/{hint}",
        "delete",
    ),
    "GET /api/v1/oauth-tokens": ("oauth-tokens.json", "/api/v1/oauth-tokens", "get"),
    "DELETE /api/v1/oauth-tokens/{tokenId}": (
        "oauth-tokens.json",
        "/api/v1/oauth-tokens/{tokenId}",
        "delete",
    ),
    "POST /api/v1/temp-contents/files": (
        "temp-contents.json",
        "/api/v1/temp-contents/files",
        "post",
    ),
    "PATCH /api/v1/temp-contents/files/{id}": (
        "temp-contents.json",
        "/api/v1/temp-contents/files/{id}",
        "patch",
    ),
    "GET /api/v1/temp-contents/{id}": ("temp-contents.json", "/api/v1/temp-contents/{id}", "get"),
    "POST /api/v1/apps/{appId}/export": ("apps.json", "/api/v1/apps/{appId}/export", "post"),
    "POST /api/v1/apps/import": ("apps.json", "/api/v1/apps/import", "post"),
    "POST /api/v1/apps/{appId}/publish": ("apps.json", "/api/v1/apps/{appId}/publish", "post"),
    "PUT /api/v1/apps/{appId}/publish": ("apps.json", "/api/v1/apps/{appId}/publish", "put"),
    "DELETE /api/v1/apps/{appId}": ("apps.json", "/api/v1/apps/{appId}", "delete"),
    "POST /api/v1/spaces": ("spaces.json", "/api/v1/spaces", "post"),
    "POST /api/v1/spaces/{spaceId}/assignments": (
        "spaces.json",
        "/api/v1/spaces/{spaceId}/assignments",
        "post",
    ),
    "GET /api/v1/spaces/{spaceId}/assignments": (
        "spaces.json",
        "/api/v1/spaces/{spaceId}/assignments",
        "get",
    ),
    "GET /api/v1/data-files": ("data-files.json", "/api/v1/data-files", "get"),
    "POST /api/v1/data-files": ("data-files.json", "/api/v1/data-files", "post"),
    "GET /api/v1/data-files/{id}": ("data-files.json", "/api/v1/data-files/{id}", "get"),
    "PUT /api/v1/data-files/{id}": ("data-files.json", "/api/v1/data-files/{id}", "put"),
    "DELETE /api/v1/data-files/{id}": ("data-files.json", "/api/v1/data-files/{id}", "delete"),
}
# The data-files spec's error codes (ErrorCode) have no HTTP-401 or HTTP-429: those answers come
# from Qlik's gateway in a shape that spec does not give, so they are not checked against it.
GATEWAY_ERRORS_UNCHECKED = frozenset(op for op in OPERATIONS if "/data-files" in op)

# Statuses the real services send but some specs leave out; their bodies must still be the
# spec's own `Errors` shape. Anything else the sandbox answers must be in the spec.
UNDOCUMENTED_BUT_REAL = {
    401: "every /api endpoint refuses a missing or bad bearer; not every spec lists it",
    429: "every endpoint has a rate-limit tier (x-qlik-tier); not every spec lists the 429",
    404: "the apps spec documents only the 200 of GET /apps/{appId}",
    400: "malformed requests are refused by every service; apps and spaces omit some 400s",
}

# Answers whose declared schema no valid body can meet, and the schema checked instead. The 200 of
# readOAuthClient is oneOf(admin view, plain view), but neither forbids extra properties, so an
# admin view always matches both and fails oneOf: the sandbox answers as an admin, as bots are.
SCHEMA_INSTEAD = {
    ("GET /api/v1/oauth-clients/{id}", 200): "/components/schemas/OAuthClientAdminReadResponse",
}


@dataclass(frozen=True)
class Exchange:
    operation: str
    label: str
    response: requests.Response


def _with_nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms (draft 4 does not know it)."""
    if isinstance(node, list):
        return [_with_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_nullable(value) for key, value in node.items()}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


@cache
def _spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = _with_nullable(json.loads((SPECS / name).read_text()))
    return loaded


@cache
def _registry(name: str) -> Any:
    return referencing.Registry().with_resource(
        f"urn:qlik-spec:{name}", DRAFT4.create_resource(_spec(name))
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _validator(name: str, pointer: str) -> Any:
    schema = {"$ref": f"urn:qlik-spec:{name}#{pointer}"}
    return jsonschema.Draft4Validator(
        schema,
        registry=_registry(name),
        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
    )


class Recorder:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.exchanges: list[Exchange] = []

    def call(
        self,
        operation: str,
        label: str,
        expected: int,
        path: str,
        *,
        token: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        method = operation.split(" ", 1)[0]
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.tenant.session.request(
            method,
            f"{self.tenant.url}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=10,
            **kwargs,
        )
        assert response.status_code == expected, f"{label}: {response.status_code} {response.text}"
        self.exchanges.append(Exchange(operation, label, response))
        return response


def _play_main(rec: Recorder, clock: FakeClock) -> None:
    tenant = rec.tenant
    sandbox = tenant.sandbox
    creds = tenant.credentials()
    token = rec.call("POST /oauth/token", "client credentials", 200, "/oauth/token", json=creds)
    token = token.json()["access_token"]
    rec.call("POST /oauth/token", "form and refresh token", 200, "/oauth/token",
             data=tenant.credentials(scope="user_default offline_access"))  # fmt: skip
    rec.call("POST /oauth/token", "impersonation", 200, "/oauth/token",
             json=tenant.credentials(grant_type="urn:qlik:oauth:user-impersonation",
                                     user_lookup={"field": "subject",
                                                  "value": "auth0|sandbox-user-2"}))  # fmt: skip
    rec.call("POST /oauth/token", "unknown client", 400, "/oauth/token",
             json=tenant.credentials(client_id="nobody"))  # fmt: skip
    rec.call("POST /oauth/token", "bad scope", 400, "/oauth/token",
             json=tenant.credentials(scope="everything"))  # fmt: skip
    rec.call("POST /oauth/token", "unsupported grant", 400, "/oauth/token",
             json=tenant.credentials(grant_type="password"))  # fmt: skip
    rec.call("POST /oauth/token", "bad secret", 401, "/oauth/token",
             json=tenant.credentials(client_secret="nope"))  # fmt: skip
    rec.call("POST /oauth/token", "bad refresh token", 401, "/oauth/token",
             json=tenant.credentials(grant_type="refresh_token", refresh_token="x"))  # fmt: skip
    spare = tenant.token()
    rec.call("POST /oauth/revoke", "revoke", 200, "/oauth/revoke", json={"token": spare})
    rec.call("POST /oauth/revoke", "no token", 400, "/oauth/revoke", json={})
    rec.call("GET /.well-known/oauth-authorization-server", "metadata", 200,
             "/.well-known/oauth-authorization-server")  # fmt: skip

    me = rec.call("GET /api/v1/users/me", "redirect", 301, "/api/v1/users/me", token=token)
    rec.call("GET /api/v1/users/me", "no bearer", 401, "/api/v1/users/me")
    bot_path = me.headers["Location"]
    rec.call("GET /api/v1/users/{userId}", "bot user", 200, bot_path, token=token)
    rec.call("GET /api/v1/users/{userId}", "unknown", 404, "/api/v1/users/nobody", token=token)
    rec.call("GET /api/v1/users/{userId}", "revoked bearer", 401, bot_path, token=spare)
    users = rec.call("GET /api/v1/users", "first page", 200, "/api/v1/users?limit=2", token=token)
    rec.call("GET /api/v1/users", "last page with total", 200,
             "/api/v1/users?limit=100&totalResults=true", token=token)  # fmt: skip
    human = next(u for u in users.json()["data"] if "clientId" not in u)
    rec.call("GET /api/v1/users/{userId}", "human user", 200, f"/api/v1/users/{human['id']}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/users", "bad limit", 400, "/api/v1/users?limit=0", token=token)
    rec.call("GET /api/v1/users", "no bearer", 401, "/api/v1/users")

    tenant_me = rec.call("GET /api/v1/tenants/me", "redirect", 302, "/api/v1/tenants/me",
                         token=token)  # fmt: skip
    rec.call("GET /api/v1/tenants/me", "no bearer", 401, "/api/v1/tenants/me")
    rec.call("GET /api/v1/tenants/{tenantId}", "tenant", 200, tenant_me.headers["Location"],
             token=token)  # fmt: skip
    rec.call("GET /api/v1/tenants/{tenantId}", "unknown", 404, "/api/v1/tenants/x", token=token)
    rec.call("GET /api/v1/tenants/{tenantId}", "no bearer", 401, tenant_me.headers["Location"])

    spaces = rec.call("GET /api/v1/spaces", "page", 200, "/api/v1/spaces?limit=1", token=token)
    rec.call("GET /api/v1/spaces", "filtered", 200, "/api/v1/spaces?type=managed&name=a",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/spaces", "bad limit", 400, "/api/v1/spaces?limit=500", token=token)
    rec.call("GET /api/v1/spaces", "no bearer", 401, "/api/v1/spaces")
    space_id = spaces.json()["data"][0]["id"]
    rec.call("GET /api/v1/spaces/{spaceId}", "space", 200, f"/api/v1/spaces/{space_id}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/spaces/{spaceId}", "unknown", 404, "/api/v1/spaces/x", token=token)
    rec.call("GET /api/v1/spaces/{spaceId}", "no bearer", 401, f"/api/v1/spaces/{space_id}")

    app_id = sandbox.app_ids()[0]
    reload = rec.call("POST /api/v1/reloads", "start", 201, "/api/v1/reloads",
                      token=token, json={"appId": app_id})  # fmt: skip
    reload_id = reload.json()["id"]
    broken = rec.call("POST /api/v1/reloads", "start partial", 201, "/api/v1/reloads",
                      token=token, json={"appId": "broken-app", "partial": True})  # fmt: skip
    over = rec.call("POST /api/v1/reloads", "start, over its limit", 201, "/api/v1/reloads",
                    token=token, json={"appId": "huge-app"})  # fmt: skip
    rec.call("POST /api/v1/reloads", "no appId", 400, "/api/v1/reloads", token=token, json={})
    rec.call("POST /api/v1/reloads", "unknown app", 403, "/api/v1/reloads", token=token,
             json={"appId": "nope"})  # fmt: skip
    rec.call("POST /api/v1/reloads", "no bearer", 401, "/api/v1/reloads", json={"appId": "x"})
    rec.call("GET /api/v1/reloads/{reloadId}", "queued", 200, f"/api/v1/reloads/{reload_id}",
             token=token)  # fmt: skip
    clock.advance(TEST_DEFAULTS["reload_queue_time"] + 0.01)
    rec.call("GET /api/v1/reloads/{reloadId}", "reloading", 200, f"/api/v1/reloads/{reload_id}",
             token=token)  # fmt: skip
    cancel_me = rec.call("POST /api/v1/reloads", "to cancel", 201, "/api/v1/reloads",
                         token=token, json={"appId": app_id}).json()["id"]  # fmt: skip
    rec.call("POST /api/v1/reloads/{reloadId}/actions/cancel", "cancel", 204,
             f"/api/v1/reloads/{cancel_me}/actions/cancel", token=token)  # fmt: skip
    clock.advance(60)
    rec.call("GET /api/v1/reloads/{reloadId}", "succeeded", 200, f"/api/v1/reloads/{reload_id}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads/{reloadId}", "failed", 200,
             f"/api/v1/reloads/{broken.json()['id']}", token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads/{reloadId}", "exceeded limit", 200,
             f"/api/v1/reloads/{over.json()['id']}", token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads/{reloadId}", "canceled", 200, f"/api/v1/reloads/{cancel_me}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads/{reloadId}", "unknown", 404, "/api/v1/reloads/x", token=token)
    rec.call("GET /api/v1/reloads/{reloadId}", "no bearer", 401, f"/api/v1/reloads/{reload_id}")
    rec.call("POST /api/v1/reloads/{reloadId}/actions/cancel", "finished", 409,
             f"/api/v1/reloads/{reload_id}/actions/cancel", token=token)  # fmt: skip
    rec.call("POST /api/v1/reloads/{reloadId}/actions/cancel", "unknown", 404,
             "/api/v1/reloads/x/actions/cancel", token=token)  # fmt: skip
    rec.call("POST /api/v1/reloads/{reloadId}/actions/cancel", "no bearer", 401,
             f"/api/v1/reloads/{reload_id}/actions/cancel")  # fmt: skip
    rec.call("GET /api/v1/reloads", "list", 200, f"/api/v1/reloads?appId={app_id}&limit=1",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads", "list with log", 200,
             f"/api/v1/reloads?appId={app_id}&log=true", token=token)  # fmt: skip
    rec.call("GET /api/v1/reloads", "no appId", 400, "/api/v1/reloads", token=token)
    rec.call("GET /api/v1/reloads", "no bearer", 401, f"/api/v1/reloads?appId={app_id}")

    items = rec.call("GET /api/v1/items", "apps after reloads", 200,
                     "/api/v1/items?resourceType=app&limit=3", token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "personal, all types", 200,
             "/api/v1/items?spaceId=personal&limit=100", token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "by resourceIds", 200,
             f"/api/v1/items?resourceType=app&resourceIds={app_id},x&limit=100&noActions=true",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "resourceIds without resourceType", 400,
             f"/api/v1/items?resourceIds={app_id}", token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "101 resourceIds", 400,
             "/api/v1/items?resourceType=app&resourceIds=" + ",".join(map(str, range(101))),
             token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "bad limit", 400, "/api/v1/items?limit=101", token=token)
    rec.call("GET /api/v1/items", "bad cursor", 400, "/api/v1/items?next=abc", token=token)
    rec.call("GET /api/v1/items", "no bearer", 401, "/api/v1/items")
    item_id = items.json()["data"][0]["id"]
    rec.call("GET /api/v1/items/{itemId}", "item", 200, f"/api/v1/items/{item_id}", token=token)
    rec.call("GET /api/v1/items/{itemId}", "unknown", 404, "/api/v1/items/x", token=token)
    rec.call("GET /api/v1/items/{itemId}", "no bearer", 401, f"/api/v1/items/{item_id}")
    rec.call("GET /api/v1/apps/{appId}", "reloaded app", 200, f"/api/v1/apps/{app_id}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/apps/{appId}", "failing app", 200, "/api/v1/apps/broken-app",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/apps/{appId}", "unknown", 404, "/api/v1/apps/x", token=token)
    rec.call("GET /api/v1/apps/{appId}", "no bearer", 401, f"/api/v1/apps/{app_id}")
    rec.call("POST /api/v1/reloads", "variables and weight", 201, "/api/v1/reloads", token=token,
             json={"appId": app_id, "weight": 5, "variables": {"region": "EU"}})  # fmt: skip
    rec.call("POST /api/v1/reloads", "bad weight", 400, "/api/v1/reloads", token=token,
             json={"appId": app_id, "weight": 11})  # fmt: skip
    _play_delivery(rec, token, app_id)


TUS = {"Tus-Resumable": "1.0.0"}
PATCH_HEADERS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def _play_delivery(rec: Recorder, token: str, app_id: str) -> None:
    sandbox = rec.tenant.sandbox
    spaces = rec.tenant.collect("/api/v1/spaces", token)
    shared = next(s["id"] for s in spaces if s["type"] == "shared")
    managed = next(s["id"] for s in spaces if s["type"] == "managed")
    op = "POST /api/v1/temp-contents/files"
    name = base64.b64encode(b"sales.qvf").decode()
    created = rec.call(op, "create", 201, "/api/v1/temp-contents/files", token=token,
                       headers={**TUS, "Upload-Length": "10", "Upload-Metadata": f"filename {name}"})  # fmt: skip
    rec.call(op, "no length", 400, "/api/v1/temp-contents/files", token=token, headers=TUS)
    rec.call(op, "old tus", 412, "/api/v1/temp-contents/files", token=token,
             headers={"Tus-Resumable": "0.2.2", "Upload-Length": "1"})  # fmt: skip
    rec.call(op, "too large", 413, "/api/v1/temp-contents/files", token=token,
             headers={**TUS, "Upload-Length": str(1 << 50)})  # fmt: skip
    rec.call(op, "no bearer", 401, "/api/v1/temp-contents/files", headers=TUS)
    upload = created.headers["Location"].split("/api/v1", 1)[1]
    op = "PATCH /api/v1/temp-contents/files/{id}"
    path = f"/api/v1{upload}"
    rec.call(op, "mismatched offset", 409, path, token=token,
             headers={**PATCH_HEADERS, "Upload-Offset": "3"}, data=b"abc")  # fmt: skip
    rec.call(op, "first part", 204, path, token=token,
             headers={**PATCH_HEADERS, "Upload-Offset": "0"}, data=b"QVF-")  # fmt: skip
    rec.call(op, "wrong type", 415, path, token=token,
             headers={**TUS, "Upload-Offset": "4", "Content-Type": "text/plain"}, data=b"x")  # fmt: skip
    rec.call(op, "no offset", 400, path, token=token, headers=PATCH_HEADERS, data=b"x")
    rec.call(op, "old tus", 412, path, token=token,
             headers={**PATCH_HEADERS, "Tus-Resumable": "0.2.2", "Upload-Offset": "4"})  # fmt: skip
    rec.call(op, "unknown", 404, "/api/v1/temp-contents/files/nope", token=token,
             headers={**PATCH_HEADERS, "Upload-Offset": "0"}, data=b"x")  # fmt: skip
    sandbox.force(reset_after=2, match="PATCH /api/v1/temp-contents/files/")
    with contextlib.suppress(requests.ConnectionError):
        rec.tenant.session.patch(f"{rec.tenant.url}{path}", data=b"bytes",
                                 headers={**PATCH_HEADERS, "Upload-Offset": "4",
                                          "Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
    rec.call(op, "locked after a drop", 423, path, token=token,
             headers={**PATCH_HEADERS, "Upload-Offset": "6"}, data=b"tail")  # fmt: skip
    head = rec.tenant.session.head(f"{rec.tenant.url}{path}", timeout=10,
                                   headers={**TUS, "Authorization": f"Bearer {token}"})  # fmt: skip
    assert head.status_code == 423
    sandbox.state.stores.uploads[upload.rsplit("/", 1)[1]].locked_until = 0.0
    rec.call(op, "rest", 204, path, token=token,
             headers={**PATCH_HEADERS, "Upload-Offset": "6"}, data=b"data")  # fmt: skip
    rec.call(op, "no bearer", 401, path, headers={**PATCH_HEADERS, "Upload-Offset": "10"})
    file_id = upload.rsplit("/", 1)[1]

    op = "GET /api/v1/temp-contents/{id}"
    incomplete = rec.call("POST /api/v1/temp-contents/files", "to leave incomplete", 201,
                          "/api/v1/temp-contents/files", token=token,
                          headers={**TUS, "Upload-Length": "5"}).headers["Location"]  # fmt: skip
    rec.call(op, "incomplete", 204, f"/api/v1/temp-contents/{incomplete.rsplit('/', 1)[1]}",
             token=token)  # fmt: skip
    rec.call(op, "uploaded file", 200, f"/api/v1/temp-contents/{file_id}", token=token)
    rec.call(op, "unknown", 404, "/api/v1/temp-contents/nope", token=token)
    rec.call(op, "no bearer", 401, f"/api/v1/temp-contents/{file_id}")

    op = "POST /api/v1/apps/import"
    imported = rec.call(op, "into a shared space", 200,
                        f"/api/v1/apps/import?fileId={file_id}&spaceId={shared}&name=Sales",
                        token=token).json()["attributes"]["id"]  # fmt: skip
    rec.call(op, "unknown file", 404, "/api/v1/apps/import?fileId=nope", token=token)
    rec.call(op, "no file", 400, "/api/v1/apps/import", token=token)
    rec.call(op, "no bearer", 401, f"/api/v1/apps/import?fileId={file_id}")

    op = "POST /api/v1/apps/{appId}/export"
    exported = rec.call(op, "seeded app", 201, f"/api/v1/apps/{app_id}/export?NoData=true",
                        token=token)  # fmt: skip
    rec.call(op, "imported app", 201, f"/api/v1/apps/{imported}/export", token=token)
    rec.call(op, "unknown", 404, "/api/v1/apps/nope/export", token=token)
    rec.call(op, "no bearer", 401, f"/api/v1/apps/{app_id}/export")
    rec.call("GET /api/v1/temp-contents/{id}", "export", 200, exported.headers["Location"],
             token=token)  # fmt: skip

    op = "POST /api/v1/apps/{appId}/publish"
    published = rec.call(op, "to a managed space", 200, f"/api/v1/apps/{imported}/publish",
                         token=token, json={"spaceId": managed, "data": "source"})  # fmt: skip
    target = published.json()["attributes"]["id"]
    rec.call(op, "to a shared space", 400, f"/api/v1/apps/{imported}/publish", token=token,
             json={"spaceId": shared})  # fmt: skip
    rec.call(op, "unknown", 404, "/api/v1/apps/nope/publish", token=token,
             json={"spaceId": managed})  # fmt: skip
    rec.call(op, "no bearer", 401, f"/api/v1/apps/{imported}/publish", json={"spaceId": managed})
    op = "PUT /api/v1/apps/{appId}/publish"
    rec.call(op, "same origin", 200, f"/api/v1/apps/{imported}/publish", token=token,
             json={"targetId": target, "data": "target"})  # fmt: skip
    rec.call(op, "other origin", 400, f"/api/v1/apps/{app_id}/publish", token=token,
             json={"targetId": target})  # fmt: skip
    rec.call(op, "origin not checked", 200, f"/api/v1/apps/{app_id}/publish", token=token,
             json={"targetId": target, "checkOriginAppId": False})  # fmt: skip
    rec.call(op, "unknown target", 404, f"/api/v1/apps/{app_id}/publish", token=token,
             json={"targetId": "nope"})  # fmt: skip
    rec.call(op, "no bearer", 401, f"/api/v1/apps/{app_id}/publish", json={"targetId": target})
    rec.call("GET /api/v1/apps/{appId}", "published app", 200, f"/api/v1/apps/{target}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/items", "published items", 200,
             f"/api/v1/items?resourceType=app&spaceId={managed}", token=token)  # fmt: skip

    op = "POST /api/v1/spaces"
    space = rec.call(op, "create", 201, "/api/v1/spaces", token=token,
                     json={"name": "Finance (dev)", "type": "shared"}).json()  # fmt: skip
    rec.call(op, "same name", 409, "/api/v1/spaces", token=token,
             json={"name": "finance (dev)", "type": "managed"})  # fmt: skip
    rec.call(op, "bad type", 400, "/api/v1/spaces", token=token,
             json={"name": "x", "type": "personal"})  # fmt: skip
    rec.call(op, "no bearer", 401, "/api/v1/spaces", json={"name": "y", "type": "data"})
    op = "POST /api/v1/spaces/{spaceId}/assignments"
    user = rec.tenant.collect("/api/v1/users", token)[0]["id"]
    assignments = f"/api/v1/spaces/{space['id']}/assignments"
    grant = {"type": "user", "assigneeId": user, "roles": ["producer"]}
    rec.call(op, "assign", 201, assignments, token=token, json=grant)
    rec.call(op, "again", 409, assignments, token=token, json=grant)
    rec.call(op, "role of another space type", 400, assignments, token=token,
             json={**grant, "roles": ["publisher"]})  # fmt: skip
    rec.call(op, "unknown space", 404, "/api/v1/spaces/x/assignments", token=token, json=grant)
    rec.call(op, "no bearer", 401, assignments, json=grant)
    op = "GET /api/v1/spaces/{spaceId}/assignments"
    rec.call(op, "list", 200, assignments, token=token)
    rec.call(op, "unknown space", 404, "/api/v1/spaces/x/assignments", token=token)
    rec.call(op, "no bearer", 401, assignments)

    op = "POST /api/v1/data-files"
    form = {"Json": (None, json.dumps({"name": "sales.csv"})), "File": ("sales.csv", b"a,b\n")}
    data_file = rec.call(op, "upload", 201, "/api/v1/data-files", token=token, files=form).json()
    rec.call(op, "from temp contents", 201, "/api/v1/data-files", token=token,
             files={"Json": (None, json.dumps({"name": "big.qvd",
                                               "tempContentFileId": file_id}))})  # fmt: skip
    rec.call(op, "same name", 409, "/api/v1/data-files", token=token, files=form)
    rec.call(op, "no name", 400, "/api/v1/data-files", token=token,
             files={"Json": (None, "{}")})  # fmt: skip
    op = "PUT /api/v1/data-files/{id}"
    rec.call(op, "replace", 201, f"/api/v1/data-files/{data_file['id']}", token=token, files=form)
    rec.call(op, "unknown", 404, "/api/v1/data-files/nope", token=token, files=form)
    op = "GET /api/v1/data-files"
    rec.call(op, "page", 200, "/api/v1/data-files?limit=1", token=token)
    rec.call(op, "by name", 200, "/api/v1/data-files?name=sales.csv", token=token)
    rec.call("GET /api/v1/data-files/{id}", "file", 200, f"/api/v1/data-files/{data_file['id']}",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/data-files/{id}", "unknown", 404, "/api/v1/data-files/x", token=token)
    op = "DELETE /api/v1/data-files/{id}"
    rec.call(op, "delete", 204, f"/api/v1/data-files/{data_file['id']}", token=token)
    rec.call(op, "again", 404, f"/api/v1/data-files/{data_file['id']}", token=token)

    op = "DELETE /api/v1/apps/{appId}"
    rec.call(op, "delete", 200, f"/api/v1/apps/{imported}", token=token)
    rec.call(op, "again", 404, f"/api/v1/apps/{imported}", token=token)
    rec.call(op, "no bearer", 401, f"/api/v1/apps/{target}")


def _play_keys_and_secrets(rec: Recorder, clock: FakeClock) -> None:
    tenant = rec.tenant
    sandbox = tenant.sandbox
    token = tenant.token()
    client = f"/api/v1/oauth-clients/{sandbox.client_id}"
    audience = f"{tenant.url}/oauth/token"
    pair = key_pair("ES384", "contract-key")
    rec.call("PATCH /api/v1/oauth-clients/{id}", "add a key", 204, client, token=token,
             json=[{"op": "add", "path": "/publicKeys", "value": [pair.public_jwk]}])  # fmt: skip
    rec.call("PATCH /api/v1/oauth-clients/{id}", "weak key", 400, client, token=token,
             json=[{"op": "add", "path": "/publicKeys",
                    "value": [key_pair("RS256", "weak", bits=1024).public_jwk]}])  # fmt: skip
    rec.call("PATCH /api/v1/oauth-clients/{id}", "unknown client", 404,
             "/api/v1/oauth-clients/nobody", token=token, json=[])  # fmt: skip
    rec.call("PATCH /api/v1/oauth-clients/{id}", "no bearer", 401, client, json=[])
    rec.call("GET /api/v1/oauth-clients/{id}", "with keys and secrets", 200, client, token=token)
    rec.call("GET /api/v1/oauth-clients/{id}", "unknown", 404, "/api/v1/oauth-clients/x",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/oauth-clients/{id}", "no bearer", 401, client)
    rec.call("POST /oauth/token", "private-key JWT", 200, "/oauth/token",
             json=token_form(pair.assertion(sandbox.client_id, audience,
                                            now=clock.now)))  # fmt: skip
    rec.call("POST /oauth/token", "assertion for another audience", 401, "/oauth/token",
             json=token_form(pair.assertion(sandbox.client_id, "https://x/oauth/token",
                                            now=clock.now)))  # fmt: skip
    rec.call("POST /oauth/token", "assertion with a secret", 400, "/oauth/token",
             json=token_form("a.b.c", client_secret="x"))  # fmt: skip
    secrets_path = f"{client}/client-secrets"
    created = [
        rec.call(
            "POST /api/v1/oauth-clients/{id}/client-secrets",
            "create",
            201,
            secrets_path,
            token=token,
        ).json()
        for _ in range(4)
    ]
    rec.call("POST /api/v1/oauth-clients/{id}/client-secrets", "sixth", 409, secrets_path,
             token=token)  # fmt: skip
    rec.call("POST /api/v1/oauth-clients/{id}/client-secrets", "unknown client", 404,
             "/api/v1/oauth-clients/x/client-secrets", token=token)  # fmt: skip
    rec.call("POST /api/v1/oauth-clients/{id}/client-secrets", "no bearer", 401, secrets_path)
    rec.call("DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}", "delete", 204,
             f"{secrets_path}/{created[0]['hint']}", token=token)  # fmt: skip
    rec.call("DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}", "unknown hint", 404,
             f"{secrets_path}/{created[0]['hint']}", token=token)  # fmt: skip
    rec.call("DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}", "no bearer", 401,
             f"{secrets_path}/{created[1]['hint']}")  # fmt: skip
    tokens = rec.call("GET /api/v1/oauth-tokens", "list", 200, "/api/v1/oauth-tokens?limit=1",
                      token=token)  # fmt: skip
    rec.call("GET /api/v1/oauth-tokens", "bad limit", 400, "/api/v1/oauth-tokens?limit=0",
             token=token)  # fmt: skip
    rec.call("GET /api/v1/oauth-tokens", "no bearer", 401, "/api/v1/oauth-tokens")
    spare = tenant.token()
    rec.call("DELETE /api/v1/oauth-tokens/{tokenId}", "delete", 204,
             f"/api/v1/oauth-tokens/{tokens.json()['data'][0]['id']}", token=spare)  # fmt: skip
    rec.call("DELETE /api/v1/oauth-tokens/{tokenId}", "unknown", 404, "/api/v1/oauth-tokens/x",
             token=spare)  # fmt: skip
    rec.call("DELETE /api/v1/oauth-tokens/{tokenId}", "no bearer", 401, "/api/v1/oauth-tokens/x")


def _play_limits(rec: Recorder) -> None:
    tenant = rec.tenant
    rec.call("POST /oauth/token", "within tier 2", 200, "/oauth/token", json=tenant.credentials())
    rec.call("POST /oauth/token", "token cap", 403, "/oauth/token", json=tenant.credentials())
    rec.call("POST /oauth/token", "tier 2 full", 429, "/oauth/token", json=tenant.credentials())
    token = str(tenant.sandbox.api_key)
    rec.call("GET /api/v1/users/me", "within tier 1", 301, "/api/v1/users/me", token=token)
    for operation, path in [
        ("GET /api/v1/users/me", "/api/v1/users/me"),
        ("GET /api/v1/users/{userId}", "/api/v1/users/x"),
        ("GET /api/v1/users", "/api/v1/users"),
        ("GET /api/v1/tenants/{tenantId}", "/api/v1/tenants/x"),
        ("GET /api/v1/spaces", "/api/v1/spaces"),
        ("GET /api/v1/spaces/{spaceId}", "/api/v1/spaces/x"),
        ("GET /api/v1/items", "/api/v1/items"),
        ("GET /api/v1/items/{itemId}", "/api/v1/items/x"),
        ("GET /api/v1/apps/{appId}", "/api/v1/apps/x"),
        ("GET /api/v1/reloads", "/api/v1/reloads?appId=x"),
        ("GET /api/v1/reloads/{reloadId}", "/api/v1/reloads/x"),
        ("GET /api/v1/oauth-clients/{id}", "/api/v1/oauth-clients/x"),
        ("GET /api/v1/oauth-tokens", "/api/v1/oauth-tokens"),
        ("GET /api/v1/temp-contents/{id}", "/api/v1/temp-contents/x"),
        ("GET /api/v1/spaces/{spaceId}/assignments", "/api/v1/spaces/x/assignments"),
    ]:
        rec.call(operation, "tier 1 full", 429, path, token=token)
    for _ in range(2):
        rec.call("POST /api/v1/reloads", "within tier 2", 201, "/api/v1/reloads", token=token,
                 json={"appId": tenant.sandbox.app_ids()[0]})  # fmt: skip
    rec.call("POST /api/v1/reloads", "tier 2 full", 429, "/api/v1/reloads", token=token,
             json={"appId": tenant.sandbox.app_ids()[0]})  # fmt: skip


@pytest.fixture(scope="module")
def exchanges(sandbox_ca: SandboxCA) -> Iterator[list[Exchange]]:
    clock = FakeClock()
    base = {**TEST_DEFAULTS, "clock": clock, "api_key": "contract-key", "items": 40}
    main = Sandbox(SandboxConfig(**base, fail_apps=("broken-app",), exceed_limit_apps=("huge-app",)),
                   ssl_context=sandbox_ca.server_context, ca_bundle=str(sandbox_ca.ca_pem))  # fmt: skip
    limited = Sandbox(
        SandboxConfig(**base, rate_limit_tier1=1, rate_limit_tier2=2, max_tokens_per_client=1),
        ssl_context=sandbox_ca.server_context,
        ca_bundle=str(sandbox_ca.ca_pem),
    )
    with main, limited:
        first, second = Recorder(Tenant(main)), Recorder(Tenant(limited))
        _play_main(first, clock)
        _play_keys_and_secrets(first, clock)
        _play_limits(second)
        yield first.exchanges + second.exchanges


def _error_schema_pointer(spec_name: str, template: str, method: str) -> str:
    """The spec's own error shape: another error answer of the operation, else its Errors."""
    operations = _spec(spec_name)["paths"]
    candidates = [(template, method)] + [(p, m) for p, ops in operations.items() for m in ops]
    for path, verb in candidates:
        declared = operations[path][verb]
        if not isinstance(declared, dict):
            continue
        for status, answer in sorted(declared.get("responses", {}).items()):
            location = f"/paths/{_escape(path)}/{verb}/responses/{status}"
            if "$ref" in answer:  # a shared answer under components/responses
                location = answer["$ref"].removeprefix("#")
                answer = _spec(spec_name)["components"]["responses"][location.split("/")[-1]]
            schema = (answer.get("content") or {}).get("application/json", {}).get("schema")
            if status.startswith("4") and schema:
                return f"{location}/content/{_escape('application/json')}/schema"
    return "/components/schemas/Errors"


def _problems(exchange: Exchange) -> list[str]:
    spec_name, template, method = OPERATIONS[exchange.operation]
    responses = _spec(spec_name)["paths"][template][method]["responses"]
    response = exchange.response
    status = str(response.status_code)
    where = f"{exchange.operation} [{exchange.label}] {status}"
    key = status if status in responses else "default" if "default" in responses else None
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    if key is None and exchange.operation in GATEWAY_ERRORS_UNCHECKED:
        return [] if response.status_code in (401, 429) else [f"{where}: status not in the spec"]
    if key is None:
        if response.status_code not in UNDOCUMENTED_BUT_REAL:
            return [f"{where}: status not in the spec"]
        pointer = _error_schema_pointer(spec_name, template, method)
        if media != "application/json":
            return [f"{where}: undocumented status with content type {media!r}"]
        return [
            f"{where}: {e.message}"
            for e in _validator(spec_name, pointer).iter_errors(response.json())
        ]
    declared = responses[key]
    location = f"/paths/{_escape(template)}/{method}/responses/{key}"
    if "$ref" in declared:  # a shared answer under components/responses
        location = declared["$ref"].removeprefix("#")
        declared = _spec(spec_name)
        for part in location.strip("/").split("/"):
            declared = declared[part.replace("~1", "/").replace("~0", "~")]
    problems = [
        f"{where}: header {name} missing"
        for name in declared.get("headers", {})
        if name.lower() not in {h.lower() for h in response.headers} and not name.startswith("X-")
    ]
    content = declared.get("content") or {}
    if not content and response.status_code >= 400 and response.content:
        # The apps spec lists some refusals without a body; Qlik's Errors body is still allowed.
        pointer = _error_schema_pointer(spec_name, template, method)
        return [
            f"{where}: {e.message}"
            for e in _validator(spec_name, pointer).iter_errors(response.json())
        ]
    if not content:
        if response.content:
            problems.append(f"{where}: the spec declares no body but one was sent")
        return problems
    if media not in content and "*/*" in content:
        # A download: any type is allowed, and the body is the file, not a schema's instance.
        return problems
    if media not in content:
        return [*problems, f"{where}: content type {media!r} not in {sorted(content)}"]
    if "schema" not in content[media]:
        return problems
    pointer = SCHEMA_INSTEAD.get(
        (exchange.operation, response.status_code),
        f"{location}/content/{_escape(media)}/schema",
    )
    instance = response.json() if media == "application/json" else response.text
    errors = _validator(spec_name, pointer).iter_errors(instance)
    return [*problems, *(f"{where}: {e.json_path}: {e.message}" for e in errors)]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_answer_matches_the_spec(exchanges: list[Exchange], operation: str) -> None:
    mine = [e for e in exchanges if e.operation == operation]
    assert any(e.response.status_code < 400 for e in mine), "no successful answer was exercised"

    problems = [problem for exchange in mine for problem in _problems(exchange)]

    assert problems == []


def test_the_scenario_covers_every_status_the_sandbox_gives(exchanges: list[Exchange]) -> None:
    seen = {(e.operation, e.response.status_code) for e in exchanges}

    # Each operation's refusals are exercised, not only its happy path.
    for operation in OPERATIONS:
        if operation in GATEWAY_ERRORS_UNCHECKED:
            continue
        if operation.split(" ")[1].startswith("/api/"):
            assert (operation, 401) in seen, operation
        if operation.startswith("GET /api/v1/") and "/me" not in operation:
            assert (operation, 429) in seen, operation
    assert {s for o, s in seen if o == "POST /oauth/token"} == {200, 400, 401, 403, 429}
