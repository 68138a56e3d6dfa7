"""Every setting of a command, resolved once in one written-down order, each with its source.

The order (flag > environment > selected context > default) lives in ``resolve_settings`` and
nowhere else; messages and ``auth status`` show where each value came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from qlikm2m.errors import ConfigError, QlikM2MError, UsageError
from qlikm2m.redaction import mask, register_secret

if TYPE_CHECKING:
    from qlikm2m.assertion import SigningKey
    from qlikm2m.contexts import Context
    from qlikm2m.runtime import Runtime

AuthType = Literal["oauth", "apikey", "token"]

ENV_SERVER = "QLIK_SERVER"
ENV_CLIENT_ID = "QLIK_CLIENT_ID"
ENV_CLIENT_SECRET = "QLIK_CLIENT_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_API_KEY = "QLIK_API_KEY"
ENV_ACCESS_TOKEN = "QLIK_ACCESS_TOKEN"  # noqa: S105
ENV_SCOPE = "QLIK_SCOPE"
ENV_CA_BUNDLE = "QLIK_CA_BUNDLE"
ENV_CONTEXT = "QLIK_CONTEXT"
ENV_NO_TOKEN_CACHE = "QLIKM2M_NO_TOKEN_CACHE"  # noqa: S105
ENV_CONNECT_TIMEOUT = "QLIKM2M_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "QLIKM2M_READ_TIMEOUT"
ENV_MAX_RETRY_WAIT = "QLIKM2M_MAX_RETRY_WAIT"
ENV_MAX_RETRIES = "QLIKM2M_MAX_RETRIES"
# Private-key JWT (docs/private-key-jwt.md): the key as PEM text or a file path (CI secret stores
# hand over either), its passphrase when encrypted, and the kid/alg it is registered under.
ENV_PRIVATE_KEY = "QLIK_PRIVATE_KEY"
ENV_PRIVATE_KEY_FILE = "QLIK_PRIVATE_KEY_FILE"
ENV_PRIVATE_KEY_PASSPHRASE = "QLIK_PRIVATE_KEY_PASSPHRASE"  # noqa: S105 - a variable name
ENV_KEY_ID = "QLIK_KEY_ID"
ENV_KEY_ALG = "QLIK_KEY_ALG"

CredentialType = Literal["client_secret", "private_key"]
MAX_KEY_FILE = 64 * 1024

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_RETRY_WAIT = 60.0
DEFAULT_MAX_RETRIES = 4

_URL_HINT = (
    "A tenant URL looks like https://tenant.eu.qlikcloud.com (a bare host name is fine too)."
)
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_FALSE_WORDS = ("", "0", "false", "no", "off")


# --- tenant URL ---------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for the hosts plain http is allowed to: localhost, 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_server_url(raw: str) -> str:
    """Return the canonical ``scheme://host[:port]`` of a tenant, or raise ConfigError (exit 3).

    Rules: surrounding blanks are ignored; a bare host gets ``https://``; a trailing slash or an
    ``/api...`` path is dropped (people paste API URLs); userinfo, a query, a fragment, any other
    path and any scheme but https are refused; plain ``http://`` is allowed only for a loopback host
    (127.0.0.0/8, ::1, localhost), which is where the sandbox runs. The host is lower-cased and a
    default port is dropped.
    """
    try:
        return _normalize_server_url(raw)
    except QlikM2MError:
        raise
    except (ValueError, TypeError, UnicodeError) as error:
        raise ConfigError(
            f"{_shown_url(raw)} is not a valid tenant URL.", hint=_URL_HINT
        ) from error


def _shown(raw: str) -> str:
    # Bounded and without control characters: the value is echoed into one error line.
    text = "".join(ch if ch.isprintable() else "?" for ch in str(raw).strip())
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _shown_url(raw: str) -> str:
    # Whatever ends in "@" may be user:password, even where urlsplit sees no userinfo
    # ("https:/user:pw@host"): it is masked before the value is echoed.
    return _shown(re.sub(r"[^/@?#]*@", "***@", str(raw)))


def _normalize_server_url(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise ConfigError("The tenant URL is empty.", hint=_URL_HINT)
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ConfigError(f"{_shown_url(raw)} is not a valid tenant URL.", hint=_URL_HINT)
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise ConfigError(
            # Not echoed: the part before @ may be a password.
            "The tenant URL holds a user name or password (user@host).",
            hint="Remove the user@ part: credentials come from the client id and secret.",
        )
    if parts.query or text.endswith("?"):
        raise ConfigError(f"The tenant URL {_shown_url(raw)} has a query string.", hint=_URL_HINT)
    if parts.fragment or "#" in text:
        raise ConfigError(f"The tenant URL {_shown_url(raw)} has a fragment.", hint=_URL_HINT)
    host = (parts.hostname or "").lower()
    if not host:
        raise ConfigError(f"The tenant URL {_shown_url(raw)} has no host name.", hint=_URL_HINT)
    port = parts.port  # ValueError for a non-numeric or out-of-range port
    if port == 0:
        raise ConfigError(f"The tenant URL {_shown_url(raw)} has port 0.", hint=_URL_HINT)
    _check_host(host, raw)
    if scheme not in ("https", "http"):
        raise ConfigError(
            f"The tenant URL {_shown_url(raw)} uses {scheme}://; qlikm2m speaks https only.",
            hint=_URL_HINT,
        )
    if scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"Refusing plain http:// for {host}: the client secret and tokens would cross the "
            "network unencrypted.",
            hint="Use https://; http is allowed only for loopback hosts such as the sandbox.",
        )
    path = parts.path.rstrip("/")
    if path and not re.match(r"^/api(/|$)", path, re.IGNORECASE):
        raise ConfigError(
            f"The tenant URL {_shown_url(raw)} has a path ({_shown_url(path)}).",
            hint=f"Use only the scheme and host, e.g. {scheme}://{_netloc(host, port, scheme)}",
        )
    return f"{scheme}://{_netloc(host, port, scheme)}"


def _check_host(host: str, raw: str) -> None:
    if ":" in host:  # an IPv6 literal (urlsplit already removed the brackets)
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ConfigError(
                f"{_shown_url(raw)} has an invalid IPv6 address.", hint=_URL_HINT
            ) from None
        return
    labels = host.rstrip(".").split(".")
    if not all(_HOST_LABEL.match(label) for label in labels) or len(host) > 253:
        raise ConfigError(f"{_shown_url(raw)} has an invalid host name.", hint=_URL_HINT)


def _netloc(host: str, port: int | None, scheme: str) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown_host if port in (None, default) else f"{shown_host}:{port}"


# --- resolved values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from."""

    value: str | None
    source: str


