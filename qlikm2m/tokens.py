"""The one token module: mint, cache on disk, reuse until near expiry, single-flight, invalidate.

A warm run reads one small JSON file and, when the secret is at hand (environment), compares a
salted fingerprint of it: no lock, no keyring, no network. A stored context's secret stays in its
store on the warm path: its tokens are keyed by the context's credential generation, which is
renewed whenever its secret is set, so a token is only used by the secret that minted it.
Minting happens under a per-key file lock, re-checking the cache once the lock is held, so N
processes started together mint once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from qlikm2m.errors import AuthError
from qlikm2m.paths import cache_dir
from qlikm2m.redaction import register_secret

if TYPE_CHECKING:
    from qlikm2m.http import Response, Transport
    from qlikm2m.settings import ResolvedSettings

# Refresh a token while 5 minutes of its life remain: a long command started just before expiry
# must not have its token die halfway.
REFRESH_MARGIN = 300.0
CACHE_VERSION = 1
MAX_CACHE_FILE = 64 * 1024
IMPERSONATION_GRANT = "urn:qlik:oauth:user-impersonation"
_TOKEN_DIR = "tokens"  # noqa: S105 - a folder name
_LAST_SHOWABLE_TIME = 253402300800.0  # 10000-01-01T00:00:00Z: datetime's limit

TokenOrigin = Literal["cache", "minted", "apikey", "env"]


# The records of this module are NamedTuples, not dataclasses: they are built on every warm
# command's path, and a frozen dataclass costs ~1 ms of code generation at import against ~0.2 ms
# (issue 14). Immutable, compared and hashed by value, as before.


class Token(NamedTuple):
    """An access token: ``value`` (never in a repr), where it came from, its expiry (epoch
    seconds; None when unknown: API key, given token) and its scope."""

    value: str
    origin: TokenOrigin
    expires_at: float | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        return (
            f"Token(value=<hidden>, origin={self.origin!r}, expires_at={self.expires_at!r}, "
            f"scope={self.scope!r})"
        )

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    def is_fresh(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at - now > REFRESH_MARGIN


class CacheKey(NamedTuple):
    """What a cached token belongs to: server, auth type, client id, scope, impersonated user and
    a stored context's credential generation."""

    server: str
    auth: str
    client_id: str
    scope: str
    impersonate: str
    # A stored context's credential generation; "" for credentials at hand (environment, stdin).
    generation: str = ""

    def as_dict(self) -> dict[str, str]:
        key = {
            "server": self.server,
            "auth": self.auth,
            "client_id": self.client_id,
            "scope": self.scope,
            "impersonate": self.impersonate,
        }
        # Only when set: cache files of environment credentials keep their name and stay valid.
        if self.generation:
            key["generation"] = self.generation
        return key

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def token_dir(env: Mapping[str, str]) -> Path:
    return cache_dir(env) / _TOKEN_DIR


def cache_problem_text(folder: Path, error: OSError) -> str:
    """Why ``folder`` cannot hold tokens, in a few words: "/x/tokens: read-only file system"."""
    reason = (error.strerror or str(error) or type(error).__name__).lower()
    where = error.filename if isinstance(error.filename, str) else str(folder)
    return f"{where}: {reason}"


def probe_token_cache(env: Mapping[str, str]) -> str | None:
    """Whether tokens can be cached: None, or why not (as ``cache_problem_text``).

    Creates the folder as the first mint would, then a file in it, removed at once.
    """
    import tempfile

    from qlikm2m.paths import ensure_private_dir

    folder = token_dir(env)
    try:
        ensure_private_dir(folder)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", suffix=".tmp"):
            pass
    except OSError as error:
        return cache_problem_text(folder, error)
    return None


def cache_key(settings: ResolvedSettings) -> CacheKey:
    return CacheKey(
        server=settings.server_url,
        auth=settings.kind,
        client_id=settings.client_id.value or "",
        scope=" ".join(sorted((settings.scope.value or "").split())),
        impersonate=settings.impersonate.value or "",
        generation=(settings.credential_generation or "") if settings.stored_context else "",
    )


def fingerprint(salt: bytes, client_id: str, secret: str) -> str:
    """A salted HMAC of the credential: proves which secret minted a token without storing it."""
    message = f"{client_id}\0{secret}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()


