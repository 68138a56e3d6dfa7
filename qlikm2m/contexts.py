"""The stored contexts: one human-editable TOML file that never holds a secret.

Every change is a read-modify-write under a cross-process lock with an atomic replace, so parallel
processes lose nothing and a reader never sees a torn file. A file that does not parse or does not
match the schema is reported with its line and left exactly as it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from qlikm2m import fileio, paths
from qlikm2m.errors import ConfigError, UsageError

AuthType = Literal["oauth", "apikey"]
SecretStorage = Literal["keyring", "file"]
# What an OAuth context's stored credential is: a client secret, or a private key that signs
# client assertions (private-key JWT, docs/private-key-jwt.md).
CredentialType = Literal["client_secret", "private_key"]

AUTH_TYPES: tuple[AuthType, ...] = ("oauth", "apikey")
SECRET_STORAGES: tuple[SecretStorage, ...] = ("keyring", "file")
CREDENTIAL_TYPES: tuple[CredentialType, ...] = ("client_secret", "private_key")
CONTEXTS_FILENAME = "contexts.toml"
# 2 added credential_generation; files of version 1 still load (their contexts are "unbound").
# 3 added credential_type/key_id/key_alg (a context holding a private key). A file is written as
# version 3 only when one of its contexts holds a key, so that a qlikm2m from before keys keeps
# reading every file it can use and tells to upgrade for the others.
SCHEMA_VERSION = 3
_KEYLESS_SCHEMA_VERSION = 2

# Names become TOML keys, keyring user names and (quoted) file names: keep them boring, but allow
# the host[:port] names `context init` derives from a tenant URL (with [brackets] for IPv6).
_NAME_PATTERN = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9._:@+\[\]-]{0,127}")
_OPTIONAL_KEYS = (
    "client_id",
    "credential_type",
    "key_id",
    "key_alg",
    "scope",
    "ca_bundle",
    "comment",
    "credential_generation",
)
_KNOWN_KEYS = frozenset({"server", "auth_type", "secret_storage", *_OPTIONAL_KEYS})
# Keys a person might add by hand to paste a credential: refused with a pointer, never echoed.
_SECRET_LIKE = re.compile(
    r"secret|password|passphrase|api_?key|private_?key|pem|token|authorization|headers",
    re.IGNORECASE,
)

_HEADER = (
    "# qlikm2m contexts. Edit with care, or use `qlikm2m context ...`; comments are not kept.\n"
    "# Secrets and private keys never belong here: they live in the OS keyring (or, when chosen\n"
    "# explicitly with --secret-storage file, in a 0600 file next to this one).\n"
)


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    auth_type: AuthType
    client_id: str | None
    scope: str | None = None
    ca_bundle: str | None = None
    comment: str | None = None
    secret_storage: SecretStorage = "keyring"  # noqa: S105 (a storage kind, not a secret)
    # A random id renewed whenever the context's secret is set: cached tokens carry the one they
    # were minted under, so a token is only ever used by the secret that minted it, without
    # reading the keyring on the warm path. None ("unbound", files from before schema 2): no
    # cached token is trusted until the store gives the context one.
    credential_generation: str | None = None
    # An OAuth context signs in with a client secret (None: the default, written as nothing) or a
    # private key; a key's id and algorithm as registered on the client are ordinary settings.
    credential_type: CredentialType | None = None
    key_id: str | None = None
    key_alg: str | None = None

    @property
    def holds_private_key(self) -> bool:
        """True when the stored credential is a private key (private-key JWT), not a secret."""
        return self.auth_type == "oauth" and self.credential_type == "private_key"

    @property
    def secret_in_file(self) -> bool:
        """True when the secret was explicitly put in a 0600 file instead of the keyring."""
        return self.secret_storage == "file"  # noqa: S105


@dataclass(frozen=True)
class ContextsFile:
    path: Path
    current: str | None
    contexts: Mapping[str, Context] = field(default_factory=dict)

    def get(self, name: str) -> Context:
        """The context called ``name``, or a ConfigError listing the known ones."""
        try:
            return self.contexts[name]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none yet"
            raise ConfigError(
                f"No context named {name!r} in {self.path} (known: {known}).",
                hint="List them with `qlikm2m context ls`; create one with `qlikm2m context init`.",
            ) from None

    def with_context(self, context: Context) -> ContextsFile:
        return replace(self, contexts={**self.contexts, context.name: context})

    def without(self, name: str) -> ContextsFile:
        remaining = {key: value for key, value in self.contexts.items() if key != name}
        current = None if self.current == name else self.current
        return replace(self, contexts=remaining, current=current)

    def with_current(self, name: str | None) -> ContextsFile:
        if name is not None:
            self.get(name)
        return replace(self, current=name)


def new_generation() -> str:
    """A fresh credential generation id: 32 random hex digits, unguessable and never reused."""
    import secrets

    return secrets.token_hex(16)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable context name, else raise UsageError (exit 2)."""
    if not _NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"Invalid context name {name!r}.",
            hint="Use up to 128 letters, digits and . _ - : @ + [ ]; start with a letter, a digit or [ (an IPv6 host).",
        )
    return name


