"""Private keys and the client assertions they sign (private-key JWT, RFC 7523).

The one home of PyJWT and cryptography. Both are imported inside the functions that need them:
a warm run with a cached token only needs ``material_fingerprint``, which is standard library.

Qlik's rules (qlik.dev "Private Key JWT reference"; oauth.json, POST /oauth/token; schema JWK in
oauth-clients.json): algorithms RS256 and RS512 (RSA, at least 2048 bits) and ES384 (P-384); the
header carries ``alg`` and ``kid``; the claims are ``iss`` = ``sub`` = the client id, ``aud`` = the
tenant's token endpoint URL without a trailing slash, a fresh UUID ``jti``, ``iat`` and ``exp`` at
most five minutes later.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from qlikm2m.errors import ConfigError
from qlikm2m.redaction import register_secret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    SupportedKey = RSAPrivateKey | EllipticCurvePrivateKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "RS512", "ES384")
DEFAULT_ALGORITHM = "ES384"
MIN_RSA_BITS = 2048
DEFAULT_RSA_BITS = 3072
# Short-lived on purpose: one assertion per token request, used within seconds. Qlik allows up to
# 300 s; 60 s still tolerates a client clock a minute slow.
ASSERTION_LIFETIME = 60
MAX_KEY_TEXT = 64 * 1024

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL | re.IGNORECASE
)
_KEY_HINT = (
    "Use an RSA key of at least 2048 bits (RS256/RS512) or an EC key on P-384 (ES384), in PEM "
    "(PKCS#8, PKCS#1 or SEC1); `qlikm2m oauth keys generate` makes one."
)


def material_fingerprint(pem: str) -> str:
    """SHA-256 (hex) of the key's PEM body with all white space removed: the same for the same
    key text whatever its line breaks, indentation or surrounding blanks (CI variables mangle them).

    Standard library only: it binds cached tokens to the key on the warm path without loading
    cryptography. Raises ConfigError when the text holds no PEM block.
    """
    found = _PEM_BLOCK.search(pem)
    if found is None:
        raise ConfigError(
            "The private key is not PEM text (-----BEGIN ... PRIVATE KEY-----).", hint=_KEY_HINT
        )
    body = re.sub(r"\s+", "", found.group(2))
    return hashlib.sha256(f"{found.group(1).upper()}:{body}".encode()).hexdigest()


def register_key_text(pem: str) -> None:
    """Register the key's text and each line of its body with the redaction list."""
    register_secret(pem)
    for line in pem.splitlines():
        if "-----" not in line and len(line.strip()) >= 16:
            register_secret(line.strip())


def is_encrypted_pem(pem: str) -> bool:
    """True when the PEM block is an encrypted private key (PKCS#8 or legacy Proc-Type)."""
    found = _PEM_BLOCK.search(pem)
    if found is None:
        return False
    return "ENCRYPTED" in found.group(1).upper() or "Proc-Type: 4,ENCRYPTED" in found.group(0)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): the default ``kid`` of a key."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    """A private key checked against Qlik's rules, with the ``alg`` and ``kid`` it signs under."""

    alg: str
    kid: str
    key: SupportedKey = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The public key as the JWK Qlik registers: kty, use "sig", alg, kid and n/e or crv/x/y."""
        return {**_public_members(self.key), "use": "sig", "alg": self.alg, "kid": self.kid}

    def sign_assertion(self, client_id: str, token_endpoint: str, *, now: float) -> str:
        """A fresh client assertion: ``iss`` = ``sub`` = client_id, ``aud`` = token_endpoint,
        a UUID ``jti``, ``iat`` = now and ``exp`` = now + ASSERTION_LIFETIME (epoch seconds).
        The result is registered with the redaction list: it is a credential while it lives."""
        import jwt

        issued = int(now)
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint.rstrip("/"),
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        assertion = jwt.encode(claims, self.key, algorithm=self.alg, headers={"kid": self.kid})
        register_secret(assertion)
        return assertion

    def private_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM (only for a 0600 file or a secret store)."""
        from cryptography.hazmat.primitives import serialization

        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        register_key_text(pem)
        return pem