_UNSET = Setting(None, "unset")


class _LazySecret:
    """The credential's secret, loaded on first use: a context's comes from the keyring only when
    a token must actually be minted, so a warm run never touches the keyring."""

    def __init__(self, loader: Callable[[], str], *, at_hand: bool) -> None:
        self._loader = loader
        self._value: str | None = None
        self.at_hand = at_hand

    def get(self) -> str:
        if self._value is None:
            value = self._loader()
            register_secret(value)
            self._value = value
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


@dataclass(frozen=True)
class ResolvedSettings:
    """Everything a command needs to talk to a tenant. The secret is not a field: see ``secret``."""

    server: Setting
    auth_type: Setting
    client_id: Setting
    scope: Setting
    ca_bundle: Setting
    context_name: Setting
    impersonate: Setting
    token_cache: Setting
    connect_timeout: Setting
    read_timeout: Setting
    max_retry_wait: Setting
    max_retries: Setting
    secret_source: str
    _secret: _LazySecret | None = field(default=None, repr=False, compare=False)
    # The stored context whose secret these settings use (None: the environment, stdin or flags)
    # and its credential generation (None: unbound, a context from before schema 2).
    stored_context: str | None = None
    credential_generation: str | None = None
    # Private-key JWT: the secret is then a PEM private key (see signing_key).
    credential_type: CredentialType = "client_secret"
    key_id: Setting = _UNSET
    key_alg: Setting = _UNSET
    _passphrase: _LazySecret | None = field(default=None, repr=False, compare=False)
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def uses_private_key(self) -> bool:
        """True when tokens are requested with a signed client assertion instead of a secret."""
        return self.kind == "oauth" and self.credential_type == "private_key"

    def signing_key(self) -> SigningKey:
        """The private key, loaded and checked once (ConfigError for a bad or weak key)."""
        loaded = self._loaded.get("signing_key")
        if loaded is None:
            from qlikm2m.assertion import load_private_key

            loaded = load_private_key(
                self.secret(),
                source=self.secret_source,
                kid=self.key_id.value,
                alg=self.key_alg.value,
                passphrase=self._passphrase.get() if self._passphrase else None,
            )
            self._loaded["signing_key"] = loaded
        return loaded

    def credential_binding(self) -> str:
        """What cached tokens are bound to (salted, in tokens.fingerprint): the secret, or for a
        private key a digest of the key itself, never of the file it was read from."""
        if self.uses_private_key:
            from qlikm2m.assertion import material_fingerprint

            return f"private_key_jwt:{material_fingerprint(self.secret())}"
        return self.secret()

    @property
    def server_url(self) -> str:
        assert self.server.value is not None  # resolve_settings refuses a missing server
        return self.server.value

    @property
    def kind(self) -> AuthType:
        value = self.auth_type.value
        if value == "apikey":
            return "apikey"
        if value == "token":
            return "token"
        return "oauth"

    @property
    def secret_at_hand(self) -> bool:
        """True when reading the secret costs nothing (environment or stdin, not a keyring)."""
        return self._secret is not None and self._secret.at_hand

    def with_secret_read(self) -> ResolvedSettings:
        """These settings with the secret read now from its store and then held at hand.

        ``doctor`` uses it to judge a stored context's own credentials: the read fails
        (ConfigError, KeyringError) when the secret is gone from its store, and a cached token is
        then only accepted when its salted fingerprint proves this secret minted it.
        """
        if self._secret is None or self._secret.at_hand:
            return self
        value = self._secret.get()
        return replace(self, _secret=_LazySecret(lambda: value, at_hand=True))

    def secret(self) -> str:
        """The client secret (oauth), the API key (apikey) or the access token (token)."""
        if self._secret is None:
            raise ConfigError("No credentials are configured.", hint=_NO_CREDENTIALS_HINT)
        return self._secret.get()

    @property
    def use_token_cache(self) -> bool:
        return self.token_cache.value == "on"

    @property
    def impersonation(self) -> tuple[str, str] | None:
        """``("subject"|"userId", value)`` for the user-impersonation grant, else None."""
        if not self.impersonate.value:
            return None
        field_name, _, value = self.impersonate.value.partition(":")
        return field_name, value

    def seconds(self, name: Literal["connect_timeout", "read_timeout", "max_retry_wait"]) -> float:
        value = getattr(self, name).value
        return float(value)

    @property
    def retries(self) -> int:
        return int(self.max_retries.value or DEFAULT_MAX_RETRIES)

    def describe(self) -> list[dict[str, str]]:
        """name/value/source rows for ``auth status`` and ``context get``; the secret is masked."""
        rows: list[tuple[str, Setting]] = [
            ("context", self.context_name),
            ("server", self.server),
            ("auth_type", self.auth_type),
        ]
        if self.kind == "oauth":
            rows.append(("client_id", self.client_id))
        secret_label = {"oauth": "client_secret", "apikey": "api_key", "token": "access_token"}
        label = "private_key" if self.uses_private_key else secret_label[self.kind]
        rows.append((label, Setting(self._masked_secret(), self.secret_source)))
        if self.uses_private_key:
            rows += [("key_id", self.key_id), ("key_alg", self.key_alg)]
        if self.kind == "oauth":
            rows += [("scope", self.scope), ("impersonate", self.impersonate)]
            rows.append(("token_cache", self.token_cache))
        rows += [
            ("ca_bundle", self.ca_bundle),
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("max_retry_wait", self.max_retry_wait),
            ("max_retries", self.max_retries),
        ]
        return [
            {"name": name, "value": "" if s.value is None else s.value, "source": s.source}
            for name, s in rows
        ]

    def _masked_secret(self) -> str:
        if self._secret is None:
            return ""
        if self._secret.at_hand and self.uses_private_key:
            from qlikm2m.assertion import material_fingerprint

            # A digest of the key, so an operator can tell two keys apart without seeing either.
            return f"*** (sha256 {material_fingerprint(self._secret.get())[:16]})"
        if self._secret.at_hand:
            return mask(self._secret.get())
        return "***"  # stored: not read just to be masked


