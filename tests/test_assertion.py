"""qlikm2m.assertion: loading, checking and generating keys, and signing client assertions.

Assertions are verified here with PyJWT against the exported public JWK, the way a server would."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from keys_support import ALGORITHMS, key_pair

from qlikm2m.assertion import (
    ASSERTION_LIFETIME,
    generate_key,
    load_private_key,
    material_fingerprint,
    thumbprint,
)
from qlikm2m.errors import ConfigError
from qlikm2m.redaction import redact

ENDPOINT = "https://tenant.example.qlikcloud.com/oauth/token"


def _decode(assertion: str, jwk: dict[str, object]) -> dict[str, object]:
    key = jwt.PyJWK(jwk)
    return jwt.decode(assertion, key, algorithms=[str(jwk["alg"])], audience=ENDPOINT, leeway=5)  # type: ignore[no-any-return]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_generated_key_signs_assertions_its_public_jwk_verifies(alg: str) -> None:
    key = generate_key(alg, bits=2048)
    jwk = key.public_jwk()

    first = key.sign_assertion("client-1", ENDPOINT + "/", now=1_800_000_000)
    second = key.sign_assertion("client-1", ENDPOINT, now=1_800_000_000)
    header = json.loads(base64.urlsafe_b64decode(first.split(".")[0] + "=="))
    claims = jwt.decode(
        first,
        jwt.PyJWK(jwk),
        algorithms=[alg],
        audience=ENDPOINT,
        options={"verify_exp": False, "verify_iat": False},
    )

    assert (header["alg"], header["kid"]) == (alg, key.kid)
    assert jwk["kid"] == thumbprint(jwk) == key.kid
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["aud"] == ENDPOINT  # no trailing slash, whatever the caller passed
    assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


def test_es384_is_the_default_and_rsa_keys_default_to_3072_bits() -> None:
    assert generate_key().alg == "ES384"
    rsa_key = generate_key("RS256")
    assert rsa_key.key.key_size == 3072  # type: ignore[union-attr]


@pytest.mark.parametrize(("alg", "fmt"), [("RS256", "pkcs8"), ("RS256", "traditional"),
                                          ("ES384", "pkcs8"), ("ES384", "traditional")])  # fmt: skip
def test_pkcs8_pkcs1_and_sec1_keys_load_with_the_same_kid(alg: str, fmt: str) -> None:
    pair = key_pair(alg)

    loaded = load_private_key(pair.pem(fmt), source="test")

    assert loaded.alg == alg
    assert loaded.kid == thumbprint(pair.public_jwk)
    assert _decode(loaded.sign_assertion("c", ENDPOINT, now=__import__("time").time()),
                   loaded.public_jwk())["sub"] == "c"  # fmt: skip


def test_an_explicit_kid_and_rs512_are_kept() -> None:
    loaded = load_private_key(key_pair("RS256").pem(), source="test", kid="k-2026", alg="RS512")

    assert (loaded.kid, loaded.alg) == ("k-2026", "RS512")
    assert loaded.public_jwk()["kid"] == "k-2026"


def test_an_encrypted_key_needs_its_passphrase() -> None:
    pem = key_pair("ES384").pem(password=b"correct horse")

    with pytest.raises(ConfigError, match="encrypted and no passphrase") as missing:
        load_private_key(pem, source="env QLIK_PRIVATE_KEY")
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_private_key(pem, source="env QLIK_PRIVATE_KEY", passphrase="nope")
    loaded = load_private_key(pem, source="env QLIK_PRIVATE_KEY", passphrase="correct horse")

    assert "QLIK_PRIVATE_KEY_PASSPHRASE" in str(missing.value.hint)
    assert loaded.alg == "ES384"


def _pem(key: object) -> str:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: key_pair("RS256", bits=1024, fresh=True).pem(), "1024 bits"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1())), "P-384"),
        (lambda: _pem(ed25519.Ed25519PrivateKey.generate()), "does not accept"),
        (
            lambda: (
                key_pair("ES384")
                .private.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            ),
            "not a private key",
        ),
        (lambda: "just some text", "not PEM"),
        (
            lambda: (
                "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----"
            ),
            "could not be read",
        ),
    ],
    ids=["weak-rsa", "p256", "ed25519", "public-key", "not-pem", "damaged"],
)
def test_unsupported_weak_or_wrong_keys_are_config_errors(make: object, message: str) -> None:
    pem = make()  # type: ignore[operator]

    with pytest.raises(ConfigError, match=message) as caught:
        load_private_key(pem, source="file key.pem")

    assert "file key.pem" in caught.value.message
    for line in pem.splitlines():
        if "-----" not in line and len(line) > 16:
            assert line not in caught.value.message


@pytest.mark.parametrize(("alg", "key_alg"), [("ES384", "RS256"), ("RS256", "ES384")])
def test_an_algorithm_that_does_not_fit_the_key_is_refused(alg: str, key_alg: str) -> None:
    with pytest.raises(ConfigError, match=alg):
        load_private_key(key_pair(key_alg).pem(), source="test", alg=alg)


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError, match="HS256"):
        load_private_key(key_pair("ES384").pem(), source="test", alg="HS256")
    with pytest.raises(ConfigError, match="PS256"):
        generate_key("PS256")


def test_the_material_fingerprint_ignores_layout_but_not_the_key() -> None:
    pem = key_pair("ES384").pem()
    reflowed = "\n  " + pem.replace("\n", "\r\n") + "\n\n"

    assert material_fingerprint(pem) == material_fingerprint(reflowed)
    assert material_fingerprint(pem) != material_fingerprint(key_pair("RS256").pem())


def test_loading_a_key_registers_its_text_for_redaction() -> None:
    pem = key_pair("ES384", fresh=True).pem()
    body_line = pem.splitlines()[1]

    load_private_key(pem, source="test")

    assert body_line not in redact(f"oops: {body_line}")
