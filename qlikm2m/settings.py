"""Every setting of a command, resolved once in one written-down order, each with its source.

The order (flag > environment > selected context > default) lives in ``resolve_settings`` and
nowhere else; messages and ``auth status`` show where each value came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from qlikm2m.errors import ConfigError, QlikM2MError, UsageError
from qlikm2m.redaction import mask, register_secret

if TYPE_CHECKING:
    from qlikm2m.assertion import SigningKey
    from qlikm2m.contexts import Context
    from qlikm2m.http import HttpOptions
    from qlikm2m.runtime import Runtime

AuthType = Literal["oauth", "apikey", "token"]

CredentialType = Literal["client_secret", "private_key"]
MAX_KEY_FILE = 64 * 1024

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


# --- the settings table -------------------------------------------------------------------------


class Parser:
    """How one setting's text is checked and typed. ``text`` is a flag's or variable's value
    (already stripped, never empty); ``source`` names where it came from for messages."""

    def from_text(self, spec: SettingSpec, raw: str, source: str) -> str:
        return raw

    def from_flag(self, spec: SettingSpec, value: Any) -> str:
        return self.from_text(spec, str(value).strip(), f"flag {spec.flag}")

    def typed(self, value: str) -> Any:
        return value


class _Seconds(Parser):
    """Seconds above 0 (or from 0, ``allow_zero``) up to a day, shown as ``%g``."""

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def from_text(self, spec: SettingSpec, raw: str, source: str) -> str:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        low_ok = value >= 0 if self.allow_zero else value > 0
        if not (low_ok and value <= 86400):
            raise ConfigError(f"{spec.env} is {_shown(raw)}; expected a number of seconds above 0.")
        return _fmt(value)

    def from_flag(self, spec: SettingSpec, value: Any) -> str:
        if not (0 < value <= 86400):
            raise UsageError(f"{spec.flag} must be a number of seconds above 0, not {value}.")
        return _fmt(value)

    def typed(self, value: str) -> float:
        return float(value)


class _Count(Parser):
    """A whole number from 0 to ``most``."""

    def __init__(self, most: int) -> None:
        self.most = most

    def from_text(self, spec: SettingSpec, raw: str, source: str) -> str:
        if not raw.isdigit() or int(raw) > self.most:
            raise ConfigError(
                f"{spec.env} is {_shown(raw)}; expected a whole number from 0 to {self.most}."
            )
        return str(int(raw))

    def typed(self, value: str) -> int:
        return int(value)


class _CaBundle(Parser):
    """A readable file, kept as its absolute path."""

    def from_text(self, spec: SettingSpec, raw: str, source: str) -> str:
        return _check_ca_bundle(Setting(raw, source))


class _Impersonation(Parser):
    def from_flag(self, spec: SettingSpec, value: Any) -> str:
        return parse_impersonation(str(value))


class _Server(Parser):
    def from_text(self, spec: SettingSpec, raw: str, source: str) -> str:
        return normalize_server_url(raw)


_TEXT = Parser()


# SettingSpec, Setting and _Credentials are NamedTuples, not frozen dataclasses: they are built
# on every command's path, and a frozen dataclass costs ~1 ms of code generation at import against
# ~0.2 ms (issue 14). Immutable and compared by value, as before.


class SettingSpec(NamedTuple):
    """One setting, declared once: where it may come from, its default, how it is parsed and
    whether it is secret. Resolution (``resolve_settings``), provenance (``describe``), the shared
    flags (``qlikm2m.commands.tenant_options``), the HTTP options (``http_options``) and the test
    of docs/environment.md all read ``SETTINGS``.

    ``flag`` is the shared option on every tenant command (None: none); ``param`` the Python name
    the flag's value arrives under; ``env`` the environment variable; ``context_key`` the
    attribute of a stored context; ``default`` the value as resolved (a string, as ``Setting``
    holds it); ``http_option`` the ``HttpOptions`` field it sets; ``sensitive`` settings are
    never shown, only masked; ``help``/``metavar`` describe the flag.
    """

    name: str
    env: str | None = None
    flag: str | None = None
    param: str | None = None
    context_key: str | None = None
    default: str | None = None
    parser: Parser = _TEXT
    sensitive: bool = False
    http_option: str | None = None
    metavar: str | None = None
    help: str = ""
    short_flag: str | None = None

    @property
    def documented_default(self) -> str | None:
        """The default as docs/environment.md shows it: ``off`` for a ``--no-...`` switch (the
        variable turns it off), else the value in backquotes; None for no default."""
        if self.default is None:
            return None
        if self.flag is not None and self.flag.startswith("--no-"):
            return "off"
        return f"`{self.default}`"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "context",
        env="QLIK_CONTEXT",
        flag="--context",
        short_flag="-c",
        param="context_name",
        metavar="NAME",
        help="Use this context for this command only ($QLIK_CONTEXT does the same per shell).",
    ),
    SettingSpec(
        "server",
        env="QLIK_SERVER",
        flag="--server",
        param="server",
        context_key="server",
        parser=_Server(),
        metavar="URL",
        help="Tenant URL, e.g. https://tenant.eu.qlikcloud.com ($QLIK_SERVER).",
    ),
    SettingSpec(
        "client_id",
        env="QLIK_CLIENT_ID",
        flag="--client-id",
        param="client_id",
        context_key="client_id",
        metavar="ID",
        help="OAuth client id ($QLIK_CLIENT_ID); its secret comes from $QLIK_CLIENT_SECRET "
        "or --client-secret-stdin.",
    ),
    SettingSpec(
        "client_secret",
        env="QLIK_CLIENT_SECRET",
        # The flag says where to read the secret, never the secret itself.
        flag="--client-secret-stdin",
        param="client_secret_stdin",
        sensitive=True,
        help="Read the client secret from the first line of stdin (never from argv).",
    ),
    SettingSpec("private_key", env="QLIK_PRIVATE_KEY", sensitive=True),
    SettingSpec("private_key_file", env="QLIK_PRIVATE_KEY_FILE"),
    SettingSpec("private_key_passphrase", env="QLIK_PRIVATE_KEY_PASSPHRASE", sensitive=True),
    SettingSpec("key_id", env="QLIK_KEY_ID"),
    SettingSpec("key_alg", env="QLIK_KEY_ALG"),
    SettingSpec("api_key", env="QLIK_API_KEY", sensitive=True),
    SettingSpec("access_token", env="QLIK_ACCESS_TOKEN", sensitive=True),
    SettingSpec(
        "scope",
        env="QLIK_SCOPE",
        flag="--scope",
        param="scope",
        context_key="scope",
        metavar="SCOPES",
        help="Space-separated OAuth scopes ($QLIK_SCOPE).",
    ),
    SettingSpec(
        "impersonate",
        flag="--impersonate",
        param="impersonate",
        parser=_Impersonation(),
        metavar="USER",
        help="Act as a user: subject:<subject> or userId:<id> (user-impersonation grant).",
    ),
    SettingSpec(
        "token_cache",
        env="QLIKM2M_NO_TOKEN_CACHE",
        flag="--no-token-cache",
        param="no_token_cache",
        default="on",
        help="Mint a token for this command only ($QLIKM2M_NO_TOKEN_CACHE=1).",
    ),
    SettingSpec(
        "ca_bundle",
        env="QLIK_CA_BUNDLE",
        flag="--ca-bundle",
        param="ca_bundle",
        context_key="ca_bundle",
        parser=_CaBundle(),
        http_option="ca_bundle",
        metavar="FILE",
        help="Extra CA certificates (PEM) trusted besides the system store ($QLIK_CA_BUNDLE).",
    ),
    SettingSpec(
        "connect_timeout",
        env="QLIKM2M_CONNECT_TIMEOUT",
        flag="--connect-timeout",
        param="connect_timeout",
        default="10",
        parser=_Seconds(),
        http_option="connect_timeout",
        metavar="SECONDS",
        help="Seconds to wait for a connection ($QLIKM2M_CONNECT_TIMEOUT, default 10).",
    ),
    SettingSpec(
        "read_timeout",
        env="QLIKM2M_READ_TIMEOUT",
        flag="--read-timeout",
        param="read_timeout",
        default="60",
        parser=_Seconds(),
        http_option="read_timeout",
        metavar="SECONDS",
        help="Seconds to wait for data from the server ($QLIKM2M_READ_TIMEOUT, default 60).",
    ),
    SettingSpec(
        "max_retry_wait",
        env="QLIKM2M_MAX_RETRY_WAIT",
        default="60",
        parser=_Seconds(allow_zero=True),
        http_option="max_retry_wait",
    ),
    SettingSpec(
        "max_retries",
        env="QLIKM2M_MAX_RETRIES",
        default="4",
        parser=_Count(100),
        http_option="max_retries",
    ),
)
SPEC = {spec.name: spec for spec in SETTINGS}

# Variables read outside settings resolution, by the module that owns them (name -> default as
# docs/environment.md shows it): listed so that the docs test knows every variable qlikm2m reads.
OTHER_VARIABLES: dict[str, str] = {
    "QLIKM2M_OUTPUT": "`json`",  # runtime.Runtime.output
    "QLIKM2M_KEYRING_TIMEOUT": "60 at a terminal, 8 otherwise",  # secretstore
    "QLIKM2M_CONFIG_DIR": "the platform's user config folder",  # paths
    "QLIKM2M_CACHE_DIR": "the platform's user cache folder",  # paths
    "QLIKM2M_SANDBOX_CLIENT_SECRET": "random",  # sandbox
}


def _env_name(name: str) -> str:
    env = SPEC[name].env
    assert env is not None
    return env


ENV_SERVER = _env_name("server")
ENV_CLIENT_ID = _env_name("client_id")
ENV_CLIENT_SECRET = _env_name("client_secret")
ENV_API_KEY = _env_name("api_key")
ENV_ACCESS_TOKEN = _env_name("access_token")
ENV_SCOPE = _env_name("scope")
ENV_CA_BUNDLE = _env_name("ca_bundle")
ENV_CONTEXT = _env_name("context")
ENV_NO_TOKEN_CACHE = _env_name("token_cache")
ENV_CONNECT_TIMEOUT = _env_name("connect_timeout")
ENV_READ_TIMEOUT = _env_name("read_timeout")
ENV_MAX_RETRY_WAIT = _env_name("max_retry_wait")
ENV_MAX_RETRIES = _env_name("max_retries")
# Private-key JWT (docs/private-key-jwt.md): the key as PEM text or a file path (CI secret stores
# hand over either), its passphrase when encrypted, and the kid/alg it is registered under.
ENV_PRIVATE_KEY = _env_name("private_key")
ENV_PRIVATE_KEY_FILE = _env_name("private_key_file")
ENV_PRIVATE_KEY_PASSPHRASE = _env_name("private_key_passphrase")
ENV_KEY_ID = _env_name("key_id")
ENV_KEY_ALG = _env_name("key_alg")

DEFAULT_CONNECT_TIMEOUT = float(SPEC["connect_timeout"].default or 0)
DEFAULT_READ_TIMEOUT = float(SPEC["read_timeout"].default or 0)
DEFAULT_MAX_RETRY_WAIT = float(SPEC["max_retry_wait"].default or 0)
DEFAULT_MAX_RETRIES = int(SPEC["max_retries"].default or 0)


# --- resolved values ----------------------------------------------------------------------------


class Setting(NamedTuple):
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


class ResolvedSettings:
    """Everything a command needs to talk to a tenant. The secret is not a field: see ``secret``.

    Immutable (AttributeError on assignment), compared and hashed by its public fields, shown
    without the secret. Written out rather than a frozen dataclass: every command builds it, and
    the launcher's fast path imports no ``dataclasses`` (issue 14; benchmarks/README.md).
    ``stored_context`` is the stored context whose secret these settings use (None: the
    environment, stdin or flags) and ``credential_generation`` its credential generation (None:
    unbound, a context from before schema 2); with private-key JWT the secret is a PEM private
    key (see ``signing_key``).
    """

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
    _secret: _LazySecret | None
    stored_context: str | None
    credential_generation: str | None
    credential_type: CredentialType
    key_id: Setting
    key_alg: Setting
    _passphrase: _LazySecret | None
    _loaded: dict[str, Any]
    # Every field above; the public ones are compared and shown (repr), the private ones (the
    # secret and passphrase holders, the loaded-key memo) neither.
    __slots__ = tuple(__annotations__)

    def __init__(
        self,
        *,
        server: Setting,
        auth_type: Setting,
        client_id: Setting,
        scope: Setting,
        ca_bundle: Setting,
        context_name: Setting,
        impersonate: Setting,
        token_cache: Setting,
        connect_timeout: Setting,
        read_timeout: Setting,
        max_retry_wait: Setting,
        max_retries: Setting,
        secret_source: str,
        _secret: _LazySecret | None = None,
        stored_context: str | None = None,
        credential_generation: str | None = None,
        credential_type: CredentialType = "client_secret",
        key_id: Setting = _UNSET,
        key_alg: Setting = _UNSET,
        _passphrase: _LazySecret | None = None,
        _loaded: dict[str, Any] | None = None,
    ) -> None:
        values = dict(locals())
        del values["self"]
        values["_loaded"] = {} if _loaded is None else _loaded
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _replace(self, **changes: Any) -> ResolvedSettings:
        """A copy with ``changes`` (field name -> value; the private ones too)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return ResolvedSettings(**values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ResolvedSettings is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ResolvedSettings is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _RESOLVED_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ResolvedSettings)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _RESOLVED_FIELDS)
        return f"ResolvedSettings({shown})"

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
        return self._replace(_secret=_LazySecret(lambda: value, at_hand=True))

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

    def http_options(self, **overrides: Any) -> HttpOptions:
        """The transport's options, from every setting the table maps to an ``HttpOptions``
        field (timeouts, retries, CA bundle); ``overrides`` replace some (``doctor`` retries
        nothing)."""
        from qlikm2m.http import HttpOptions

        values: dict[str, Any] = {}
        for spec in SETTINGS:
            if spec.http_option is None:
                continue
            setting: Setting = getattr(self, spec.name)
            if setting.value is not None:
                values[spec.http_option] = spec.parser.typed(setting.value)
        values.update(overrides)
        return HttpOptions(**values)

    def describe(self) -> list[dict[str, str]]:
        """name/value/source rows for ``auth status`` and ``context get``; the secret is masked."""
        secret_label = {"oauth": "client_secret", "apikey": "api_key", "token": "access_token"}
        label = "private_key" if self.uses_private_key else secret_label[self.kind]
        shown = {
            "context": True,
            "server": True,
            "client_id": self.kind == "oauth",
            label: True,  # the one credential in use, masked
            "key_id": self.uses_private_key,
            "key_alg": self.uses_private_key,
            "scope": self.kind == "oauth",
            "impersonate": self.kind == "oauth",
            "token_cache": self.kind == "oauth",
        }
        rows: list[tuple[str, Setting]] = []
        for spec in SETTINGS:
            if not shown.get(spec.name, spec.name in _ALWAYS_DESCRIBED):
                continue
            if spec.sensitive:
                rows.append((spec.name, Setting(self._masked_secret(), self.secret_source)))
            else:
                rows.append((spec.name, getattr(self, _FIELD_OF.get(spec.name, spec.name))))
            if spec.name == "server":
                rows.append(("auth_type", self.auth_type))
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


