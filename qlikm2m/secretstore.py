"""Where a context's secret lives: the OS keyring by default, a 0600 file only when asked for.

Two layers, as in poetry: ``KeyringAdapter`` is the only code that calls ``keyring`` (imported
lazily: it costs ~100 ms), runs every call in a daemon thread with a timeout because Secret Service
calls can hang, and turns keyring's exceptions into one ``KeyringError`` naming the case and the
remedies. The functions below it decide, per context, which store holds the secret.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from qlikm2m import fileio, paths
from qlikm2m.contexts import Context
from qlikm2m.errors import ConfigError, KeyringError, UsageError
from qlikm2m.redaction import redact, register_secret
from qlikm2m.runtime import RunLocalDict

SERVICE = "qlikm2m"
TIMEOUT_ENV = "QLIKM2M_KEYRING_TIMEOUT"
BACKEND_ENV = "PYTHON_KEYRING_BACKEND"
# A person at a terminal may be typing the keyring's unlock password; a script must not hang.
INTERACTIVE_TIMEOUT = 60.0
NON_INTERACTIVE_TIMEOUT = 8.0
SECRETS_DIRNAME = "secrets"
_PROBE_USER = "qlikm2m-availability-probe"

KeyringCase = Literal["no-backend", "locked", "access-denied", "timed-out", "failed"]

REMEDIES = (
    "Unlock the keyring (on Linux start or unlock gnome-keyring / KWallet in your session), "
    "or skip stored secrets and use the QLIK_* environment variables (QLIK_SERVER, "
    "QLIK_CLIENT_ID, QLIK_CLIENT_SECRET or QLIK_API_KEY), or opt into a 0600 secret file with "
    "--secret-storage file. See `qlikm2m help contexts-and-security`."
)

_CASE_SENTENCES: dict[KeyringCase, str] = {
    "no-backend": "No usable OS keyring is available",
    "locked": "The OS keyring is locked",
    "access-denied": "The OS keyring refused access",
    "timed-out": "The OS keyring did not answer",
    "failed": "The OS keyring failed",
}

T = TypeVar("T")


def keyring_timeout(env: Mapping[str, str], *, interactive: bool) -> float:
    """Seconds to wait for one keyring call: $QLIKM2M_KEYRING_TIMEOUT, else by terminal."""
    raw = env.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 < value <= 3600:
            raise UsageError(
                f"${TIMEOUT_ENV} is {raw!r}; expected a number of seconds between 0 and 3600."
            )
        return value
    return INTERACTIVE_TIMEOUT if interactive else NON_INTERACTIVE_TIMEOUT


def _keyring_error(case: KeyringCase, detail: str, backend: str | None) -> KeyringError:
    sentence = _CASE_SENTENCES[case]
    detail = redact(detail).strip().rstrip(".").strip()
    # Backends end their own sentences too ("Failed to unlock the collection!"): no "!." here.
    end = "" if detail.endswith(("!", "?")) else "."
    message = f"{sentence}: {detail}{end}" if detail else f"{sentence}."
    details: dict[str, Any] = {"keyringCase": case}
    if backend:
        details["keyringBackend"] = backend
    return KeyringError(message, hint=REMEDIES, details=details)


def _qualified_name(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_usable(backend: object) -> bool:
    """The fail, null and chainer backends store nothing; plaintext ones defeat the point."""
    name = _qualified_name(backend).lower()
    if name.startswith(("keyring.backends.fail.", "keyring.backends.null.")):
        return False
    if name.startswith("keyring.backends.chainer."):
        return False
    return "plaintext" not in name and not name.startswith("keyrings.alt.file.")


# Loading a backend can cost a D-Bus round trip: once per run and backend is enough. Per run, not
# per process: a backend object loaded for one run (a test's in-memory double, a connection)
# must not serve the next.
_loaded_backends: RunLocalDict[str | None, Any] = RunLocalDict("secretstore.loaded_backends")


class KeyringAdapter:
    """The one place that calls ``keyring``: lazy, bounded in time, with errors of our own."""

    def __init__(self, env: Mapping[str, str], *, interactive: bool) -> None:
        self._backend_name = env.get(BACKEND_ENV) or None
        self._timeout = keyring_timeout(env, interactive=interactive)
        # Taken here: the worker threads below do not share the run's context.
        self._loaded = _loaded_backends.current()
        self._backend: Any = self._loaded.get(self._backend_name)

    @property
    def timeout(self) -> float:
        return self._timeout

    def check_available(self) -> str:
        """Prove the keyring works with one probe call; return the backend's name."""
        self._call("check", lambda backend: backend.get_password(SERVICE, _PROBE_USER))
        return _qualified_name(self._backend)

    def get(self, user: str) -> str | None:
        value = self._call("read", lambda backend: backend.get_password(SERVICE, user))
        if value is not None and not isinstance(value, str):
            raise _keyring_error("failed", "the backend returned a non-text secret", None)
        register_secret(value)
        return value

    def set(self, user: str, secret: str) -> None:
        register_secret(secret)
        self._call("write", lambda backend: backend.set_password(SERVICE, user, secret))

    def delete(self, user: str) -> bool:
        """Delete the entry; False when there was none."""

        def delete(backend: Any) -> bool:
            from keyring.errors import PasswordDeleteError

            if backend.get_password(SERVICE, user) is None:
                return False
            try:
                backend.delete_password(SERVICE, user)
            except PasswordDeleteError:
                return False
            return True

        return bool(self._call("delete", delete))

    def _load_backend(self) -> Any:
        import keyring
        import keyring.core

        if self._backend_name:
            try:
                backend = keyring.core.load_keyring(self._backend_name)
            except (ImportError, AttributeError) as error:
                raise _keyring_error(
                    "no-backend",
                    f"${BACKEND_ENV} names {self._backend_name!r}, which cannot be loaded "
                    f"({type(error).__name__})",
                    self._backend_name,
                ) from None
            except Exception as error:
                # keyring raises RuntimeError when the backend is not viable here (no D-Bus...).
                raise _keyring_error("no-backend", str(error), self._backend_name) from None
        else:
            backend = keyring.get_keyring()
        if _qualified_name(backend).startswith("keyring.backends.chainer."):
            usable = [
                candidate for candidate in getattr(backend, "backends", ()) if _is_usable(candidate)
            ]
            if not usable:
                raise _keyring_error(
                    "no-backend", "none of the installed keyring backends can be used", None
                )
            backend = usable[0]
        if not _is_usable(backend):
            name = _qualified_name(backend)
            raise _keyring_error(
                "no-backend",
                f"the selected backend {name} does not store secrets safely (or at all)",
                name,
            )
        return backend

    def _call(self, what: str, operation: Callable[[Any], T]) -> T:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                if self._backend is None:
                    self._backend = self._load_backend()
                    self._loaded[self._backend_name] = self._backend
                outcome["value"] = operation(self._backend)
            except BaseException as error:
                outcome["error"] = error

        # A daemon thread: if the backend hangs, the process can still report and exit.
        worker = threading.Thread(target=run, name=f"qlikm2m-keyring-{what}", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if worker.is_alive():
            raise _keyring_error(
                "timed-out",
                f"no answer to the {what} call within {self._timeout:g}s (set "
                f"${TIMEOUT_ENV} to wait longer)",
                self._backend_name,
            )
        if "error" in outcome:
            raise self._translate(outcome["error"]) from None
        result: T = outcome["value"]
        return result

    def _translate(self, error: BaseException) -> BaseException:
        if isinstance(error, KeyringError | ConfigError | UsageError):
            return error
        if isinstance(error, KeyboardInterrupt | SystemExit):
            return error
        backend = _qualified_name(self._backend) if self._backend is not None else None
        backend = backend or self._backend_name
        from keyring import errors as keyring_errors

        text = str(error).strip() or type(error).__name__
        lowered = text.lower()
        if isinstance(error, keyring_errors.NoKeyringError):
            return _keyring_error("no-backend", text, backend)
        # "Prompt dismissed": an unlock prompt nobody answered or no display could show.
        if isinstance(error, keyring_errors.KeyringLocked) or "locked" in lowered:
            return _keyring_error("locked", text, backend)
        if "dismissed" in lowered:
            return _keyring_error("locked", text, backend)
        if any(word in lowered for word in ("denied", "not allowed", "not permitted", "-25293")):
            return _keyring_error("access-denied", text, backend)
        if isinstance(error, keyring_errors.InitError) or "not available" in lowered:
            return _keyring_error("no-backend", text, backend)
        if "cancel" in lowered or "-128" in lowered:
            return _keyring_error("access-denied", text, backend)
        return _keyring_error("failed", f"{type(error).__name__}: {text}", backend)


# ---- the policy: which store holds a context's secret ------------------------------------------


@dataclass(frozen=True)
class SecretLocation:
    storage: str
    description: str


def secret_file_path(context_name: str, env: Mapping[str, str]) -> Path:
    # Quoted so that names like "host:443" are safe file names on every platform.
    return paths.config_dir(env) / SECRETS_DIRNAME / quote(context_name, safe="._-@+")


def describe_location(context: Context, env: Mapping[str, str]) -> SecretLocation:
    if context.secret_in_file:
        return SecretLocation("file", f"file {secret_file_path(context.name, env)} (0600)")
    return SecretLocation("keyring", f"OS keyring, service {SERVICE!r}, user {context.name!r}")


def check_storage(context: Context, env: Mapping[str, str], *, interactive: bool) -> SecretLocation:
    """Fail early (before prompting or validating) when the context's store cannot be used."""
    if not context.secret_in_file:
        KeyringAdapter(env, interactive=interactive).check_available()
    return describe_location(context, env)


def store_secret(
    context: Context, secret: str, env: Mapping[str, str], *, interactive: bool
) -> SecretLocation:
    """Save the secret of ``context`` in the store the context names."""
    if not secret:
        raise UsageError(f"The secret for context {context.name!r} is empty.")
    register_secret(secret)
    if context.secret_in_file:
        # atomic_write creates the temporary file 0600 before a byte of the secret is written.
        fileio.atomic_write(secret_file_path(context.name, env), secret.encode("utf-8"), mode=0o600)
    else:
        KeyringAdapter(env, interactive=interactive).set(context.name, secret)
    return describe_location(context, env)


def read_secret(
    context: Context,
    env: Mapping[str, str],
    *,
    interactive: bool,
    adapter: KeyringAdapter | None = None,
) -> str:
    """The client secret (oauth) or API key (apikey) of a stored context.

    ``adapter`` reuses a caller's keyring adapter (the store's, one backend load per run).
    """
    kind, flag = _kind_and_flag(context)
    restore = f"Store it again with `qlikm2m context update {context.name} {flag}`."
    if context.secret_in_file:
        secret = _read_secret_file(secret_file_path(context.name, env), kind, context, restore)
    else:
        found = (adapter or KeyringAdapter(env, interactive=interactive)).get(context.name)
        if not found:
            raise ConfigError(
                f"The OS keyring has no {kind} for context {context.name!r} "
                f"(service {SERVICE!r}, user {context.name!r}).",
                hint=restore,
            )
        secret = found
    register_secret(secret)
    if context.holds_private_key:
        from qlikm2m.assertion import register_key_text

        # Each line of a key is a secret too: a trace may show one line of it.
        register_key_text(secret)
    return secret


def _kind_and_flag(context: Context) -> tuple[str, str]:
    """What the context stores, and the flag that stores it again."""
    if context.holds_private_key:
        return "private key", "--private-key-file FILE"
    if context.auth_type == "oauth":
        return "client secret", "--client-secret-stdin"
    return "API key", "--api-key-stdin"


def _read_secret_file(path: Path, kind: str, context: Context, restore: str) -> str:
    from qlikm2m.settings import strip_secret

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"The {kind} file of context {context.name!r} is missing: {path}.", hint=restore
        ) from None
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror}.") from None
    # Like ssh with a private key: a file others can read is refused, not silently used.
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}).",
            hint=f"Run `chmod 600 {path}`, then rotate the {kind}: it may have been read.",
        )
    try:
        # utf-8-sig and strip_secret: a byte-order mark an editor added is not part of it.
        secret = strip_secret(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read {path}: {type(error).__name__}.") from None
    if not secret:
        raise ConfigError(f"The {kind} file {path} is empty.", hint=restore)
    return secret


def delete_secret(context: Context, env: Mapping[str, str], *, interactive: bool) -> bool:
    """Remove the stored secret of ``context``; False when there was none."""
    if context.secret_in_file:
        path = secret_file_path(context.name, env)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
    return KeyringAdapter(env, interactive=interactive).delete(context.name)


def copy_secret(
    source: Context, target: Context, env: Mapping[str, str], *, interactive: bool
) -> SecretLocation:
    """Store the secret of ``source`` for ``target`` (a new name or store); ``source`` keeps it."""
    secret = read_secret(source, env, interactive=interactive)
    return store_secret(target, secret, env, interactive=interactive)