def contexts_path(env: Mapping[str, str]) -> Path:
    return paths.config_dir(env) / CONTEXTS_FILENAME


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def load_contexts(env: Mapping[str, str]) -> ContextsFile:
    """Read the contexts file; a missing file is an empty one, a broken one a ConfigError."""
    return _read(contexts_path(env))


def lock_path(env: Mapping[str, str]) -> Path:
    """The cross-process lock every writer of the contexts file (and its secrets) holds."""
    return _lock_path(contexts_path(env))


def read_file(path: Path) -> ContextsFile:
    """Read the contexts file at ``path`` (the caller holds the lock when it will write)."""
    return _read(path)


def dump(contexts_file: ContextsFile) -> bytes:
    """The bytes ``write`` would store for ``contexts_file``."""
    return _dump(contexts_file)


def update_contexts(
    env: Mapping[str, str], change: Callable[[ContextsFile], ContextsFile]
) -> ContextsFile:
    """Apply ``change`` to the freshly read file and write the result, all under the lock.

    ``change`` may raise to abandon the update; the file is then left untouched. A file that fails
    to load is never written over. Commands change contexts through ``qlikm2m.credstore``, which
    also keeps the secrets and the token cache in step and finishes interrupted changes first.
    """
    path = contexts_path(env)
    with fileio.locked(_lock_path(path)):
        before = _read(path)
        after = change(before)
        if after != before:
            fileio.atomic_write(path, _dump(after))
        return after


def _read(path: Path) -> ContextsFile:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ContextsFile(path=path, current=None, contexts={})
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a contexts file.") from None
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror}.") from None
    try:
        # utf-8-sig: an editor that saves with a byte-order mark must not break the file.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _broken(path, line, "the file is not valid UTF-8") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # The message names the problem and "(at line L, column C)"; it never quotes the file.
        raise ConfigError(
            f"{path} is not valid TOML: {error}.",
            hint=_REPAIR_HINT,
            details={"file": str(path)},
        ) from None
    return _parse(path, text, document)


_REPAIR_HINT = (
    "Fix the file by hand (it is left exactly as it is), or move it aside and recreate your "
    "contexts with `qlikm2m context init`."
)


def _broken(path: Path, line: int | None, problem: str) -> ConfigError:
    where = f"{path}, line {line}" if line else str(path)
    return ConfigError(
        f"{where}: {problem}.",
        hint=_REPAIR_HINT,
        details={"file": str(path), **({"line": line} if line else {})},
    )


def _parse(path: Path, text: str, document: dict[str, Any]) -> ContextsFile:
    def fail(problem: str, table: tuple[str, ...] = (), key: str | None = None) -> ConfigError:
        return _broken(path, _locate(text, table, key), problem)

    version = document.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail("schema_version must be a whole number", key="schema_version")
    if version > SCHEMA_VERSION:
        raise fail(
            f"schema_version {version} was written by a newer qlikm2m (this one reads "
            f"{SCHEMA_VERSION}); upgrade qlikm2m",
            key="schema_version",
        )
    if version < 1:
        raise fail(f"schema_version {version} is not a valid version", key="schema_version")
    for key in document:
        if key not in ("schema_version", "current", "contexts"):
            raise fail(f"unknown top-level key {key!r}", key=key)

    raw_contexts = document.get("contexts", {})
    if not isinstance(raw_contexts, dict):
        raise fail("'contexts' must be a table of [contexts.NAME] tables", key="contexts")
    contexts: dict[str, Context] = {}
    for name, body in raw_contexts.items():
        table = ("contexts", name)
        if not _NAME_PATTERN.fullmatch(name):
            raise fail(f"invalid context name {name!r}", table)
        if not isinstance(body, dict):
            raise fail(f"context {name!r} must be a table", ("contexts",), name)
        contexts[name] = _parse_context(name, body, lambda p, k=None, t=table: fail(p, t, k))

    current = document.get("current")
    if current is not None and not isinstance(current, str):
        raise fail("'current' must be a context name (a string)", key="current")
    if current == "":
        current = None
    if current is not None and current not in contexts:
        raise fail(
            f"'current' names {current!r}, which is not a context in the file", key="current"
        )
    return ContextsFile(path=path, current=current, contexts=contexts)