def _public_members(key: SupportedKey) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "n": _b64url(_int_bytes(numbers.n)),
            "e": _b64url(_int_bytes(numbers.e)),
        }
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    point = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": _b64url(point.x.to_bytes(48, "big")),
        "y": _b64url(point.y.to_bytes(48, "big")),
    }


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _check_key(key: object, alg: str | None, source: str) -> str:
    """The algorithm ``key`` signs with (``alg`` or the key type's default), or ConfigError."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if alg is not None and alg not in ALGORITHMS:
        raise ConfigError(
            f"Key algorithm {alg!r} ({source}) is not one Qlik Cloud accepts.",
            hint=f"Use one of {', '.join(ALGORITHMS)}.",
        )
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"The RSA private key ({source}) has {key.key_size} bits; Qlik Cloud needs at "
                f"least {MIN_RSA_BITS}.",
                hint=_KEY_HINT,
            )
        if alg == "ES384":
            raise ConfigError(
                f"ES384 needs an EC P-384 key, but the key ({source}) is RSA.",
                hint="Use RS256 or RS512 with an RSA key.",
            )
        return alg or "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name != "secp384r1":
            raise ConfigError(
                f"The EC private key ({source}) is on {key.curve.name}; Qlik Cloud accepts EC "
                "keys on P-384 (ES384) only.",
                hint=_KEY_HINT,
            )
        if alg not in (None, "ES384"):
            raise ConfigError(
                f"{alg} needs an RSA key, but the key ({source}) is EC P-384.",
                hint="Use ES384 with an EC key.",
            )
        return "ES384"
    raise ConfigError(
        f"The private key ({source}) is a {type(key).__name__.lstrip('_')}, which Qlik Cloud "
        "does not accept.",
        hint=_KEY_HINT,
    )


def load_private_key(
    pem: str,
    *,
    source: str,
    kid: str | None = None,
    alg: str | None = None,
    passphrase: str | None = None,
) -> SigningKey:
    """Load a PEM private key (PKCS#8, PKCS#1 or SEC1; encrypted with ``passphrase``) for signing.

    ``source`` names where the key came from, for messages (never the key itself). ``alg``
    defaults to the key type's (RS256 for RSA, ES384 for P-384); ``kid`` to the RFC 7638
    thumbprint of the public key. Raises ConfigError for text that is not a private key, a
    public key or certificate, an encrypted key without (or with a wrong) passphrase, an RSA key
    under 2048 bits, an EC curve other than P-384, another key type, or an ``alg`` that does not
    fit the key.
    """
    from cryptography.hazmat.primitives import serialization

    register_key_text(pem)
    if len(pem) > MAX_KEY_TEXT:
        raise ConfigError(
            f"The private key ({source}) is larger than {MAX_KEY_TEXT} bytes.", hint=_KEY_HINT
        )
    found = _PEM_BLOCK.search(pem)
    if found is None:
        raise ConfigError(f"The private key ({source}) is not PEM text.", hint=_KEY_HINT)
    label = found.group(1).upper()
    if "PRIVATE KEY" not in label:
        raise ConfigError(
            f"The key ({source}) is a {label.lower()}, not a private key.",
            hint="Give the private key; the public one is what the tenant registers.",
        )
    encrypted = "ENCRYPTED" in label or "Proc-Type: 4,ENCRYPTED" in found.group(0)
    if encrypted and not passphrase:
        raise ConfigError(
            f"The private key ({source}) is encrypted and no passphrase was given.",
            hint="Set QLIK_PRIVATE_KEY_PASSPHRASE, or store the key unencrypted in a secret "
            "store (a CI secret, the OS keyring).",
        )
    try:
        key = serialization.load_pem_private_key(
            found.group(0).encode(),
            password=passphrase.encode() if passphrase and encrypted else None,
        )
    except (ValueError, TypeError) as error:
        # cryptography's message does not include key material.
        reason = "wrong passphrase or damaged key" if encrypted else str(error).split("\n")[0]
        raise ConfigError(
            f"The private key ({source}) could not be read: {reason.rstrip('.')}.",
            hint=_KEY_HINT,
        ) from None
    except Exception as error:  # cryptography raises UnsupportedAlgorithm for exotic keys
        raise ConfigError(
            f"The private key ({source}) could not be read: {type(error).__name__}.", hint=_KEY_HINT
        ) from None
    chosen = _check_key(key, alg, source)
    supported = cast("SupportedKey", key)  # _check_key refused every other type
    unnamed = SigningKey(alg=chosen, kid="", key=supported)
    return SigningKey(alg=chosen, kid=kid or thumbprint(unnamed.public_jwk()), key=supported)


def generate_key(
    alg: str = DEFAULT_ALGORITHM, *, bits: int = DEFAULT_RSA_BITS, kid: str | None = None
) -> SigningKey:
    """A new key pair for ``alg``: P-384 for ES384, RSA of ``bits`` (>= 2048) for RS256/RS512.

    ``kid`` defaults to the public key's RFC 7638 thumbprint. Raises ConfigError for another alg
    or too few bits.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if alg not in ALGORITHMS:
        raise ConfigError(
            f"Key algorithm {alg!r} is not one Qlik Cloud accepts.",
            hint=f"Use one of {', '.join(ALGORITHMS)}.",
        )
    key: Any
    if alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        if bits < MIN_RSA_BITS:
            raise ConfigError(f"RSA keys need at least {MIN_RSA_BITS} bits, not {bits}.")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    unnamed = SigningKey(alg=alg, kid="", key=key)
    return SigningKey(alg=alg, kid=kid or thumbprint(unnamed.public_jwk()), key=key)