_RESOLVED_FIELDS = tuple(name for name in ResolvedSettings.__slots__ if not name.startswith("_"))


# Settings whose ResolvedSettings field has another name, and those every description shows.
_FIELD_OF = {"context": "context_name"}
_ALWAYS_DESCRIBED = frozenset(
    {"ca_bundle", "connect_timeout", "read_timeout", "max_retry_wait", "max_retries"}
)

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


def _resolve(
    spec: SettingSpec,
    env: Mapping[str, str],
    flag_value: Any = None,
    context: Context | None = None,
    context_label: str = "",
) -> Setting:
    """One setting by the order every setting follows: flag > environment > context > default,
    parsed by its parser (errors name the source)."""
    if isinstance(flag_value, str):
        flag_value = flag_value.strip() or None
    if flag_value is not None:
        return Setting(spec.parser.from_flag(spec, flag_value), f"flag {spec.flag}")
    raw = _env(env, spec.env) if spec.env else None
    if raw is not None:
        source = f"env {spec.env}"
        return Setting(spec.parser.from_text(spec, raw, source), source)
    if context is not None and spec.context_key:
        stored = getattr(context, spec.context_key)
        if stored is not None:
            return Setting(spec.parser.from_text(spec, stored, context_label), context_label)
    if spec.default is not None:
        return Setting(spec.default, "default")
    return _UNSET


