"""Key pairs and hand-made client assertions for tests, signed with PyJWT and cryptography
directly (not through qlikm2m.assertion), so the sandbox and the client are each checked against
an independent implementation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "RS512", "ES384")


@dataclass(frozen=True)
class KeyPair:
    alg: str
    kid: str
    private: Any  # a cryptography private key

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg == "ES384" else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def pem(self, fmt: str = "pkcs8", password: bytes | None = None) -> str:
        formats = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "traditional": serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 / SEC1
        }
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.private.private_bytes(
            serialization.Encoding.PEM, formats[fmt], encryption
        ).decode()

    def assertion(
        self,
        client_id: str,
        audience: str,
        *,
        now: float | None = None,
        lifetime: int = 60,
        kid: str | None = None,
        alg: str | None = None,
        **claims: Any,
    ) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "exp": issued + lifetime,
            **claims,
        }
        return jwt.encode(
            payload, self.private, algorithm=alg or self.alg, headers={"kid": kid or self.kid}
        )


_CACHE: dict[tuple[str, int], Any] = {}


def key_pair(alg: str, kid: str | None = None, *, bits: int = 2048, fresh: bool = False) -> KeyPair:
    """A key pair for ``alg``; RSA generation is slow, so pairs are shared unless ``fresh``."""
    slot = (alg, bits)
    private = None if fresh else _CACHE.get(slot)
    if private is None:
        private = (
            ec.generate_private_key(ec.SECP384R1())
            if alg == "ES384"
            else rsa.generate_private_key(public_exponent=65537, key_size=bits)
        )
        if not fresh:
            _CACHE[slot] = private
    return KeyPair(alg, kid or f"test-{alg.lower()}", private)


def token_form(assertion: str, **extra: Any) -> dict[str, Any]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