# --- the cache file -----------------------------------------------------------------------------


class _Entry(NamedTuple):
    key: dict[str, Any]
    token: Token
    salt: bytes
    digest: str


def _read_entry(path: Path) -> _Entry | None:
    """The cache entry at ``path``, or None for anything missing, foreign, unsafe or corrupt."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_mode & 0o077
            or (hasattr(os, "geteuid") and info.st_uid != os.geteuid())
            or info.st_size > MAX_CACHE_FILE
        ):
            return None
        raw = os.read(fd, MAX_CACHE_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return None
        key, value = data["key"], data["access_token"]
        expires_at, salt, digest = data["expires_at"], data["salt"], data["fingerprint"]
        scope = data.get("scope")
        if not (
            isinstance(key, dict)
            and isinstance(value, str)
            and value
            # hmac.compare_digest raises TypeError on non-ASCII text; tokens and digests are ASCII.
            and value.isascii()
            and isinstance(expires_at, int | float)
            # NaN or a date past year 9999 would break freshness checks and `auth status`.
            and 0 <= expires_at < _LAST_SHOWABLE_TIME
            and isinstance(salt, str)
            and isinstance(digest, str)
            and digest.isascii()
            and (scope is None or isinstance(scope, str))
        ):
            return None
        token = Token(value=value, origin="cache", expires_at=float(expires_at), scope=scope)
        return _Entry(key=key, token=token, salt=bytes.fromhex(salt), digest=digest)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _write_entry(path: Path, key: CacheKey, token: Token, salt: bytes, digest: str) -> None:
    from qlikm2m.fileio import atomic_write

    document = {
        "version": CACHE_VERSION,
        "key": key.as_dict(),
        "access_token": token.value,
        "token_type": "bearer",
        "scope": token.scope,
        "expires_at": token.expires_at,
        "salt": salt.hex(),
        "fingerprint": digest,
    }
    atomic_write(path, json.dumps(document, indent=1).encode(), mode=0o600)


def _cache_files(env: Mapping[str, str]) -> Iterator[Path]:
    folder = token_dir(env)
    try:
        yield from sorted(folder.glob("*.json"))
    except OSError:
        return


def drop_cached_tokens(
    env: Mapping[str, str],
    *,
    server: str,
    client_id: str | None,
    generation: str | None = None,
) -> int:
    """Delete cached tokens for that server+client (any scope/impersonation); how many.

    With ``generation``, only the tokens minted under that credential generation (one stored
    context's); without it, every token of the client, whoever minted it.
    """
    from qlikm2m.settings import normalize_server_url

    server = normalize_server_url(server)
    dropped = 0
    for path in _cache_files(env):
        entry = _read_entry(path)
        if entry is None:
            continue
        if generation is not None and entry.key.get("generation") != generation:
            continue
        if entry.key.get("server") == server and (entry.key.get("client_id") or None) == (
            client_id or None
        ):
            # A read-only cache keeps its files: the tokens in them are bound to credentials
            # that are gone (a renewed generation or fingerprint), so no run will use them.
            with contextlib.suppress(OSError):
                path.unlink()
                dropped += 1
    return dropped


def cached_tokens(env: Mapping[str, str], *, server: str, client_id: str | None) -> list[Token]:
    """Every cached token of that server+client, expired or not (for ``auth revoke``)."""
    tokens = []
    for path in _cache_files(env):
        entry = _read_entry(path)
        if (
            entry
            and entry.key.get("server") == server
            and ((entry.key.get("client_id") or None) == (client_id or None))
        ):
            register_secret(entry.token.value)
            tokens.append(entry.token)
    return tokens


# --- minting ------------------------------------------------------------------------------------


def _parse_expiry(body: Mapping[str, Any], sent_at: float) -> float | None:
    expires_in = body.get("expires_in")
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return sent_at + float(expires_in) if expires_in > 0 else None
    expires_at = body.get("expires_at")
    if isinstance(expires_at, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


_REFUSAL_HINT = (
    "Check the client id and secret, the scopes the OAuth client allows, and whether it "
    "reached its maximum number of tokens (tenant management console > OAuth)."
)


def _refusal_hint(code: str | None, settings: ResolvedSettings | None) -> str:
    """The fix for a refused mint, named when Qlik's error code says what was wrong: OAUTH-5 a
    bad secret, OAUTH-14 an unknown client id, OAUTH-10 no such user to impersonate."""
    if settings is None:
        return _REFUSAL_HINT
    if code == "OAUTH-10" and settings.impersonation is not None:
        field, value = settings.impersonation
        return (
            f"No user of the tenant has the {field} {value!r} given to --impersonate: check the "
            "user id (`qlikm2m api v1/users` lists ids and subjects)."
        )
    name = settings.context_name.value
    if code in ("OAUTH-5", "OAUTH-14") and name and settings.secret_source.startswith("context"):
        what = "secret" if code == "OAUTH-5" else "client id"
        fix = "--prompt-secret" if code == "OAUTH-5" else "--client-id ID --prompt-secret"
        return (
            f"The tenant refused the {what} stored in context {name!r}: if it was rotated or "
            f"mistyped, store the right one with `qlikm2m context update {name} {fix}`."
        )
    return _REFUSAL_HINT


# Why a tenant refuses a client assertion, by the sandbox's codes (docs/sandbox.md) and, for
# Qlik Cloud, whose codes are unpublished, by words of the error's detail: (cause, hint).
_ASSERTION_CAUSES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("OAUTH-21", ("kid",), "the key id is unknown to the tenant",
     "Register the public key on the OAuth client (`qlikm2m oauth keys generate "
     "--register`, or the management console), or set QLIK_KEY_ID to the kid it was registered "
     "under."),
    ("OAUTH-24", ("expired", "exp ", "iat", "nbf", "future", "clock"), "clock skew",
     "The assertion's exp/iat were refused: set this machine's clock right (NTP); assertions "
     "live 60 seconds."),
    ("OAUTH-25", ("aud", "audience"), "the assertion was refused for its audience",
     "The server URL must be the tenant's own (https://tenant.region.qlikcloud.com): the "
     "assertion is addressed to its /oauth/token."),
    ("OAUTH-22", ("alg",), "the key's algorithm is not the one registered",
     "Set QLIK_KEY_ALG to the alg the public key was registered with (RS256, RS512, ES384)."),
    ("OAUTH-23", ("signature",), "the signature does not match the registered key",
     "The private key is not the one whose public key is registered under this kid."),
    ("OAUTH-26", ("replay", "jti"), "the assertion was already used", "Run the command again."),
)  # fmt: skip


def _assertion_cause(code: str | None, text: str) -> tuple[str, str] | None:
    lowered = text.lower()
    for known, _words, cause, hint in _ASSERTION_CAUSES:
        if code == known:
            return cause, hint
    for _, words, cause, hint in _ASSERTION_CAUSES:
        if any(word in lowered for word in words):
            return cause, hint
    return None


def _token_endpoint_refusal(
    response: Response, action: str = "issue a token", settings: ResolvedSettings | None = None
) -> AuthError:
    from qlikm2m.http import parse_error_body

    info = parse_error_body(response.read_prefix(), response.content_type)
    said = info.text or f"HTTP {response.status} {response.reason}".strip()
    details: dict[str, Any] = {"status": response.status}
    if info.code:
        details["code"] = info.code
    if info.trace_id:
        details["traceId"] = info.trace_id
    private_key = settings is not None and settings.uses_private_key
    hint = _refusal_hint(info.code, settings)
    message = f"The tenant refused to {action} (HTTP {response.status}): {said.rstrip('.')}."
    cause = _assertion_cause(info.code, said) if private_key else None
    if cause is not None:
        message = f"The tenant refused the client assertion ({cause[0]}): {said.rstrip('.')}."
        hint = cause[1]
    elif private_key:
        hint = (
            "Check the client id, that the public key is registered on that OAuth client and "
            "that it allows private_key_jwt, and the scopes it allows."
        )
    return AuthError(message, hint=hint, details=details)


class TokenManager:
    """Hands out a bearer token for one set of settings; the client asks it again after a 401."""

    def __init__(
        self,
        settings: ResolvedSettings,
        env: Mapping[str, str],
        transport: Transport,
        *,
        use_cache: bool = True,
        clock: Callable[[], float] = time.time,
        lock_timeout: float | None = None,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.transport = transport
        # A stored context without a credential generation (unbound) cannot tell which secret
        # minted a cached token: it mints every time rather than trust one of unknown origin.
        unbound = settings.stored_context is not None and not settings.credential_generation
        self.use_cache = (
            use_cache and settings.use_token_cache and settings.kind == "oauth" and not unbound
        )
        self.clock = clock
        self.mint_count = 0
        self.last: Token | None = None
        # Why tokens are not being cached (an unwritable cache folder), once it is known.
        self.cache_problem: str | None = None
        self._warn = warn
        # Long enough for another process's mint, retries included.
        self.lock_timeout = lock_timeout or (
            settings.seconds("connect_timeout")
            + settings.seconds("read_timeout")
            + settings.seconds("max_retry_wait")
            + 5.0
        )
        self._key = cache_key(settings) if settings.kind == "oauth" else None

    @property
    def cache_path(self) -> Path | None:
        if self._key is None:
            return None
        return token_dir(self.env) / f"{self._key.digest}.json"

    def token(self) -> Token:
        """A usable token: the API key or given token, a fresh cached one, or a newly minted one."""
        kind = self.settings.kind
        if kind != "oauth":
            token = Token(
                value=self.settings.secret(), origin="apikey" if kind == "apikey" else "env"
            )
            return self._remember(token)
        if not self.use_cache:
            return self._remember(self._mint())
        held = self._held_fresh()
        if held is not None:
            return self._remember(held)
        cached = self._fresh_cached(avoid=None)
        if cached is not None:
            return self._remember(cached)
        return self._remember(self._mint_single_flight(avoid=None))

    def after_unauthorized(self, rejected: Token) -> Token | None:
        """The replacement for a token the API refused, or None when retrying cannot help.

        Only a token that came from the cache is replaced (it may have been revoked or the
        secret rotated); a token minted a moment ago, an API key or a given token is final.
        """
        if rejected.origin != "cache":
            return None
        path = self.cache_path
        assert path is not None
        entry = _read_entry(path)
        if entry is not None and hmac.compare_digest(entry.token.value, rejected.value):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                # A read-only cache keeps the refused token; `avoid` below stops us reusing it.
                self._uncached(path.parent, error)
        return self._remember(self._mint_single_flight(avoid=rejected.value))

    def cached(self) -> Token | None:
        """The cached token for these settings, fresh or not, without minting (for status)."""
        path = self.cache_path
        if path is None:
            return None
        entry = _read_entry(path)
        if entry is None or not self._entry_matches(entry):
            return None
        register_secret(entry.token.value)
        return entry.token

    def _remember(self, token: Token) -> Token:
        register_secret(token.value)
        self.last = token
        return token

    def _held_fresh(self) -> Token | None:
        """The token this manager last handed out, while fresh and cached (no file read).

        A listing asks for a token once a page: re-reading and re-checking the cache file each
        time cost more than the page's own work. A minted token comes back as ``cache``, as a
        re-read would have given it, so a later 401 still re-mints once.
        """
        held = self.last
        # Also without a usable cache (cache_problem): the token this run minted stays in use
        # rather than a mint per request. A rotation that drops the cache file mid-run likewise
        # keeps the run on the token it holds.
        if held is None or held.origin not in ("cache", "minted"):
            return None
        if held.expires_at is None:  # a minted token without a lifetime is never cached
            return None
        if not held.is_fresh(self.clock()):
            return None
        return held if held.origin == "cache" else held._replace(origin="cache")

    def _entry_matches(self, entry: _Entry) -> bool:
        assert self._key is not None
        if entry.key != self._key.as_dict():
            return False
        if self.settings.secret_at_hand:
            binding = self.settings.credential_binding()
            expected = fingerprint(entry.salt, self._key.client_id, binding)
            return hmac.compare_digest(expected, entry.digest)
        # A stored context's secret stays in its store on the warm path: the generation in the
        # key (renewed whenever the secret is set) binds the token to the secret that minted it.
        return bool(self._key.generation)

    def _fresh_cached(self, *, avoid: str | None) -> Token | None:
        path = self.cache_path
        assert path is not None
        entry = _read_entry(path)
        if entry is None or not self._entry_matches(entry):
            return None
        if avoid is not None and hmac.compare_digest(entry.token.value, avoid):
            return None
        if not entry.token.is_fresh(self.clock()):
            return None
        return entry.token

    def _mint_single_flight(self, *, avoid: str | None) -> Token:
        from qlikm2m.fileio import locked
        from qlikm2m.paths import ensure_private_dir

        path = self.cache_path
        assert path is not None
        assert self._key is not None
        held = contextlib.ExitStack()
        try:
            ensure_private_dir(path.parent)
            held.enter_context(locked(path.with_suffix(".lock"), timeout=self.lock_timeout))
        except OSError as error:
            # No writable cache (read-only folder, a HOME that does not exist): the command
            # still works, minting as --no-token-cache would.
            held.close()
            self._uncached(path.parent, error)
            return self._mint()
        try:
            # Another process may have minted while we waited for the lock.
            cached = self._fresh_cached(avoid=avoid)
            if cached is not None:
                return cached
            token = self._mint()
            if token.expires_at is not None and token.is_fresh(self.clock()):
                import secrets

                salt = secrets.token_bytes(16)
                digest = fingerprint(salt, self._key.client_id, self.settings.credential_binding())
                try:
                    _write_entry(path, self._key, token, salt, digest)
                except OSError as error:
                    self._uncached(path.parent, error)
            return token
        finally:
            held.close()

    def _uncached(self, folder: Path, error: OSError) -> None:
        """Note, once, that tokens are not cached, and say why on stderr (through ``warn``)."""
        if self.cache_problem is not None:
            return
        self.cache_problem = cache_problem_text(folder, error)
        if self._warn is not None:
            self._warn(
                f"the token cache is not usable ({self.cache_problem}); continuing without it, "
                "so every run mints a new token. Point QLIKM2M_CACHE_DIR at a writable folder."
            )

    def _mint(self) -> Token:
        from qlikm2m.http import raise_for_status

        settings = self.settings
        token_endpoint = f"{settings.server_url}/oauth/token"
        body: dict[str, Any] = {
            "client_id": settings.client_id.value,
            "grant_type": "client_credentials",
        }
        if settings.uses_private_key:
            from qlikm2m.assertion import ASSERTION_TYPE

            # A fresh assertion per request: Qlik refuses a jti it has seen.
            key = settings.signing_key()
            body["client_assertion_type"] = ASSERTION_TYPE
            body["client_assertion"] = key.sign_assertion(
                settings.client_id.value or "", token_endpoint, now=self.clock()
            )
        else:
            body["client_secret"] = settings.secret()
        if settings.scope.value:
            body["scope"] = settings.scope.value
        impersonation = settings.impersonation
        if impersonation is not None:
            body["grant_type"] = IMPERSONATION_GRANT
            body["user_lookup"] = {"field": impersonation[0], "value": impersonation[1]}
        sent_at = self.clock()
        # Minting twice only wastes a token, so a lost answer (502, reset) may be retried.
        response = self.transport.request("POST", token_endpoint, json_body=body, idempotent=True)
        self.mint_count += 1
        if response.status in (400, 401, 403):
            raise _token_endpoint_refusal(response, settings=settings)
        raise_for_status(response)
        document = response.json(limit=MAX_CACHE_FILE)
        value = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError(
                "The token endpoint answered without an access_token.",
                hint="Is the server URL a Qlik Cloud tenant? Run with -v to see the trace.",
            )
        register_secret(value)
        scope = document.get("scope")
        return Token(
            value=value,
            origin="minted",
            expires_at=_parse_expiry(document, sent_at),
            scope=scope if isinstance(scope, str) else None,
        )

    def revoke(self, token: Token) -> None:
        """Revoke ``token`` at the tenant (RFC 7009 style, Qlik's /oauth/revoke)."""
        from qlikm2m.http import raise_for_status

        response = self.transport.request(
            "POST",
            f"{self.settings.server_url}/oauth/revoke",
            json_body={"token": token.value, "token_type_hint": "access_token"},
            bearer=token.value,
            idempotent=True,
        )
        if response.status in (400, 401, 403):
            raise _token_endpoint_refusal(response, "revoke the token")
        raise_for_status(response)
        response.read_prefix()