class _Credentials(NamedTuple):
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

    scope_setting = _resolve(SPEC["scope"], env, scope, context, context_label)
    ca_setting = _resolve(SPEC["ca_bundle"], env, ca_bundle, context, context_label)

    impersonate_setting = _UNSET
    if impersonate:
        if creds.auth_type.value != "oauth":
            raise UsageError(
                "--impersonate needs OAuth client credentials, not an API key or token."
            )
        # Parsed as given: a blank value is refused, not taken for "not given".
        spec = SPEC["impersonate"]
        impersonate_setting = Setting(spec.parser.from_flag(spec, impersonate), f"flag {spec.flag}")

    # A switch: the flag or a true-ish variable turns the cache off; a false-ish one is unset.
    cache_spec = SPEC["token_cache"]
    if no_token_cache:
        cache_setting = Setting("off", f"flag {cache_spec.flag}")
    elif _truthy_env(env, ENV_NO_TOKEN_CACHE):
        cache_setting = Setting("off", f"env {ENV_NO_TOKEN_CACHE}")
    else:
        cache_setting = Setting(cache_spec.default, "default")

    return ResolvedSettings(
        server=server_setting,
        auth_type=creds.auth_type,
        client_id=creds.client_id,
        scope=scope_setting,
        ca_bundle=ca_setting,
        context_name=context_setting,
        impersonate=impersonate_setting,
        token_cache=cache_setting,
        connect_timeout=_resolve(SPEC["connect_timeout"], env, connect_timeout),
        read_timeout=_resolve(SPEC["read_timeout"], env, read_timeout),
        max_retry_wait=_resolve(SPEC["max_retry_wait"], env),
        max_retries=_resolve(SPEC["max_retries"], env),
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
        connect_timeout=_resolve(SPEC["connect_timeout"], {}),
        read_timeout=_resolve(SPEC["read_timeout"], {}),
        max_retry_wait=_resolve(SPEC["max_retry_wait"], {}),
        max_retries=_resolve(SPEC["max_retries"], {}),
        secret_source=source,
        _secret=_LazySecret(lambda: value, at_hand=True),
        credential_type=credential_type if auth_type == "oauth" else "client_secret",
        key_id=Setting(key_id, source) if key_id else _UNSET,
        key_alg=Setting(key_alg, source) if key_alg else _UNSET,
    )
