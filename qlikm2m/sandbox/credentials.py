"""How the sandbox's OAuth clients prove who they are: several client secrets, public keys, and
the verification of private-key JWT client assertions (RFC 7523) at the token endpoint.

Qlik's rules (qlik.dev "Private Key JWT reference"; oauth-clients.json, createOAuthClientSecret):
a client holds at most five secrets and any of them authenticates it; an assertion is signed with
RS256, RS512 or ES384 by a key registered on the client under the header's ``kid``; ``iss`` and
``sub`` are the client id, ``aud`` the tenant's token endpoint URL, ``jti`` unique, and ``exp`` at
most five minutes after ``iat``.

Qlik does not publish the codes of its assertion refusals; the sandbox's own, documented in
docs/sandbox.md, are OAUTH-20..26 (``ASSERTION_CODES``), each in Qlik's error shape.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qlikm2m.sandbox.config import ClientSpec
from qlikm2m.sandbox.jose import ALGORITHMS, JoseError, check_public_jwk, parse_compact, verify
from qlikm2m.sandbox.wire import Response, error_response

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SECRET_LIMIT = 5  # createOAuthClientSecret: "a maximum of 5 client secrets at one time"
MAX_ASSERTION_LIFETIME = 300  # seconds from iat to exp (qlik.dev: "max 5 minutes after iat")
CLOCK_LEEWAY = 30  # seconds of clock difference forgiven on exp, iat and nbf
HINT_LENGTH = 4  # the schema allows up to 5 characters

# code -> title of each refusal of an assertion (status 401: RFC 6749 invalid_client).
ASSERTION_CODES = {
    "OAUTH-20": "Invalid client assertion",  # malformed, a claim missing, iss != sub
    "OAUTH-21": "Unknown key",  # no key with the header's kid on the client
    "OAUTH-22": "Unsupported algorithm",  # alg not allowed or not the registered key's
    "OAUTH-23": "Invalid signature",
    "OAUTH-24": "Assertion expired or not yet valid",  # exp, iat, nbf, lifetime: clock skew
    "OAUTH-25": "Invalid audience",
    "OAUTH-26": "Assertion replayed",  # a jti already used
}


class Refusal(Exception):
    """A request the sandbox refuses: status, Qlik-style code, title and a one-sentence detail."""

    def __init__(self, status: int, code: str, detail: str, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title or ASSERTION_CODES.get(code, "Bad Request")
        self.detail = detail


@dataclass
class ClientSecret:
    hint: str
    value: str = field(repr=False)
    created_at: float
    created_by: str | None = None

    def view(self, iso: Callable[[float], str]) -> dict[str, Any]:
        """One entry of OAuthClientBase.clientSecrets (oauth-clients.json)."""
        entry: dict[str, Any] = {"hint": self.hint, "createdAt": iso(self.created_at)}
        if self.created_by:
            entry["createdBy"] = self.created_by
        return entry


@dataclass
class ClientCredentials:
    secrets: list[ClientSecret] = field(default_factory=list)
    public_keys: list[dict[str, Any]] = field(default_factory=list)
    seen_jtis: dict[str, float] = field(default_factory=dict)  # jti -> when it may be forgotten


def _hint(value: str) -> str:
    return value[-HINT_LENGTH:]


class CredentialRegistry:
    """The secrets and public keys of every client, behind one lock; thread-safe."""

    def __init__(
        self, clients: Iterable[ClientSpec], now: Callable[[], float], created_at: float
    ) -> None:
        self.now = now
        self.lock = threading.RLock()
        self.clients: dict[str, ClientCredentials] = {
            c.client_id: ClientCredentials(secrets=[ClientSecret(_hint(c.client_secret),
                                                                 c.client_secret, created_at)])
            for c in clients
        }  # fmt: skip

    def _of(self, client_id: str) -> ClientCredentials:
        found = self.clients.get(client_id)
        if found is None:
            raise Refusal(404, "HTTP-404", "OAuth client not found.", "Not Found")
        return found

    # -- secrets ------------------------------------------------------------------------------
    def check_secret(self, client_id: str, secret: str) -> bool:
        """True when ``secret`` is any of the client's current secrets."""
        with self.lock:
            found = self.clients.get(client_id)
            candidates = [s.value for s in found.secrets] if found else []
        # Compare against every one, so timing does not tell which secret nearly matched.
        matched = False
        for value in candidates:
            matched |= hmac.compare_digest(secret.encode(), value.encode())
        return matched

    def secrets_of(self, client_id: str) -> list[ClientSecret]:
        with self.lock:
            return list(self._of(client_id).secrets)

    def create_secret(self, client_id: str, created_by: str | None) -> ClientSecret:
        """A new secret with a hint unique on the client; Refusal 409 past SECRET_LIMIT."""
        with self.lock:
            credentials = self._of(client_id)
            if len(credentials.secrets) >= SECRET_LIMIT:
                raise Refusal(
                    409,
                    "OAUTH-CLIENTS-409",
                    f"The OAuth client already has {SECRET_LIMIT} client secrets, the maximum; "
                    "delete one first.",
                    "Conflict",
                )
            taken = {s.hint for s in credentials.secrets}
            value = secrets.token_hex(32)  # 64 characters: the schema's maxLength
            while _hint(value) in taken:
                value = secrets.token_hex(32)
            secret = ClientSecret(_hint(value), value, self.now(), created_by)
            credentials.secrets.append(secret)
            return secret

    def delete_secret(self, client_id: str, hint: str) -> None:
        with self.lock:
            credentials = self._of(client_id)
            kept = [s for s in credentials.secrets if s.hint != hint]
            if len(kept) == len(credentials.secrets):
                raise Refusal(404, "HTTP-404", f"No client secret with hint {hint!r}.", "Not Found")
            credentials.secrets = kept

    # -- public keys ---------------------------------------------------------------------------
    def public_keys(self, client_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(k) for k in self._of(client_id).public_keys]

    def patch_public_keys(self, client_id: str, op: str, value: object) -> None:
        """Apply one JSON Patch operation on /publicKeys (patchOAuthClient).

        add: a JWK or a list of JWKs, appended; replace: the whole list; remove: a kid, a list
        of kids, or no value for all. Refusal 400 for an invalid key or a duplicate kid.
        """
        with self.lock:
            credentials = self._of(client_id)
            if op == "remove":
                kids = [value] if isinstance(value, str) else value
                if kids is None:
                    credentials.public_keys = []
                    return
                if not isinstance(kids, list) or not all(isinstance(k, str) for k in kids):
                    raise Refusal(400, "HTTP-400", "remove takes a kid or a list of kids.")
                known = {k["kid"] for k in credentials.public_keys}
                missing = [k for k in kids if k not in known]
                if missing:
                    raise Refusal(400, "HTTP-400", f"No public key with kid {missing[0]!r}.")
                credentials.public_keys = [
                    k for k in credentials.public_keys if k["kid"] not in kids
                ]
                return
            given = [value] if isinstance(value, dict) else value
            if not isinstance(given, list):
                raise Refusal(400, "HTTP-400", f"{op} /publicKeys takes a JWK or a list of JWKs.")
            try:
                keys = [dict(check_public_jwk(k)) for k in given]
            except JoseError as error:
                raise Refusal(400, "HTTP-400", f"Invalid public key: {error}.") from None
            result = keys if op == "replace" else [*credentials.public_keys, *keys]
            kids = [k["kid"] for k in result]
            if len(set(kids)) != len(kids):
                raise Refusal(400, "HTTP-400", "Each public key of a client needs its own kid.")
            credentials.public_keys = result

    # -- assertions ------------------------------------------------------------------------------
    def verify_assertion(self, assertion: str, audience: str, client_id: str | None) -> str:
        """The id of the client that signed ``assertion`` for ``audience``, or a Refusal.

        Checked in this order, signature before any claim: form, alg allow-list, iss = sub
        (= ``client_id`` when the body names one), the client, the key by kid and its alg, the
        signature, aud, exp/iat/nbf with CLOCK_LEEWAY and the lifetime, then the jti.
        """
        try:
            jws = parse_compact(assertion)
        except JoseError as error:
            raise Refusal(401, "OAUTH-20", f"The client assertion is malformed: {error}.") from None
        header, claims = jws.header, jws.claims
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Refusal(
                401, "OAUTH-22", f"alg {alg!r} is not allowed; use {', '.join(ALGORITHMS)}."
            )
        issuer, subject = claims.get("iss"), claims.get("sub")
        if not isinstance(issuer, str) or not issuer or issuer != subject:
            raise Refusal(401, "OAUTH-20", "iss and sub must both be the client id.")
        if client_id and client_id != issuer:
            raise Refusal(401, "OAUTH-20", "client_id is not the assertion's iss.")
        with self.lock:
            credentials = self.clients.get(issuer)
            keys = list(credentials.public_keys) if credentials else []
        if credentials is None:
            raise Refusal(400, "OAUTH-14", "OAuth client is not authorized", "Invalid client_id")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refusal(401, "OAUTH-20", "The assertion's header has no kid.")
        key = next((k for k in keys if k["kid"] == kid), None)
        if key is None:
            raise Refusal(401, "OAUTH-21", f"No public key with kid {kid!r} is registered.")
        if key["alg"] != alg:
            raise Refusal(
                401, "OAUTH-22", f"The key {kid!r} is registered for {key['alg']}, not {alg}."
            )
        if not verify(jws, key):
            raise Refusal(401, "OAUTH-23", "The assertion's signature does not verify.")
        self._check_claims(claims, audience)
        return issuer

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise Refusal(401, "OAUTH-25", f"aud must be the token endpoint, {audience}.")
        times = {name: claims.get(name) for name in ("exp", "iat")}
        for name, value in times.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise Refusal(401, "OAUTH-20", f"The assertion has no numeric {name}.")
        exp, iat = float(claims["exp"]), float(claims["iat"])
        now = self.now()
        if exp <= now - CLOCK_LEEWAY:
            raise Refusal(401, "OAUTH-24", "The assertion has expired (exp is in the past).")
        if iat > now + CLOCK_LEEWAY:
            raise Refusal(401, "OAUTH-24", "The assertion was issued in the future (iat).")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + CLOCK_LEEWAY:
            raise Refusal(401, "OAUTH-24", "The assertion is not valid yet (nbf).")
        if exp - iat > MAX_ASSERTION_LIFETIME:
            raise Refusal(
                401, "OAUTH-24", f"exp is more than {MAX_ASSERTION_LIFETIME} seconds after iat."
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise Refusal(401, "OAUTH-20", "The assertion has no jti.")
        issuer = str(claims["iss"])
        with self.lock:
            seen = self.clients[issuer].seen_jtis
            for old in [j for j, until in seen.items() if until < now]:
                del seen[old]
            if jti in seen:
                raise Refusal(401, "OAUTH-26", "This assertion's jti was already used.")
            seen[jti] = exp + CLOCK_LEEWAY


def authenticate_client(
    registry: CredentialRegistry,
    clients: Mapping[str, ClientSpec],
    client_id: str,
    secret: str,
    body: Mapping[str, Any],
    audience: str,
) -> ClientSpec | Response:
    """The client a token request authenticates as, or the refusal to send (POST /oauth/token).

    A request carries either a client secret (body or Basic) or a private-key JWT assertion
    (``client_assertion`` + ``client_assertion_type``), never both; ``audience`` is this
    tenant's token endpoint URL as the client addressed it.
    """
    assertion = body.get("client_assertion")
    if assertion is not None or body.get("client_assertion_type") is not None:
        problem = None
        if secret:
            problem = "Send either client_secret or client_assertion, not both."
        elif body.get("client_assertion_type") != ASSERTION_TYPE:
            problem = f"client_assertion_type must be {ASSERTION_TYPE}."
        elif not isinstance(assertion, str) or not assertion:
            problem = "client_assertion is empty."
        if problem is not None:
            return error_response("oauth", 400, "OAUTH-1", "Invalid request", problem)
        assert isinstance(assertion, str)
        try:
            signer = registry.verify_assertion(assertion, audience, client_id or None)
        except Refusal as refusal:
            return error_response(
                "oauth", refusal.status, refusal.code, refusal.title, refusal.detail
            )
        return clients[signer]
    client = clients.get(client_id)
    if client is None:
        return error_response(
            "oauth", 400, "OAUTH-14", "Invalid client_id", "OAuth client is not authorized"
        )
    if not registry.check_secret(client.client_id, secret):
        return error_response("oauth", 401, "OAUTH-5", "Unauthorized", "Invalid client credentials")
    return client


def token_id(value: str) -> str:
    """The id under which /api/v1/oauth-tokens lists a token (never the token itself)."""
    return hashlib.sha256(f"qlikm2m-sandbox-token:{value}".encode()).hexdigest()[:24]
