"""Per-tier rate limits: off by default; when on, 429 with retry-after and Qlik's body."""

from __future__ import annotations

import pytest
from fixtures_sandbox import Tenant
from harness import FakeClock

from qlikm2m.sandbox import Sandbox


@pytest.fixture
def limited(make_sandbox: object, clock: FakeClock) -> Tenant:
    sandbox: Sandbox = make_sandbox(  # type: ignore[operator]
        clock=clock, rate_limit_tier1=3, rate_limit_tier2=2, rate_limit_window=60
    )
    return Tenant(sandbox)


def test_no_limits_by_default(tenant: Tenant) -> None:
    token = tenant.token()

    statuses = {tenant.get("/api/v1/users", token).status_code for _ in range(150)}

    assert statuses == {200}


def test_tier1_blocks_gets_until_the_window_ends(limited: Tenant, clock: FakeClock) -> None:
    token = limited.token()
    for _ in range(3):
        assert limited.get("/api/v1/users", token).status_code == 200
    clock.advance(15)

    blocked = limited.get("/api/v1/items", token)

    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "45"
    error = blocked.json()["errors"][0]
    assert error["code"] == "HTTP-429"
    assert error["title"] == "API rate limit reached."
    assert error["detail"] == "You need to wait 45 seconds until limit is lifted."
    clock.advance(45)
    assert limited.get("/api/v1/items", token).status_code == 200


def test_tier2_covers_token_requests_and_writes_separately_from_tier1(
    limited: Tenant,
) -> None:
    first = limited.post_token(json=limited.credentials())
    second = limited.post_token(json=limited.credentials())
    third = limited.post_token(json=limited.credentials())

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert int(third.headers["retry-after"]) >= 1
    token = first.json()["access_token"]
    assert limited.get("/api/v1/users", token).status_code == 200  # tier 1 is untouched
    app_id = limited.sandbox.app_ids()[0]
    assert limited.post("/api/v1/reloads", token, json={"appId": app_id}).status_code == 201
    assert limited.post("/api/v1/reloads", token, json={"appId": app_id}).status_code == 201
    assert limited.post("/api/v1/reloads", token, json={"appId": app_id}).status_code == 429


def test_limits_count_per_user(limited: Tenant) -> None:
    bot = limited.token()
    key = limited.sandbox.api_key
    for _ in range(3):
        limited.get("/api/v1/users", bot)

    assert limited.get("/api/v1/users", bot).status_code == 429
    assert limited.get("/api/v1/users", key).status_code == 200
