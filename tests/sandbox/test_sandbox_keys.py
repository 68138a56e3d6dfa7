"""The sandbox as an OAuth server for private-key JWT and several client secrets: registering keys,
verifying client assertions (each refusal with its code), creating and deleting secrets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fixtures_sandbox import Tenant
from keys_support import ALGORITHMS, KeyPair, key_pair, token_form

from qlikm2m.sandbox import ClientSpec, Sandbox
from qlikm2m.sandbox.credentials import CLOCK_LEEWAY, MAX_ASSERTION_LIFETIME, SECRET_LIMIT
from qlikm2m.sandbox.jose import JoseError, check_public_jwk, parse_compact, verify


def _audience(tenant: Tenant) -> str:
    return f"{tenant.url}/oauth/token"


def _registered(tenant: Tenant, alg: str, kid: str | None = None) -> KeyPair:
    pair = key_pair(alg, kid)
    tenant.sandbox.add_public_key(pair.public_jwk)
    return pair


def _refusal(response: Any) -> tuple[int, str, str]:
    error = response.json()["errors"][0]
    assert error["status"] == str(response.status_code)  # the oauth service's string status
    return response.status_code, error["code"], error.get("detail", "")


# -- the stdlib verifier against PyJWT/cryptography ---------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_the_stdlib_verifier_accepts_real_signatures_and_rejects_altered_ones(alg: str) -> None:
    pair = key_pair(alg)
    good = pair.assertion("c", "https://x/oauth/token")
    other = pair.assertion("c", "https://x/oauth/token", jti="another")
    spliced = good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]

    assert verify(parse_compact(good), check_public_jwk(pair.public_jwk))
    assert not verify(parse_compact(spliced), pair.public_jwk)
    assert not verify(parse_compact(good), key_pair(alg, fresh=True).public_jwk)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alg": "HS256"}, "alg"),
        ({"use": "enc"}, "use"),
        ({"kid": ""}, "kid"),
        ({"crv": "P-256"}, "P-384"),
        ({"d": "AAAA"}, "private"),
    ],
)
def test_public_keys_outside_qliks_rules_are_refused(change: dict[str, str], message: str) -> None:
    jwk = {**key_pair("ES384").public_jwk, **change}

    with pytest.raises(JoseError, match=message):
        check_public_jwk(jwk)


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    weak = key_pair("RS256", bits=1024, fresh=True)

    with pytest.raises(JoseError, match="1024 bits"):
        check_public_jwk(weak.public_jwk)


def test_an_ec_point_off_the_curve_is_refused() -> None:
    jwk = dict(key_pair("ES384").public_jwk)
    y = base64.urlsafe_b64decode(jwk["y"] + "==")
    jwk["y"] = base64.urlsafe_b64encode(bytes([y[0] ^ 1]) + y[1:]).decode().rstrip("=")

    with pytest.raises(JoseError, match="not on P-384"):
        check_public_jwk(jwk)


# -- the token endpoint --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_signed_assertion_mints_a_token_for_its_client(tenant: Tenant, alg: str) -> None:
    pair = _registered(tenant, alg)

    response = tenant.post_token(json=token_form(pair.assertion(tenant.sandbox.client_id,
                                                                _audience(tenant))))  # fmt: skip

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = tenant.get("/api/v1/users/me", token, allow_redirects=False)
    assert me.status_code == 301


def test_an_assertion_works_in_a_form_body_and_with_client_id(tenant: Tenant) -> None:
    pair = _registered(tenant, "ES384")
    assertion = pair.assertion(tenant.sandbox.client_id, _audience(tenant))

    response = tenant.post_token(data=token_form(assertion, client_id=tenant.sandbox.client_id))

    assert response.status_code == 200, response.text


def _refused_with(tenant: Tenant, body: dict[str, Any]) -> tuple[int, str, str]:
    response = tenant.post_token(json=body)
    assert response.status_code >= 400, response.text
    return _refusal(response)


def test_each_bad_assertion_is_refused_with_its_own_code(tenant: Tenant) -> None:
    sandbox = tenant.sandbox
    cid, aud = sandbox.client_id, _audience(tenant)
    pair = _registered(tenant, "RS256")
    now = sandbox.state.now()
    good = pair.assertion(cid, aud)
    header, claims, signature = good.split(".")
    original = json.loads(base64.urlsafe_b64decode(claims + "=="))

    def forged(**change: Any) -> str:
        text = json.dumps({**original, **change}).encode()
        return f"{header}.{base64.urlsafe_b64encode(text).decode().rstrip('=')}.{signature}"

    cases = {
        "tampered exp": (forged(exp=original["exp"] + 3600), "OAUTH-23"),
        "tampered iss": (forged(iss="x"), "OAUTH-20"),  # iss != sub, before the signature
        "bad signature": (
            good[:-6] + ("A" * 6 if not good.endswith("A" * 6) else "B" * 6),
            "OAUTH-23",
        ),
        "unknown kid": (pair.assertion(cid, aud, kid="not-registered"), "OAUTH-21"),
        "alg of another key": (pair.assertion(cid, aud, alg="RS512"), "OAUTH-22"),
        "wrong audience": (pair.assertion(cid, "https://elsewhere/oauth/token"), "OAUTH-25"),
        "trailing slash": (pair.assertion(cid, aud + "/"), "OAUTH-25"),
        "expired": (pair.assertion(cid, aud, now=now - 120 - CLOCK_LEEWAY), "OAUTH-24"),
        "from the future": (pair.assertion(cid, aud, now=now + 120), "OAUTH-24"),
        "too long-lived": (
            pair.assertion(cid, aud, lifetime=MAX_ASSERTION_LIFETIME + 60),
            "OAUTH-24",
        ),
        "not a jwt": ("not-a-jwt", "OAUTH-20"),
        "no jti": (pair.assertion(cid, aud, jti=""), "OAUTH-20"),
    }
    seen = {name: _refused_with(tenant, token_form(a))[:2] for name, (a, _) in cases.items()}

    assert seen == {name: (401, code) for name, (_, code) in cases.items()}
    assert sandbox.live_tokens() == 0


def test_a_replayed_assertion_is_refused(tenant: Tenant) -> None:
    pair = _registered(tenant, "ES384")
    assertion = pair.assertion(tenant.sandbox.client_id, _audience(tenant))
    assert tenant.post_token(json=token_form(assertion)).status_code == 200

    assert _refused_with(tenant, token_form(assertion))[:2] == (401, "OAUTH-26")


def test_within_the_leeway_a_skewed_clock_is_forgiven(tenant: Tenant) -> None:
    pair = _registered(tenant, "ES384")
    now = tenant.sandbox.state.now()
    assertion = pair.assertion(tenant.sandbox.client_id, _audience(tenant), now=now + 10)

    assert tenant.post_token(json=token_form(assertion)).status_code == 200


def test_requests_mixing_or_garbling_the_assertion_are_invalid(tenant: Tenant) -> None:
    pair = _registered(tenant, "ES384")
    assertion = pair.assertion(tenant.sandbox.client_id, _audience(tenant))

    both = token_form(assertion, client_secret=tenant.sandbox.client_secret)
    wrong_type = token_form(assertion, client_assertion_type="jwt")
    other_client = token_form(assertion, client_id="someone-else")

    assert _refused_with(tenant, both)[:2] == (400, "OAUTH-1")
    assert _refused_with(tenant, wrong_type)[:2] == (400, "OAUTH-1")
    assert _refused_with(tenant, other_client)[:2] == (401, "OAUTH-20")


def test_an_assertion_for_an_unknown_client_is_an_unknown_client(tenant: Tenant) -> None:
    pair = _registered(tenant, "ES384")

    refusal = _refused_with(tenant, token_form(pair.assertion("nobody", _audience(tenant))))

    assert refusal[:2] == (400, "OAUTH-14")


def test_a_key_registered_on_another_client_does_not_sign_for_this_one(
    make_sandbox: Any,
) -> None:
    other = ClientSpec(client_id="other-client", client_secret="other-secret-value")
    sandbox: Sandbox = make_sandbox(extra_clients=(other,))
    tenant = Tenant(sandbox)
    pair = key_pair("ES384", "shared-kid")
    sandbox.add_public_key(pair.public_jwk, client_id="other-client")

    mine = pair.assertion(sandbox.client_id, _audience(tenant))
    theirs = pair.assertion("other-client", _audience(tenant))

    assert _refused_with(tenant, token_form(mine))[:2] == (401, "OAUTH-21")
    assert tenant.post_token(json=token_form(theirs)).status_code == 200


# -- the OAuth clients API -------------------------------------------------------------------------


def _client_path(tenant: Tenant, tail: str = "") -> str:
    return f"/api/v1/oauth-clients/{tenant.sandbox.client_id}{tail}"


def test_keys_are_registered_listed_and_removed_through_the_api(tenant: Tenant) -> None:
    token = tenant.token()
    es, rs = key_pair("ES384", "k-es"), key_pair("RS512", "k-rs")
    patch = tenant.session.patch

    added = patch(f"{tenant.url}{_client_path(tenant)}", timeout=10,
                  headers={"Authorization": f"Bearer {token}"},
                  json=[{"op": "add", "path": "/publicKeys", "value": [es.public_jwk]},
                        {"op": "add", "path": "/publicKeys", "value": rs.public_jwk}])  # fmt: skip
    client = tenant.get(_client_path(tenant), token).json()
    removed = patch(f"{tenant.url}{_client_path(tenant)}", timeout=10,
                    headers={"Authorization": f"Bearer {token}"},
                    json=[{"op": "remove", "path": "/publicKeys", "value": "k-es"}])  # fmt: skip

    assert added.status_code == 204, added.text
    assert [k["kid"] for k in client["publicKeys"]] == ["k-es", "k-rs"]
    assert "private_key_jwt" in client["allowedAuthMethods"]
    assert removed.status_code == 204
    assert [k["kid"] for k in tenant.get(_client_path(tenant), token).json()["publicKeys"]] == [
        "k-rs"
    ]


def test_a_patch_with_one_bad_key_changes_nothing(tenant: Tenant) -> None:
    token = tenant.token()
    good = key_pair("ES384", "good").public_jwk
    weak = key_pair("RS256", "weak", bits=1024, fresh=True).public_jwk

    response = tenant.session.patch(
        f"{tenant.url}{_client_path(tenant)}",
        headers={"Authorization": f"Bearer {token}"},
        json=[
            {"op": "add", "path": "/publicKeys", "value": [good]},
            {"op": "add", "path": "/publicKeys", "value": [weak]},
        ],
        timeout=10,
    )

    assert response.status_code == 400
    assert "2048" in response.json()["errors"][0]["detail"]
    assert tenant.get(_client_path(tenant), token).json()["publicKeys"] == []


def test_any_of_several_secrets_works_and_a_deleted_one_stops(tenant: Tenant) -> None:
    token = tenant.token()
    created = tenant.post(_client_path(tenant, "/client-secrets"), token)
    assert created.status_code == 201, created.text
    new = created.json()
    listed = tenant.get(_client_path(tenant), token).json()["clientSecrets"]
    old_hint = tenant.sandbox.client_secret[-4:]

    assert [s["hint"] for s in listed] == [old_hint, new["hint"]]
    assert new["clientSecret"].endswith(new["hint"])
    assert tenant.post_token(json=tenant.credentials(client_secret=new["clientSecret"])).ok
    assert tenant.post_token(json=tenant.credentials()).ok

    deleted = tenant.session.delete(
        f"{tenant.url}{_client_path(tenant, '/client-secrets/' + old_hint)}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert deleted.status_code == 204
    assert tenant.post_token(json=tenant.credentials()).status_code == 401
    assert tenant.post_token(json=tenant.credentials(client_secret=new["clientSecret"])).ok


def test_a_client_holds_at_most_five_secrets(tenant: Tenant) -> None:
    token = tenant.token()
    statuses = [
        tenant.post(_client_path(tenant, "/client-secrets"), token).status_code
        for _ in range(SECRET_LIMIT)
    ]

    assert statuses == [201] * (SECRET_LIMIT - 1) + [409]
    assert len(tenant.sandbox.client_secret_hints()) == SECRET_LIMIT


def test_a_client_without_the_admin_role_may_not_manage_clients(make_sandbox: Any) -> None:
    sandbox: Sandbox = make_sandbox(
        extra_clients=(
            ClientSpec(
                client_id="plain", client_secret="plain-secret-value", may_manage_clients=False
            ),
        )
    )
    tenant = Tenant(sandbox)
    token = tenant.token(client_id="plain", client_secret="plain-secret-value")

    read = tenant.get(f"/api/v1/oauth-clients/{sandbox.client_id}", token)
    create = tenant.post(f"/api/v1/oauth-clients/{sandbox.client_id}/client-secrets", token)

    assert (read.status_code, create.status_code) == (403, 403)
    assert len(sandbox.client_secret_hints()) == 1


def test_minted_tokens_are_listed_without_their_values_and_can_be_deleted(tenant: Tenant) -> None:
    first, second = tenant.token(), tenant.token()
    listed = tenant.get("/api/v1/oauth-tokens", first)

    assert listed.status_code == 200
    entries = listed.json()["data"]
    assert len(entries) == 2
    assert first not in listed.text
    assert second not in listed.text
    gone = tenant.session.delete(
        f"{tenant.url}/api/v1/oauth-tokens/{entries[0]['id']}",
        headers={"Authorization": f"Bearer {first}"},
        timeout=10,
    )
    assert gone.status_code == 204
    assert tenant.sandbox.live_tokens() == 1