def _parse_context(name: str, body: dict[str, Any], fail: Callable[..., ConfigError]) -> Context:
    for key in body:
        if key in _KNOWN_KEYS:
            continue
        if _SECRET_LIKE.search(key):
            raise fail(
                f"context {name!r} has a key {key!r}: secrets do not belong in this file; "
                f"delete it and store the secret with `qlikm2m context update {name} "
                "--client-secret-stdin` (or --api-key-stdin, --private-key-file FILE)",
                key,
            )
        raise fail(f"context {name!r} has an unknown key {key!r}", key)
    values: dict[str, str | None] = {}
    for key in ("server", "auth_type", "secret_storage", *_OPTIONAL_KEYS):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} of context {name!r} must be a string", key)
        values[key] = value or None
    server = values["server"]
    if server is None:
        raise fail(f"context {name!r} has no server", None)
    auth_type = values["auth_type"] or "oauth"
    if auth_type not in AUTH_TYPES:
        raise fail(
            f"auth_type of context {name!r} must be one of {', '.join(AUTH_TYPES)}", "auth_type"
        )
    storage = values["secret_storage"] or "keyring"
    if storage not in SECRET_STORAGES:
        raise fail(
            f"secret_storage of context {name!r} must be one of {', '.join(SECRET_STORAGES)}",
            "secret_storage",
        )
    if auth_type == "oauth" and values["client_id"] is None:
        raise fail(f"OAuth context {name!r} has no client_id", None)
    credential_type = values["credential_type"]
    if credential_type is not None and credential_type not in CREDENTIAL_TYPES:
        raise fail(
            f"credential_type of context {name!r} must be one of {', '.join(CREDENTIAL_TYPES)}",
            "credential_type",
        )
    holds_key = auth_type == "oauth" and credential_type == "private_key"
    return Context(
        name=name,
        server=server,
        auth_type=auth_type,
        client_id=values["client_id"] if auth_type == "oauth" else None,
        scope=values["scope"],
        ca_bundle=values["ca_bundle"],
        comment=values["comment"],
        secret_storage=storage,
        credential_generation=values["credential_generation"],
        credential_type="private_key" if holds_key else None,
        key_id=values["key_id"] if holds_key else None,
        key_alg=values["key_alg"] if holds_key else None,
    )


_KEY_LINE = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")


def _locate(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """Best-effort line of ``key`` in ``table`` (or of the table header), for messages.

    tomllib reports lines only for syntax errors; the file already parsed, so every header line
    parses on its own and gives the table's path.
    """
    current: tuple[str, ...] = ()
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = _header_path(stripped)
            if current == table:
                header_line = number
            continue
        if current != table or key is None:
            continue
        match = _KEY_LINE.match(line)
        if match and next(group for group in match.groups() if group is not None) == key:
            return number
    return header_line


def _header_path(header: str) -> tuple[str, ...]:
    try:
        parsed: Any = tomllib.loads(header)
    except tomllib.TOMLDecodeError:
        return ()
    path: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        [(name, parsed)] = parsed.items()
        path.append(name)
    return tuple(path)


def _dump(contexts_file: ContextsFile) -> bytes:
    import tomli_w

    holds_keys = any(c.holds_private_key for c in contexts_file.contexts.values())
    version = SCHEMA_VERSION if holds_keys else _KEYLESS_SCHEMA_VERSION
    document: dict[str, Any] = {"schema_version": version}
    if contexts_file.current is not None:
        document["current"] = contexts_file.current
    tables: dict[str, dict[str, str]] = {}
    for name in sorted(contexts_file.contexts):
        context = contexts_file.contexts[name]
        table = {"server": context.server, "auth_type": context.auth_type}
        for key in _OPTIONAL_KEYS:
            value = getattr(context, key)
            if value is not None:
                table[key] = value
        table["secret_storage"] = context.secret_storage
        tables[name] = table
    document["contexts"] = tables
    return (_HEADER + "\n" + tomli_w.dumps(document)).encode("utf-8")
