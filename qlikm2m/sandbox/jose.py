"""Just enough JOSE for the sandbox to verify client assertions: compact JWS, RS256/RS512/ES384.

The sandbox is standard-library only (it must run where nothing else is installed), so the two
verifications are written out here: RSASSA-PKCS1-v1_5 (RFC 8017 8.2.2) is one modular power and a
byte comparison; ECDSA on P-384 (FIPS 186-5 6.4.2) is affine point arithmetic on Python integers.
Only verification: the sandbox never holds a private key. Not constant-time; it checks public
data, in tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

# The algorithms Qlik Cloud accepts for private-key JWT (qlik.dev "Private Key JWT reference";
# oauth-clients.json, schema JWK.alg).
ALGORITHMS = ("RS256", "RS512", "ES384")
MIN_RSA_BITS = 2048

# DER of DigestInfo's AlgorithmIdentifier + OCTET STRING header (RFC 8017 9.2, note 1).
_DIGEST_INFO = {
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}

# NIST P-384 (FIPS 186-5 / SEC 2 secp384r1).
_P = 2**384 - 2**128 - 2**96 + 2**32 - 1
_A = _P - 3
_B = int(
    "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    16,
)
_N = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    16,
)
_G = (
    int(
        "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        16,
    ),
    int(
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
        16,
    ),
)

Point = tuple[int, int] | None  # None is the point at infinity


class JoseError(ValueError):
    """A token or key this module cannot read; the message says what is wrong (one sentence)."""


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c in text for c in "+/= \n"):
        raise JoseError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise JoseError("not base64url") from error


def b64url_int(text: object) -> int:
    if not isinstance(text, str) or not text:
        raise JoseError("a key parameter is missing")
    return int.from_bytes(b64url_decode(text), "big")


@dataclass(frozen=True)
class CompactJws:
    """A parsed compact JWS: header and claims as dicts, the signed bytes and the signature."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_compact(token: str) -> CompactJws:
    """Split and decode ``header.payload.signature``; JoseError when it is not a signed JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("the assertion is not a compact JWS (three dot-separated parts)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as error:
        raise JoseError("the assertion's header or claims are not base64url JSON") from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseError("the assertion's header and claims must be JSON objects")
    signature = b64url_decode(parts[2])
    return CompactJws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def check_public_jwk(jwk: object) -> dict[str, Any]:
    """Validate a public JWK as Qlik's schema and key rules want it; returns it or JoseError.

    Rules (oauth-clients.json schema JWK; qlik.dev Private Key JWT reference): kty RSA or EC,
    use "sig", a kid, alg RS256/RS512 (RSA of at least 2048 bits) or ES384 (EC on P-384, the
    point on the curve), and no private members.
    """
    if not isinstance(jwk, dict):
        raise JoseError("a public key must be a JWK object")
    for name in ("kty", "use", "alg", "kid"):
        if not isinstance(jwk.get(name), str) or not jwk[name]:
            raise JoseError(f"the JWK has no {name}")
    if jwk["use"] != "sig":
        raise JoseError('the JWK\'s use must be "sig"')
    if jwk["alg"] not in ALGORITHMS:
        raise JoseError(f"alg {jwk['alg']!r} is not one of {', '.join(ALGORITHMS)}")
    if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi")):
        raise JoseError("the JWK holds private key members: register the public key only")
    if jwk["alg"].startswith("RS"):
        if jwk["kty"] != "RSA":
            raise JoseError(f"alg {jwk['alg']} needs kty RSA")
        bits = b64url_int(jwk.get("n")).bit_length()
        if bits < MIN_RSA_BITS:
            raise JoseError(f"the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")
        b64url_int(jwk.get("e"))
    else:
        if jwk["kty"] != "EC" or jwk.get("crv") != "P-384":
            raise JoseError("alg ES384 needs kty EC on crv P-384")
        if not _on_curve((b64url_int(jwk.get("x")), b64url_int(jwk.get("y")))):
            raise JoseError("the EC point is not on P-384")
    return jwk


def verify(jws: CompactJws, jwk: dict[str, Any]) -> bool:
    """True when ``jws`` is signed by the (already checked) public ``jwk`` with the JWK's alg."""
    alg = jwk["alg"]
    if alg in _DIGEST_INFO:
        return _verify_rsa(jws, jwk, alg)
    if alg == "ES384":
        return _verify_es384(jws, jwk)
    return False


def _verify_rsa(jws: CompactJws, jwk: dict[str, Any], alg: str) -> bool:
    n, e = b64url_int(jwk["n"]), b64url_int(jwk["e"])
    size = (n.bit_length() + 7) // 8
    if len(jws.signature) != size:
        return False
    s = int.from_bytes(jws.signature, "big")
    if s >= n:
        return False
    encoded = pow(s, e, n).to_bytes(size, "big")
    hash_function, prefix = _DIGEST_INFO[alg]
    digest_info = prefix + hash_function(jws.signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)


def _verify_es384(jws: CompactJws, jwk: dict[str, Any]) -> bool:
    # JWS carries r || s, 48 bytes each (RFC 7518 3.4), not DER.
    if len(jws.signature) != 96:
        return False
    r = int.from_bytes(jws.signature[:48], "big")
    s = int.from_bytes(jws.signature[48:], "big")
    if not (0 < r < _N and 0 < s < _N):
        return False
    q: Point = (b64url_int(jwk["x"]), b64url_int(jwk["y"]))
    if not _on_curve(q):
        return False
    e = int.from_bytes(hashlib.sha384(jws.signing_input).digest(), "big")
    w = pow(s, -1, _N)
    point = _add(_multiply(_G, e * w % _N), _multiply(q, r * w % _N))
    return point is not None and point[0] % _N == r


def _on_curve(point: Point) -> bool:
    if point is None:
        return False
    x, y = point
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        slope = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _multiply(point: Point, k: int) -> Point:
    result: Point = None
    addend = point
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result