_NO_CREDENTIALS_HINT = (
    f"Set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (or {ENV_API_KEY}, or {ENV_ACCESS_TOKEN}), "
    "or create a context with `qlikm2m context init`."
)


def _no_credentials(env: Mapping[str, str]) -> ConfigError:
    """Nothing selected: name the stored contexts when there are some, since one is then
    the likely intent (and `context init` would be the wrong advice)."""
    from qlikm2m.contexts import load_contexts

    try:
        names = sorted(load_contexts(env).contexts)
    except QlikM2MError:
        names = []
    if not names:
        return ConfigError("No credentials are configured.", hint=_NO_CREDENTIALS_HINT)
    listed = ", ".join(repr(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
    example = names[0]
    return ConfigError(
        f"No context is current and no credentials are set in the environment; stored "
        f"contexts: {listed}.",
        hint=f"Make one current with `qlikm2m context use {example}`, or pick one for a "
        f"command with `-c {example}` (or $QLIK_CONTEXT).",
    )


# --- the one resolution function ----------------------------------------------------------------


def _env(env: Mapping[str, str], name: str) -> str | None:
    # CI systems set missing secrets to an empty string: empty means unset.
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _first(*candidates: tuple[str | None, str]) -> Setting:
    for value, source in candidates:
        if value is not None:
            return Setting(value, source)
    return _UNSET


@dataclass(frozen=True)
class _Credentials:
    auth_type: Setting
    client_id: Setting
    secret: _LazySecret | None
    secret_source: str
    from_context: bool
    generation: str | None = None
    credential_type: CredentialType = "client_secret"
    passphrase: _LazySecret | None = None
    # A stored context's own key id and algorithm (None: from the environment, or defaults).
    key_id: Setting | None = None
    key_alg: Setting | None = None


def resolve_settings(
    runtime: Runtime,
    *,
    server: str | None = None,
    client_id: str | None = None,
    client_secret_stdin: bool = False,
    scope: str | None = None,
    ca_bundle: str | None = None,
    impersonate: str | None = None,
    no_token_cache: bool = False,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> ResolvedSettings:
    """Resolve every setting of one command. Each value keeps its source.

    1. **Context selection**: ``--context`` > ``$QLIK_CONTEXT`` > the contexts file's current
       context. A context chosen only by being current is set aside when flags and the
       environment already name a server and a complete credential set: a CI job's environment is
       never mixed with a workstation's stored context.
    2. **Credentials, as one set**, from the first of:
       a. flags and the environment, in this order: ``--client-id``/``--client-secret-stdin``
          (completed by ``$QLIK_CLIENT_ID``/``$QLIK_CLIENT_SECRET``), else ``$QLIK_ACCESS_TOKEN``
          (a token minted elsewhere), else ``$QLIK_API_KEY``, else ``$QLIK_CLIENT_ID`` +
          ``$QLIK_CLIENT_SECRET``, or ``$QLIK_CLIENT_ID`` + a private key
          (``$QLIK_PRIVATE_KEY`` or ``$QLIK_PRIVATE_KEY_FILE``; ``$QLIK_KEY_ID``,
          ``$QLIK_KEY_ALG``, ``$QLIK_PRIVATE_KEY_PASSPHRASE``; never both a secret and a key). A partial set is a ConfigError naming what is missing: a
          client id from here is never paired with a stored context's secret;
       b. the selected context: its client id (or API key) and its secret, read lazily from the
          secret store only when a token must be minted;
       otherwise a ConfigError.
    3. **Server**: ``--server`` > ``$QLIK_SERVER`` > the context > ConfigError; normalised by
       ``normalize_server_url``. A context's credentials are only ever sent to its own server.
    4. **Scope, CA bundle**: flag > ``$QLIK_SCOPE``/``$QLIK_CA_BUNDLE`` > the context > none.
    5. **Impersonation**: ``--impersonate subject:<s>|userId:<id>`` only (oauth only).
    6. **Token cache**: ``--no-token-cache`` > ``$QLIKM2M_NO_TOKEN_CACHE`` > on.
    7. **Timeouts and retries**: ``--connect-timeout``/``--read-timeout`` >
       ``$QLIKM2M_CONNECT_TIMEOUT``/``$QLIKM2M_READ_TIMEOUT`` > 10 s / 60 s;
       ``$QLIKM2M_MAX_RETRY_WAIT`` > 60 s; ``$QLIKM2M_MAX_RETRIES`` > 4.

    A secret is never taken from a command-line value: only from the environment, a stored context
    or stdin (``--client-secret-stdin``).
    """
    env = runtime.env
    explicit_context = _first(
        (runtime.context, "flag --context"), (_env(env, ENV_CONTEXT), f"env {ENV_CONTEXT}")
    )
    server_explicit = _first(
        (server.strip() if server and server.strip() else None, "flag --server"),
        (_env(env, ENV_SERVER), f"env {ENV_SERVER}"),
    )
    stdin_secret = _read_stdin_secret(runtime) if client_secret_stdin else None
    explicit_creds = _explicit_credentials(env, client_id, stdin_secret)

    context: Context | None = None
    context_label = ""
    if explicit_context.value is not None:
        context = _load_context(env, explicit_context.value, explicit_context.source)
    elif not (explicit_creds is not None and server_explicit.value is not None):
        context = _current_context(env)
    context_setting = Setting(context.name, explicit_context.source) if context else _UNSET
    if context is not None:
        if explicit_context.value is None:
            context_setting = Setting(context.name, "current context")
        context_label = f"context {context.name!r}"

    creds = explicit_creds
    if creds is None and context is not None:
        creds = _context_credentials(context, runtime, context_label)
    if creds is None:
        raise _no_credentials(env)

    server_setting = _first(
        (server_explicit.value, server_explicit.source),
        (context.server if context else None, context_label),
    )
    if server_setting.value is None:
        raise ConfigError(
            "No tenant URL is configured.",
            hint=f"Set {ENV_SERVER} (e.g. https://tenant.eu.qlikcloud.com) or pass --server.",
        )
    server_setting = Setting(normalize_server_url(server_setting.value), server_setting.source)
    if (
        creds.from_context
        and context is not None
        and normalize_server_url(context.server) != server_setting.value
    ):
        raise ConfigError(
            f"The server {server_setting.value} ({server_setting.source}) is not the server "
            f"of {context_label}, whose stored credentials would be sent to it.",
            hint=f"Unset {ENV_SERVER}/--server, or give the credentials for that server in "
            f"{ENV_CLIENT_ID}/{ENV_CLIENT_SECRET}.",
        )

    scope_setting = _first(
        (scope.strip() if scope and scope.strip() else None, "flag --scope"),
        (_env(env, ENV_SCOPE), f"env {ENV_SCOPE}"),
        (context.scope if context else None, context_label),
    )
    ca_setting = _first(
        (ca_bundle.strip() if ca_bundle and ca_bundle.strip() else None, "flag --ca-bundle"),
        (_env(env, ENV_CA_BUNDLE), f"env {ENV_CA_BUNDLE}"),
        (context.ca_bundle if context else None, context_label),
    )
    if ca_setting.value is not None:
        ca_setting = Setting(_check_ca_bundle(ca_setting), ca_setting.source)

    impersonate_setting = _UNSET
    if impersonate:
        if creds.auth_type.value != "oauth":
            raise UsageError(
                "--impersonate needs OAuth client credentials, not an API key or token."
            )
        impersonate_setting = Setting(parse_impersonation(impersonate), "flag --impersonate")

    if no_token_cache:
        cache_setting = Setting("off", "flag --no-token-cache")
    elif _truthy_env(env, ENV_NO_TOKEN_CACHE):
        cache_setting = Setting("off", f"env {ENV_NO_TOKEN_CACHE}")
    else:
        cache_setting = Setting("on", "default")

    return ResolvedSettings(
        server=server_setting,
        auth_type=creds.auth_type,
        client_id=creds.client_id,
        scope=scope_setting,
        ca_bundle=ca_setting,
        context_name=context_setting,
        impersonate=impersonate_setting,
        token_cache=cache_setting,
        connect_timeout=_seconds(
            env, connect_timeout, "--connect-timeout", ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT
        ),
        read_timeout=_seconds(
            env, read_timeout, "--read-timeout", ENV_READ_TIMEOUT, DEFAULT_READ_TIMEOUT
        ),
        max_retry_wait=_seconds(
            env, None, "", ENV_MAX_RETRY_WAIT, DEFAULT_MAX_RETRY_WAIT, allow_zero=True
        ),
        max_retries=_count(env, ENV_MAX_RETRIES, DEFAULT_MAX_RETRIES),
        secret_source=creds.secret_source,
        _secret=creds.secret,
        stored_context=context.name if creds.from_context and context is not None else None,
        credential_generation=creds.generation,
        credential_type=creds.credential_type,
        key_id=_key_setting(env, ENV_KEY_ID, creds, "the key's RFC 7638 thumbprint"),
        key_alg=_key_setting(env, ENV_KEY_ALG, creds, "from the key type"),
        _passphrase=creds.passphrase,
    )


def _key_setting(env: Mapping[str, str], name: str, creds: _Credentials, default: str) -> Setting:
    if creds.credential_type != "private_key":
        return _UNSET
    if creds.from_context:
        # A stored key goes with the kid and alg it was stored with, as a stored secret goes with
        # its client id: the environment's QLIK_KEY_* describe a key in the environment.
        stored = creds.key_id if name == ENV_KEY_ID else creds.key_alg
        return (
            stored if stored is not None and stored.value else Setting(None, f"default: {default}")
        )
    value = _env(env, name)
    return (
        Setting(value, f"env {name}") if value is not None else Setting(None, f"default: {default}")
    )


def _read_stdin_secret(runtime: Runtime) -> str:
    return read_stdin_secret(
        runtime,
        "--client-secret-stdin",
        hint='e.g. `printf %s "$SECRET" | qlikm2m ... --client-secret-stdin`',
    )


def read_stdin_secret(runtime: Runtime, flag: str, *, hint: str) -> str:
    """The first line of stdin as a secret, for ``flag`` (e.g. ``--client-secret-stdin``).

    Surrounding whitespace and a UTF-8 byte-order mark (Windows tools write one) are stripped:
    neither can be part of a Qlik client secret or API key. Raises UsageError (exit 2) when stdin
    is a terminal, closed (``0<&-``) or empty.
    """
    if runtime.stdin_is_tty:
        raise UsageError(
            f"{flag} reads the secret from a pipe, but stdin is a terminal.", hint=hint
        )
    stdin = runtime.stdin
    try:
        if stdin is None:  # the process was started with stdin closed: sys.stdin is None
            raise ValueError("closed")
        line = stdin.readline()
    except UnicodeDecodeError:
        raise UsageError(f"{flag} was given but stdin is not UTF-8 text.") from None
    except (OSError, ValueError):
        raise UsageError(f"{flag} was given but stdin is closed.", hint=hint) from None
    value = strip_secret(line)
    if not value:
        raise UsageError(f"{flag} was given but stdin held no secret.")
    register_secret(value)
    return value


def strip_secret(text: str) -> str:
    """``text`` without surrounding whitespace or UTF-8 byte-order marks (U+FEFF)."""
    return text.strip().lstrip("\ufeff").strip()


def _explicit_credentials(
    env: Mapping[str, str], flag_client_id: str | None, stdin_secret: str | None
) -> _Credentials | None:
    flag_id = flag_client_id.strip() if flag_client_id and flag_client_id.strip() else None
    env_id, env_secret = _env(env, ENV_CLIENT_ID), _env(env, ENV_CLIENT_SECRET)
    env_key = _env_private_key(env)
    if flag_id is None and stdin_secret is None:
        token = _env(env, ENV_ACCESS_TOKEN)
        if token is not None:
            return _direct(token, "token", f"env {ENV_ACCESS_TOKEN}")
        api_key = _env(env, ENV_API_KEY)
        if api_key is not None:
            return _direct(api_key, "apikey", f"env {ENV_API_KEY}")
        if env_id is None and env_secret is None and env_key is None:
            return None
    client_id = _first((flag_id, "flag --client-id"), (env_id, f"env {ENV_CLIENT_ID}"))
    if env_key is not None:
        return _private_key_credentials(env, client_id, env_key, env_secret or stdin_secret)
    secret, secret_source = (
        (stdin_secret, "stdin") if stdin_secret else (env_secret, f"env {ENV_CLIENT_SECRET}")
    )
    if client_id.value is None:
        raise ConfigError(
            f"A client secret is set ({secret_source}) but no client id.",
            hint=f"Set {ENV_CLIENT_ID} or pass --client-id: credentials are taken as a set, never "
            "half from a stored context.",
        )
    if secret is None:
        raise ConfigError(
            f"A client id is set ({client_id.source}) but no client secret.",
            hint=f"Set {ENV_CLIENT_SECRET} or pipe it to --client-secret-stdin: a stored "
            "context's secret is never paired with another client id.",
        )
    register_secret(secret)
    value = secret
    return _Credentials(
        auth_type=Setting("oauth", client_id.source),
        client_id=client_id,
        secret=_LazySecret(lambda: value, at_hand=True),
        secret_source=secret_source,
        from_context=False,
    )


def _env_private_key(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(PEM text, source) from $QLIK_PRIVATE_KEY or the file $QLIK_PRIVATE_KEY_FILE names."""
    text, path = _env(env, ENV_PRIVATE_KEY), _env(env, ENV_PRIVATE_KEY_FILE)
    if text is not None and path is not None:
        raise ConfigError(
            f"Both {ENV_PRIVATE_KEY} and {ENV_PRIVATE_KEY_FILE} are set.",
            hint="Give the private key one way only.",
        )
    if text is not None:
        # Some CI variable stores keep a PEM on one line with literal \n escapes.
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        from qlikm2m.assertion import register_key_text

        register_key_text(text)
        return text, f"env {ENV_PRIVATE_KEY}"
    if path is None:
        return None

    source = f"env {ENV_PRIVATE_KEY_FILE}"
    pem = read_private_key_file(
        path, source, hint=f"Point {ENV_PRIVATE_KEY_FILE} at a PEM file this user can read."
    )
    return pem, source


def read_private_key_file(path: str, source: str, *, hint: str) -> str:
    """The PEM text of the private key file at ``path`` (at most 64 KiB of ASCII), registered
    for redaction. ``source`` names where the path came from, for messages. ConfigError (exit 3)
    when it cannot be read, is too large or is not text."""
    from pathlib import Path

    shown = repr(path) if path.isprintable() else _shown(path)  # a path is not secret: in full
    try:
        with Path(path).expanduser().open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE + 1)
    except OSError as error:
        raise ConfigError(
            f"The private key file {shown} ({source}) cannot be read: {error.strerror or error}.",
            hint=hint,
        ) from None
    if len(raw) > MAX_KEY_FILE:
        raise ConfigError(f"The private key file {shown} ({source}) is too large.")
    try:
        pem = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(
            f"The private key file {shown} ({source}) is not PEM text.",
            hint="Convert a DER key with `openssl pkey -in key.der -inform DER -out key.pem`.",
        ) from None
    from qlikm2m.assertion import register_key_text

    register_key_text(pem)
    return pem


def _private_key_credentials(
    env: Mapping[str, str],
    client_id: Setting,
    key: tuple[str, str],
    secret: str | None,
) -> _Credentials:
    pem, source = key
    if secret is not None:
        raise ConfigError(
            f"Both a client secret and a private key ({source}) are set.",
            hint=f"Unset {ENV_CLIENT_SECRET} to sign in with the key, or the key variables to "
            "use the secret.",
        )
    if client_id.value is None:
        raise ConfigError(
            f"A private key is set ({source}) but no client id.",
            hint=f"Set {ENV_CLIENT_ID} to the OAuth client the key is registered on.",
        )
    passphrase_text = _env(env, ENV_PRIVATE_KEY_PASSPHRASE)
    register_secret(passphrase_text)
    passphrase = (
        _LazySecret(lambda: passphrase_text or "", at_hand=True) if passphrase_text else None
    )
    return _Credentials(
        auth_type=Setting("oauth", client_id.source),
        client_id=client_id,
        secret=_LazySecret(lambda: pem, at_hand=True),
        secret_source=source,
        from_context=False,
        credential_type="private_key",
        passphrase=passphrase,
    )


def _direct(value: str, kind: AuthType, source: str) -> _Credentials:
    register_secret(value)
    return _Credentials(
        auth_type=Setting(kind, source),
        client_id=_UNSET,
        secret=_LazySecret(lambda: value, at_hand=True),
        secret_source=source,
        from_context=False,
    )


def _context_credentials(context: Context, runtime: Runtime, label: str) -> _Credentials:
    def load() -> str:
        from qlikm2m.secretstore import read_secret

        return read_secret(context, runtime.env, interactive=runtime.can_prompt)

    kind: AuthType = "apikey" if context.auth_type == "apikey" else "oauth"
    if kind == "oauth" and not context.client_id:
        raise ConfigError(f"The {label} has no client id.", hint="Fix it with `qlikm2m context`.")
    storage = "secret file" if context.secret_storage == "file" else "keyring"  # noqa: S105
    holds_key = kind == "oauth" and context.holds_private_key
    generation = context.credential_generation
    if generation is None and kind == "oauth":
        # A context from before schema 2: give it a generation once, so that its tokens can be
        # cached again (a fresh generation has none yet, so no token of unknown origin is used).
        from qlikm2m.credstore import CredentialStore

        generation = CredentialStore(runtime.env, interactive=False).bind(context.name)
    return _Credentials(
        auth_type=Setting(kind, label),
        client_id=Setting(context.client_id, label) if kind == "oauth" else _UNSET,
        secret=_LazySecret(load, at_hand=False),
        secret_source=f"{label} ({storage})",
        from_context=True,
        generation=generation,
        credential_type="private_key" if holds_key else "client_secret",
        key_id=Setting(context.key_id, label) if holds_key and context.key_id else None,
        key_alg=Setting(context.key_alg, label) if holds_key and context.key_alg else None,
    )


def _load_context(env: Mapping[str, str], name: str, source: str) -> Context:
    from qlikm2m.contexts import load_contexts

    contexts = load_contexts(env)
    context = contexts.contexts.get(name)
    if context is None:
        known = ", ".join(sorted(contexts.contexts)) or "none"
        raise ConfigError(
            f"No context named {name!r} ({source}).",
            hint=f"Known contexts: {known}. List them with `qlikm2m context ls`.",
        )
    return context


def _current_context(env: Mapping[str, str]) -> Context | None:
    from qlikm2m.contexts import load_contexts

    contexts = load_contexts(env)
    if contexts.current is None:
        return None
    return contexts.contexts.get(contexts.current)


def _check_ca_bundle(setting: Setting) -> str:
    from pathlib import Path

    path = Path(setting.value or "").expanduser()
    if not path.is_file():
        raise ConfigError(
            f"The CA bundle {str(path)!r} ({setting.source}) is not a readable file.",
            hint="Point --ca-bundle / QLIK_CA_BUNDLE at a PEM file of the CA that signed the "
            "tenant's (or proxy's) certificate.",
        )
    return str(path.resolve())


def parse_impersonation(raw: str) -> str:
    """Validate ``subject:<s>`` or ``userId:<id>`` and return it with the canonical field name."""
    field_name, sep, value = raw.strip().partition(":")
    canonical = {"subject": "subject", "userid": "userId"}.get(field_name.strip().lower())
    if not sep or canonical is None or not value.strip():
        raise UsageError(
            f"--impersonate {_shown(raw)} is not subject:<subject> or userId:<id>.",
            hint="e.g. --impersonate 'subject:auth0|a08D000001' or --impersonate userId:6478...",
        )
    return f"{canonical}:{value.strip()}"


def _truthy_env(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").strip().lower() not in _FALSE_WORDS


def _seconds(
    env: Mapping[str, str],
    flag_value: float | None,
    flag_name: str,
    env_name: str,
    default: float,
    *,
    allow_zero: bool = False,
) -> Setting:
    if flag_value is not None:
        if not (0 < flag_value <= 86400):
            raise UsageError(f"{flag_name} must be a number of seconds above 0, not {flag_value}.")
        return Setting(_fmt(flag_value), f"flag {flag_name}")
    raw = _env(env, env_name)
    if raw is None:
        return Setting(_fmt(default), "default")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 86400):
        raise ConfigError(f"{env_name} is {_shown(raw)}; expected a number of seconds above 0.")
    return Setting(_fmt(value), f"env {env_name}")


def _count(env: Mapping[str, str], env_name: str, default: int) -> Setting:
    raw = _env(env, env_name)
    if raw is None:
        return Setting(str(default), "default")
    if not raw.isdigit() or int(raw) > 100:
        raise ConfigError(f"{env_name} is {_shown(raw)}; expected a whole number from 0 to 100.")
    return Setting(str(int(raw)), f"env {env_name}")


def _fmt(seconds: float) -> str:
    return f"{seconds:g}"


def explicit_settings(
    *,
    server: str,
    auth_type: str,
    client_id: str | None,
    secret: str,
    scope: str | None = None,
    ca_bundle: str | None = None,
    source: str = "init",
    credential_type: CredentialType = "client_secret",
    key_id: str | None = None,
    key_alg: str | None = None,
) -> ResolvedSettings:
    """Settings given as a whole, e.g. by ``context init`` to test credentials before saving.

    With ``credential_type="private_key"`` the secret is an unencrypted PEM private key that
    signs the token requests under ``key_id``/``key_alg`` (defaults: its thumbprint, its type's).
    """
    if auth_type not in ("oauth", "apikey"):
        raise ConfigError(f"Unknown auth type {auth_type!r}; expected oauth or apikey.")
    if auth_type == "oauth" and not client_id:
        raise ConfigError("OAuth credentials need a client id.")
    register_secret(secret)
    if credential_type == "private_key":
        from qlikm2m.assertion import register_key_text

        register_key_text(secret)
    value = secret
    ca = Setting(None, "unset")
    if ca_bundle:
        ca = Setting(_check_ca_bundle(Setting(ca_bundle, source)), source)
    return ResolvedSettings(
        server=Setting(normalize_server_url(server), source),
        auth_type=Setting(auth_type, source),
        client_id=Setting(client_id if auth_type == "oauth" else None, source),
        scope=Setting(scope or None, source) if scope else _UNSET,
        ca_bundle=ca,
        context_name=_UNSET,
        impersonate=_UNSET,
        # Callers decide whether validation may use the cache (``context init`` does not, so a
        # failed init leaves nothing behind); when it does, the secret is at hand and a token
        # minted with another secret is never reused.
        token_cache=Setting("on", "default"),
        connect_timeout=Setting(_fmt(DEFAULT_CONNECT_TIMEOUT), "default"),
        read_timeout=Setting(_fmt(DEFAULT_READ_TIMEOUT), "default"),
        max_retry_wait=Setting(_fmt(DEFAULT_MAX_RETRY_WAIT), "default"),
        max_retries=Setting(str(DEFAULT_MAX_RETRIES), "default"),
        secret_source=source,
        _secret=_LazySecret(lambda: value, at_hand=True),
        credential_type=credential_type if auth_type == "oauth" else "client_secret",
        key_id=Setting(key_id, source) if key_id else _UNSET,
        key_alg=Setting(key_alg, source) if key_alg else _UNSET,
    )
