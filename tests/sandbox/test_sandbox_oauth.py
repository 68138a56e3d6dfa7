"""The sandbox's OAuth endpoints behave like Qlik Cloud's (qlik-wire-notes.md, oauth.json)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from fixtures_sandbox import Tenant
from harness import FakeClock

from qlikm2m.sandbox import ClientSpec

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def _error(response_json: dict[str, object]) -> dict[str, object]:
    errors = response_json["errors"]
    assert isinstance(errors, list)
    assert len(errors) == 1
    assert TRACE_ID.match(str(response_json["traceId"]))
    first = errors[0]
    assert isinstance(first, dict)
    return first


def test_client_credentials_in_a_json_body(tenant: Tenant) -> None:
    response = tenant.post_token(json=tenant.credentials())

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["scope"] == "user_default"
    assert body["expires_in"] == 21600
    assert "refresh_token" not in body
    expires_at = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    remaining = expires_at.timestamp() - datetime.now(UTC).timestamp()
    assert 21500 < remaining <= 21600
    assert tenant.get("/api/v1/users/me", body["access_token"]).status_code == 200


def test_client_credentials_in_a_form_body(tenant: Tenant) -> None:
    response = tenant.post_token(data=tenant.credentials())

    assert response.status_code == 200
    assert tenant.get("/api/v1/users/me", response.json()["access_token"]).status_code == 200


def test_client_credentials_in_http_basic_like_the_python_sdk(tenant: Tenant) -> None:
    response = tenant.post_token(
        data={"grant_type": "client_credentials", "scope": "user_default"},
        auth=(tenant.sandbox.client_id, tenant.sandbox.client_secret),
    )

    assert response.status_code == 200, response.text


def test_basic_credentials_are_form_decoded(make_sandbox: object) -> None:
    sandbox = make_sandbox(client_id="id:with+odd", client_secret="s3cr3t/+:%")  # type: ignore[operator]
    tenant = Tenant(sandbox)
    encoded = base64.b64encode(
        f"{quote('id:with+odd', safe='')}:{quote('s3cr3t/+:%', safe='')}".encode()
    ).decode()

    response = tenant.post_token(
        data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {encoded}"}
    )

    assert response.status_code == 200, response.text


def test_each_token_is_new_and_opaque(tenant: Tenant) -> None:
    first, second = tenant.token(), tenant.token()

    assert first != second
    assert "." not in first  # not a JWT: clients must not try to decode it
    assert tenant.sandbox.count("POST /oauth/token") == 2
    assert tenant.sandbox.live_tokens() == 2


def test_unknown_client_is_a_400_oauth_14(tenant: Tenant) -> None:
    response = tenant.post_token(json=tenant.credentials(client_id="nobody"))

    assert response.status_code == 400
    error = _error(response.json())
    assert error["code"] == "OAUTH-14"
    assert error["title"] == "Invalid client_id"
    assert error["status"] == "400"


def test_wrong_secret_is_a_401_oauth_5_that_never_echoes_the_secret(tenant: Tenant) -> None:
    response = tenant.post_token(json=tenant.credentials(client_secret="wrong-secret-value"))

    assert response.status_code == 401
    error = _error(response.json())
    assert (error["code"], error["status"]) == ("OAUTH-5", "401")
    assert "wrong-secret-value" not in response.text
    assert tenant.sandbox.client_secret not in response.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"grant_type": ""}, "OAUTH-1"),
        ({"grant_type": "password"}, "OAUTH-2"),
        ({"scope": "user_default admin_everything"}, "OAUTH-3"),
    ],
)
def test_bad_requests_are_400_in_qlik_shape(
    tenant: Tenant, body: dict[str, str], code: str
) -> None:
    response = tenant.post_token(json=tenant.credentials(**body))

    assert response.status_code == 400
    assert _error(response.json())["code"] == code


def test_a_body_that_is_not_json_is_a_400(tenant: Tenant) -> None:
    response = tenant.post_token(data="{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert _error(response.json())["code"] == "OAUTH-1"


def test_empty_scope_grants_the_allow_list_without_offline_access(make_sandbox: object) -> None:
    sandbox = make_sandbox(scopes=("user_default", "admin_classic", "offline_access"))  # type: ignore[operator]
    tenant = Tenant(sandbox)

    for scope in (None, "", "  "):
        extra = {} if scope is None else {"scope": scope}
        body = tenant.post_token(json=tenant.credentials(**extra)).json()
        assert body["scope"] == "user_default admin_classic"
        assert "refresh_token" not in body


def test_offline_access_brings_a_refresh_token_that_mints_again(tenant: Tenant) -> None:
    body = tenant.post_token(json=tenant.credentials(scope="user_default offline_access")).json()
    assert body["scope"] == "user_default offline_access"

    refreshed = tenant.post_token(
        json={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": tenant.sandbox.client_id,
            "client_secret": tenant.sandbox.client_secret,
        }
    )

    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != body["access_token"]
    bogus = tenant.post_token(
        json=tenant.credentials(grant_type="refresh_token", refresh_token="nope")
    )
    assert bogus.status_code == 401


def _me(tenant: Tenant, token: str) -> dict[str, object]:
    response = tenant.get("/api/v1/users/me", token)
    assert response.status_code == 200
    me = response.json()
    assert isinstance(me, dict)
    return me


def test_impersonation_by_subject_and_by_user_id(tenant: Tenant) -> None:
    bot = _me(tenant, tenant.token())
    admin = tenant.get("/api/v1/users", tenant.token(), params={"limit": "100"}).json()["data"]
    human = next(u for u in admin if "clientId" not in u)
    grant = "urn:qlik:oauth:user-impersonation"

    by_subject = tenant.token(
        grant_type=grant, user_lookup={"field": "subject", "value": human["subject"]}
    )
    by_id = tenant.token(grant_type=grant, user_lookup={"field": "userId", "value": human["id"]})

    assert _me(tenant, by_subject)["id"] == human["id"]
    assert _me(tenant, by_id)["id"] == human["id"]
    assert bot["subject"] == f"qlikbot\\{tenant.sandbox.client_id}"
    assert bot["clientId"] == tenant.sandbox.client_id


def test_impersonating_an_unknown_user_or_without_lookup_is_refused(tenant: Tenant) -> None:
    grant = "urn:qlik:oauth:user-impersonation"
    unknown = tenant.post_token(
        json=tenant.credentials(grant_type=grant, user_lookup={"field": "subject", "value": "x"})
    )
    missing = tenant.post_token(json=tenant.credentials(grant_type=grant))

    assert unknown.status_code == 400
    assert missing.status_code == 400
    assert _error(missing.json())["code"] == "OAUTH-1"


def test_a_client_that_may_not_impersonate_gets_403(make_sandbox: object) -> None:
    other = ClientSpec("plain-client", "plain-secret", may_impersonate=False)
    sandbox = make_sandbox(extra_clients=(other,))  # type: ignore[operator]
    tenant = Tenant(sandbox)

    response = tenant.post_token(
        json={
            "client_id": "plain-client",
            "client_secret": "plain-secret",
            "grant_type": "urn:qlik:oauth:user-impersonation",
            "user_lookup": {"field": "subject", "value": "auth0|sandbox-user-1"},
        }
    )

    assert response.status_code == 403


def test_the_token_cap_answers_403_until_a_token_is_revoked(make_sandbox: object) -> None:
    sandbox = make_sandbox(max_tokens_per_client=2)  # type: ignore[operator]
    tenant = Tenant(sandbox)
    first = tenant.token()
    tenant.token()

    refused = tenant.post_token(json=tenant.credentials())
    assert refused.status_code == 403
    assert "maximum number of tokens" in str(_error(refused.json())["detail"])

    assert (
        tenant.session.post(
            f"{tenant.url}/oauth/revoke", json={"token": first}, timeout=5
        ).status_code
        == 200
    )
    assert tenant.post_token(json=tenant.credentials()).status_code == 200


def test_the_token_cap_frees_up_as_tokens_expire(make_sandbox: object, clock: FakeClock) -> None:
    sandbox = make_sandbox(max_tokens_per_client=1, token_lifetime=60, clock=clock)  # type: ignore[operator]
    tenant = Tenant(sandbox)
    tenant.token()
    assert tenant.post_token(json=tenant.credentials()).status_code == 403

    clock.advance(61)

    assert tenant.post_token(json=tenant.credentials()).status_code == 200


def test_revoke_accepts_json_and_form_and_the_token_stops_working(tenant: Tenant) -> None:
    first, second = tenant.token(), tenant.token()

    as_json = tenant.session.post(
        f"{tenant.url}/oauth/revoke",
        json={"token": first, "token_type_hint": "access_token"},
        timeout=5,
    )
    as_form = tenant.session.post(f"{tenant.url}/oauth/revoke", data={"token": second}, timeout=5)

    assert (as_json.status_code, as_form.status_code) == (200, 200)
    assert tenant.get("/api/v1/users/me", first).status_code == 401
    assert tenant.get("/api/v1/users/me", second).status_code == 401


def test_revoke_without_a_token_is_a_400(tenant: Tenant) -> None:
    response = tenant.session.post(f"{tenant.url}/oauth/revoke", json={}, timeout=5)

    assert response.status_code == 400
    assert _error(response.json())["code"] == "OAUTH-1"


def test_well_known_metadata_points_at_this_sandbox(tenant: Tenant) -> None:
    response = tenant.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    metadata = response.json()
    assert metadata["token_endpoint"] == f"{tenant.url}/oauth/token"
    assert metadata["revocation_endpoint"] == f"{tenant.url}/oauth/revoke"
    assert metadata["issuer"] == tenant.url
    assert "client_credentials" in metadata["grant_types_supported"]


def test_tokens_expire_after_their_lifetime(make_sandbox: object, clock: FakeClock) -> None:
    sandbox = make_sandbox(token_lifetime=300, clock=clock)  # type: ignore[operator]
    tenant = Tenant(sandbox)
    token = tenant.token()
    body = tenant.post_token(json=tenant.credentials()).json()
    assert body["expires_in"] == 300

    clock.advance(299)
    assert tenant.get("/api/v1/users/me", token).status_code == 200
    clock.advance(2)
    expired = tenant.get("/api/v1/users/me", token)

    assert expired.status_code == 401
    assert "expired" in expired.json()["errors"][0]["detail"]


def test_dead_tokens_are_forgotten_an_hour_after_they_die(
    make_sandbox: object, clock: FakeClock
) -> None:
    from qlikm2m.sandbox.state import DEAD_TOKEN_MEMORY, TOKEN_SWEEP_FLOOR

    sandbox = make_sandbox(token_lifetime=300, clock=clock)  # type: ignore[operator]
    state = sandbox.state
    client = sandbox.client_id
    bot = state.bot_user_ids[client]
    old = [state.mint(client, bot, "user_default") for _ in range(TOKEN_SWEEP_FLOOR - 1)]
    state.revoke(old[0].value)
    tenant = Tenant(sandbox)
    recent = tenant.token()  # the 1,024th: a sweep with nothing dead yet keeps everything
    assert len(state.tokens) == TOKEN_SWEEP_FLOOR

    clock.advance(300 + DEAD_TOKEN_MEMORY - 1)
    # Dead, but recently enough that the answer still says why.
    assert "expired" in tenant.get("/api/v1/users/me", recent).json()["errors"][0]["detail"]
    clock.advance(2)
    alive = [state.mint(client, bot, "user_default") for _ in range(TOKEN_SWEEP_FLOOR)]
    assert set(state.tokens) == {t.value for t in alive}  # every dead one was forgotten
    assert tenant.get("/api/v1/users/me", alive[-1].value).status_code == 200
    forgotten = tenant.get("/api/v1/users/me", recent)
    assert forgotten.status_code == 401
