"""Reading qlik-cli's ``~/.qlik/contexts.yml`` into qlikm2m contexts (the source is only read).

qlik-cli keeps secrets in that file in plaintext: an API key as ``headers.Authorization: Bearer
<key>``, an M2M client as ``oauth-client-id`` / ``oauth-client-secret``. Each entry becomes a
candidate context with its secret (destined for the keyring) or a skipped entry with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlikm2m.contexts import AuthType, Context, SecretStorage, validate_name
from qlikm2m.errors import ConfigError, QlikM2MError
from qlikm2m.redaction import register_secret
from qlikm2m.settings import strip_secret

# Far above any real contexts file; refuses to parse something that is clearly not one.
_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ImportCandidate:
    context: Context
    secret: str = field(repr=False)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedEntry:
    name: str
    reason: str


@dataclass(frozen=True)
class QlikCliContexts:
    path: Path
    current: str | None
    candidates: tuple[ImportCandidate, ...]
    skipped: tuple[SkippedEntry, ...]


def default_path(env: Mapping[str, str]) -> Path:
    """qlik-cli's file: ``~/.qlik/contexts.yml`` (``$HOME`` first, as qlik-cli itself does)."""
    home = env.get("HOME") or env.get("USERPROFILE")
    return (Path(home) if home else Path.home()) / ".qlik" / "contexts.yml"


def read_qlik_cli_contexts(path: Path, *, secret_storage: SecretStorage) -> QlikCliContexts:
    """Parse qlik-cli's contexts file; every secret found is registered for redaction."""
    document = _load_yaml(path)
    if document is None:
        return QlikCliContexts(path=path, current=None, candidates=(), skipped=())
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a qlik-cli contexts file (its top level is not a map).")
    raw_contexts = document.get("contexts") or {}
    if not isinstance(raw_contexts, dict):
        raise ConfigError(f"{path}: 'contexts' is not a map of named contexts.")
    candidates: list[ImportCandidate] = []
    skipped: list[SkippedEntry] = []
    for raw_name, body in raw_contexts.items():
        name = str(raw_name)
        try:
            candidates.append(_candidate(name, body, secret_storage))
        except _Skip as skip:
            skipped.append(SkippedEntry(name=name, reason=skip.reason))
    current = document.get("current-context")
    return QlikCliContexts(
        path=path,
        current=current if isinstance(current, str) and current else None,
        candidates=tuple(candidates),
        skipped=tuple(skipped),
    )


def _load_yaml(path: Path) -> Any:
    from qlikm2m import yaml_codec

    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"No qlik-cli contexts file at {path}.",
            hint="Pass the path of qlik-cli's contexts.yml: "
            "`qlikm2m context import-qlik-cli PATH`.",
        ) from None
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror}.") from None
    if len(raw) > _MAX_BYTES:
        raise ConfigError(
            f"{path} is larger than {_MAX_BYTES // 1024 // 1024} MB: not a contexts file."
        )
    try:
        # A UTF-8 byte-order mark (Windows editors write one) is not part of the document.
        return yaml_codec.load(raw.removeprefix(b"\xef\xbb\xbf"))
    except yaml_codec.YamlSyntaxError as error:
        # The file holds plaintext secrets: report the place and the problem, never a snippet.
        where = f"{path}, line {error.line}" if error.line is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({error.problem}).") from None


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise _Skip(f"its {key!r} is not a text value")
    return strip_secret(str(value)) or None


def _candidate(name: str, body: Any, storage: SecretStorage) -> ImportCandidate:
    from qlikm2m.settings import normalize_server_url

    if not isinstance(body, dict):
        raise _Skip("the entry is not a map")
    try:
        validate_name(name)
    except QlikM2MError:
        raise _Skip(
            "the name is not a valid qlikm2m context name (letters, digits and . _ - : @ +)"
        ) from None
    server_type = _text(body, "server-type")
    if server_type and server_type.lower() != "cloud":
        raise _Skip(f"server type {server_type!r} is not Qlik Cloud")
    raw_server = _text(body, "server")
    if raw_server is None:
        raise _Skip("it has no server")
    try:
        server = normalize_server_url(raw_server)
    except QlikM2MError as error:
        raise _Skip(f"its server URL is not usable: {error.message}") from None

    notes: list[str] = []
    api_key = _bearer_key(body.get("headers"), notes)
    client_id = _text(body, "oauth-client-id")
    client_secret = _text(body, "oauth-client-secret")
    register_secret(api_key)
    register_secret(client_secret)
    if body.get("tls-insecure") is True or body.get("insecure") is True:
        notes.append("TLS verification was turned off in qlik-cli; qlikm2m always verifies")
    comment = _text(body, "comment")

    if client_id and client_secret:
        if api_key:
            notes.append("the API key in its headers was not imported (OAuth takes precedence)")
        auth_type: AuthType = "oauth"
        secret = client_secret
    elif api_key:
        auth_type, secret, client_id = "apikey", api_key, None
    else:
        raise _Skip(
            "it has an OAuth client id but no client secret (interactive user OAuth, not M2M)"
            if client_id
            else "it has neither an API key nor OAuth client credentials"
        )
    context = Context(
        name=name,
        server=server,
        auth_type=auth_type,
        client_id=client_id,
        comment=comment,
        secret_storage=storage,
    )
    return ImportCandidate(context=context, secret=secret, notes=tuple(notes))


def _bearer_key(headers: Any, notes: list[str]) -> str | None:
    if not headers:
        return None
    if not isinstance(headers, dict):
        raise _Skip("its 'headers' is not a map")
    key: str | None = None
    others = 0
    for header, value in headers.items():
        if str(header).lower() != "authorization":
            others += 1
            continue
        scheme, _, token = strip_secret(str(value)).partition(" ")
        if scheme.lower() != "bearer" or not strip_secret(token):
            raise _Skip("its Authorization header is not 'Bearer <API key>'")
        key = strip_secret(token)
    if others:
        notes.append(f"{others} other header(s) were not imported")
    return key
