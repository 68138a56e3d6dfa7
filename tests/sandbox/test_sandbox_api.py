"""Bearer checks, the */me redirects, single resources and per-service error shapes."""

from __future__ import annotations

import pytest
from fixtures_sandbox import Tenant


def test_users_me_is_a_301_to_the_bot_user(tenant: Tenant) -> None:
    token = tenant.token()
    response = tenant.get("/api/v1/users/me", token, allow_redirects=False)

    assert response.status_code == 301
    assert response.headers["Content-Type"].startswith("text/html")
    location = response.headers["Location"]
    assert location.startswith("/api/v1/users/")
    user = tenant.get(location, token).json()
    assert user["clientId"] == tenant.sandbox.client_id
    assert user["subject"] == f"qlikbot\\{tenant.sandbox.client_id}"


def test_tenants_me_is_a_302_to_the_tenant(tenant: Tenant) -> None:
    token = tenant.token()
    response = tenant.get("/api/v1/tenants/me", token, allow_redirects=False)

    assert response.status_code == 302
    followed = tenant.get("/api/v1/tenants/me", token)
    assert followed.status_code == 200
    assert followed.url.endswith(response.headers["Location"])
    assert followed.json()["id"] == response.headers["Location"].rsplit("/", 1)[1]


def test_links_use_the_host_the_client_addressed(tenant: Tenant) -> None:
    token = tenant.token()
    via_localhost = tenant.url.replace("127.0.0.1", "localhost")

    user = tenant.get(f"{via_localhost}/api/v1/users/me", token).json()

    assert user["links"]["self"]["href"].startswith(f"{via_localhost}/api/v1/users/")


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Missing"),
        ("Bearer", "Missing"),
        ("Basic abc", "Missing"),
        ("Bearer not-a-token", "Invalid"),
    ],
)
def test_bad_bearers_are_401_with_an_errors_body(
    tenant: Tenant, header: str | None, detail: str
) -> None:
    headers = {"Authorization": header} if header else {}

    response = tenant.get("/api/v1/users/me", headers=headers, allow_redirects=False)

    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["code"] == "HTTP-401"
    assert body["errors"][0]["title"] == "Unauthorized"
    assert detail in body["errors"][0]["detail"]
    assert len(body["traceId"]) == 32


def test_revoke_all_and_expire_all_invalidate_live_tokens(tenant: Tenant) -> None:
    first = tenant.token()
    assert tenant.sandbox.revoke_all() == 1
    second = tenant.token()
    assert tenant.sandbox.expire_all() == 1

    revoked = tenant.get("/api/v1/users/me", first)
    expired = tenant.get("/api/v1/users/me", second)

    assert revoked.status_code == expired.status_code == 401
    assert "revoked" in revoked.json()["errors"][0]["detail"]
    assert "expired" in expired.json()["errors"][0]["detail"]
    assert tenant.get("/api/v1/users/me", tenant.token()).status_code == 200


def test_the_api_key_is_a_bearer_for_a_human_user(tenant: Tenant) -> None:
    key = tenant.sandbox.api_key
    assert key

    me = tenant.get("/api/v1/users/me", key).json()

    assert "clientId" not in me
    assert me["subject"].startswith("auth0|")
    assert tenant.sandbox.count("POST /oauth/token") == 0


@pytest.mark.parametrize(
    ("path", "status_field"),
    [
        ("/api/v1/users/nope", 404),
        ("/api/v1/tenants/nope", "404"),
        ("/api/v1/spaces/nope", None),
        ("/api/v1/items/nope", None),
        ("/api/v1/apps/nope", None),
        ("/api/v1/reloads/nope", None),
    ],
)
def test_unknown_ids_are_404_shaped_like_each_service(
    tenant: Tenant, path: str, status_field: object
) -> None:
    response = tenant.get(path, tenant.token())

    assert response.status_code == 404
    error = response.json()["errors"][0]
    assert error["code"] == "HTTP-404"
    assert error.get("status") == status_field
    if path.startswith("/api/v1/items"):
        assert error["meta"] == {"fault": False, "temporary": False, "timeout": False}


def test_unknown_routes_and_methods(tenant: Tenant) -> None:
    token = tenant.token()

    assert tenant.get("/api/v1/nothing-here", token).status_code == 404
    assert tenant.session.delete(f"{tenant.url}/api/v1/users/me", timeout=5).status_code == 405
    assert tenant.sandbox.count("GET /api/v1/nothing-here") == 1


def test_single_resources(tenant: Tenant) -> None:
    token = tenant.token()
    items = tenant.get("/api/v1/items", token, params={"resourceType": "app"}).json()["data"]
    app_item = items[0]
    space_id = tenant.get("/api/v1/spaces", token).json()["data"][0]["id"]

    item = tenant.get(f"/api/v1/items/{app_item['id']}", token).json()
    app = tenant.get(f"/api/v1/apps/{app_item['resourceId']}", token).json()
    space = tenant.get(f"/api/v1/spaces/{space_id}", token).json()

    assert item == app_item
    assert app["attributes"]["id"] == app_item["resourceId"]
    assert app["attributes"]["name"] == app_item["name"]
    assert space["id"] == space_id
    assert space["links"]["assignments"]["href"].endswith(f"/api/v1/spaces/{space_id}/assignments")


def test_a_failing_app_that_is_not_seeded_is_added(make_sandbox: object) -> None:
    sandbox = make_sandbox(items=4, fail_apps=("my-broken-app",))  # type: ignore[operator]
    tenant = Tenant(sandbox)
    token = tenant.token()

    app = tenant.get("/api/v1/apps/my-broken-app", token)
    apps = tenant.collect("/api/v1/items", token, {"resourceType": "app"})

    assert app.status_code == 200
    assert "my-broken-app" in [a["resourceId"] for a in apps]
    assert sorted(sandbox.app_ids()) == sorted(a["resourceId"] for a in apps)


def test_request_bodies_over_the_limit_are_refused(make_sandbox: object) -> None:
    sandbox = make_sandbox(max_body_bytes=1000)  # type: ignore[operator]
    tenant = Tenant(sandbox)

    response = tenant.post_token(data="x" * 2000)

    assert response.status_code == 413
