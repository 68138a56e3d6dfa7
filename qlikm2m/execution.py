"""Run another program with a fresh access token in its environment (``qlikm2m exec``).

The core of ``exec``, free of Typer: which token is fresh enough for a child's run, the tenant id
(looked up once per server and credentials, then cached), the child's environment (the access
token in, every other secret out), and starting the child with its exit code passed back.

On POSIX the child *replaces* qlikm2m (``os.execvpe``): nothing must happen after it ends, so the
child gets the terminal, the signals and the exit status first hand, exactly as if the shell had
started it (a child killed by a signal is reported by the shell as 128 + the signal number).
Elsewhere (Windows) it runs as a subprocess; SIGINT, SIGTERM and SIGHUP sent to qlikm2m are
forwarded to it and its exit code is returned (128 + N when a signal ended it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from qlikm2m.errors import ApiError, CommandNotExecutableError, CommandNotFoundError

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.tokens import Token

# A child gets a token with at least 30 minutes of life left (the CLI's own margin is 5 minutes):
# a job started under `exec` should not have its token expire halfway. Qlik's tokens live 6 hours,
# so this renews a cached token at most once per 5.5 hours.
MIN_LIFETIME = 1800.0
ENV_SERVER = "QLIK_SERVER"
ENV_ACCESS_TOKEN = "QLIK_ACCESS_TOKEN"  # noqa: S105 - a variable name
ENV_TENANT_ID = "QLIK_TENANT_ID"
ENV_CA_BUNDLE = "QLIK_CA_BUNDLE"
# Long-lived credentials stay with qlikm2m: the child needs only the short-lived access token.
WITHHELD = ("QLIK_CLIENT_SECRET", "QLIK_API_KEY")
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_TENANT_DIR = "tenants"
_MAX_TENANT_FILE = 4096


@dataclass(frozen=True)
class Handoff:
    """What a child receives: the tenant URL, a bearer token and the tenant id."""

    server: str
    token: Token = field(repr=False)
    tenant_id: str | None
    ca_bundle: str | None = None

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_TENANT_ID set (and QLIK_CA_BUNDLE
        when the settings name one), and QLIK_CLIENT_SECRET and QLIK_API_KEY removed."""
        env = {k: v for k, v in base.items() if k not in WITHHELD}
        env[ENV_SERVER] = self.server
        env[ENV_ACCESS_TOKEN] = self.token.value
        env.pop(ENV_TENANT_ID, None)  # never an inherited id of another tenant
        if self.tenant_id:
            env[ENV_TENANT_ID] = self.tenant_id
        if self.ca_bundle:
            env[ENV_CA_BUNDLE] = self.ca_bundle
        return env


def fresh_token(client: QlikClient, min_lifetime: float = MIN_LIFETIME) -> Token:
    """A token with at least ``min_lifetime`` seconds left, renewing a cached one that has less.

    A token minted just now is used whatever its lifetime (the tenant gives no longer one); an API
    key or a given token has no known expiry and is used as it is. Raises what minting raises.
    """
    import time

    token = client.tokens.token()
    remaining = token.remaining(time.time())
    if token.origin == "cache" and remaining is not None and remaining < min_lifetime:
        # The cached token is dropped and a new one minted under the cache lock, exactly as after
        # a 401: the CLI's later commands then share the renewed token.
        renewed = client.tokens.after_unauthorized(token)
        if renewed is not None:
            return renewed
    return token


def _tenant_cache_path(client: QlikClient) -> Path:
    from qlikm2m.paths import cache_dir

    settings = client.settings
    key = "\0".join((settings.server_url, settings.kind, settings.client_id.value or ""))
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return cache_dir(client.runtime.env) / _TENANT_DIR / f"{digest}.json"


def _read_tenant_id(path: Path, server: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(_MAX_TENANT_FILE))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != 1 or data.get("server") != server:
        return None
    tenant_id = data.get("tenantId")
    return tenant_id if isinstance(tenant_id, str) and tenant_id else None


def tenant_id(client: QlikClient) -> str:
    """The tenant's id: GET /api/v1/tenants/me (302 to /tenants/{id}; tenants.yaml getMyTenant)
    the first time for these server and credentials, then from a small cache file (not a secret).

    Raises ApiError when the tenant answers without an id, and what the request raises.
    """
    path = _tenant_cache_path(client)
    server = client.settings.server_url
    cached = _read_tenant_id(path, server)
    if cached is not None:
        return cached
    tenant = client.get_json("/api/v1/tenants/me")
    found = tenant.get("id") if isinstance(tenant, dict) else None
    if not isinstance(found, str) or not found:
        raise ApiError("GET /api/v1/tenants/me answered without a tenant id.")
    from qlikm2m.fileio import atomic_write

    try:
        document = {"version": 1, "server": server, "tenantId": found}
        atomic_write(path, json.dumps(document).encode(), mode=0o600)
    except OSError:
        pass  # a cache that cannot be written costs one request next time, nothing more
    return found


def handoff(
    client: QlikClient,
    min_lifetime: float = MIN_LIFETIME,
    *,
    warn: Callable[[str], None] | None = None,
) -> Handoff:
    """Everything the child's environment needs, from one client (token first, then tenant id).

    A tenant that refuses ``tenants/me`` (ApiError: a 403 for a client without that right) costs
    only QLIK_TENANT_ID, with a warning through ``warn``; credential and network errors raise.
    """
    token = fresh_token(client, min_lifetime)
    try:
        found: str | None = tenant_id(client)
    except ApiError as error:
        found = None
        if warn is not None:
            warn(f"warning: {ENV_TENANT_ID} is not set: {error.message}")
    return Handoff(
        server=client.settings.server_url,
        token=token,
        tenant_id=found,
        ca_bundle=client.settings.ca_bundle.value,
    )


def _not_started(command: str, error: OSError) -> Exception:
    if isinstance(error, FileNotFoundError):
        return CommandNotFoundError(
            f"{command}: command not found.", hint="Check the name and $PATH."
        )
    return CommandNotExecutableError(
        f"{command}: cannot run it: {error.strerror or error}.",
        hint="Check that it is an executable file (chmod +x) and not a folder.",
    )


def replace_process(argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Become ``argv`` (POSIX ``execvpe``): same pid, terminal, signals; its exit status is ours.

    Raises CommandNotFoundError (127) or CommandNotExecutableError (126) when it cannot start.
    """
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE and SIGXFSZ for itself; an ignored signal stays ignored across exec,
    # and `child | head` must end the child the usual way.
    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], list(argv), dict(env))  # noqa: S606 - running it is the point
    except OSError as error:
        raise _not_started(argv[0], error) from None


def run_child(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``argv`` as a subprocess with inherited stdin/stdout/stderr, forwarding SIGINT, SIGTERM
    and SIGHUP to it; its exit code, or 128 + N when signal N ended it.

    Raises CommandNotFoundError (127) or CommandNotExecutableError (126) when it cannot start.
    """
    import signal
    import subprocess
    import threading

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        child = subprocess.Popen(list(argv), env=dict(env))
    except OSError as error:
        raise _not_started(argv[0], error) from None

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in FORWARDED_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, forward)
    try:
        code = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - code if code < 0 else code


def start(argv: Sequence[str], env: Mapping[str, str], *, replace: bool | None = None) -> int:
    """Run ``argv`` with ``env``: replace this process on POSIX (never returns), else a forwarded
    subprocess whose exit code is returned. ``replace`` overrides the choice (tests)."""
    if replace is None:
        replace = os.name == "posix"
    if replace:
        replace_process(argv, env)
    return run_child(argv, env)
