"""What a sandbox tenant is seeded with and how it behaves; validated before anything binds."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_TOKEN_LIFETIME = 21600  # seconds: Qlik Cloud access tokens live six hours
DEFAULT_SCOPES = ("user_default", "offline_access")


class SandboxConfigError(ValueError):
    """A configuration the sandbox refuses to start with (one line, shown to the user as is)."""


@dataclass(frozen=True)
class ClientSpec:
    """One OAuth client registered on the sandbox tenant."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    max_tokens: int | None = None  # live tokens allowed at once; None = no cap
    may_impersonate: bool = True
    # Stands for the TenantAdmin role: may read the client, manage its keys and secrets.
    may_manage_clients: bool = True
    name: str = "Sandbox M2M client"


def throwaway_client_id() -> str:
    return secrets.token_hex(16)


def throwaway_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox is seeded with. Defaults are what `qlikm2m sandbox serve` uses."""

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    client_id: str = field(default_factory=throwaway_client_id)
    client_secret: str = field(default_factory=throwaway_secret)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    max_tokens_per_client: int | None = None
    extra_clients: tuple[ClientSpec, ...] = ()
    api_key: str | None = None
    tenant_name: str = "sandbox"
    users: int = 5
    spaces: int = 3
    items: int = 50
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    reload_queue_time: float = 1.0
    reload_duration: float = 5.0
    fail_apps: tuple[str, ...] = ()
    exceed_limit_apps: tuple[str, ...] = ()
    rate_limit_tier1: int | None = None
    rate_limit_tier2: int | None = None
    rate_limit_window: float = 60.0
    control_api: bool = True
    max_body_bytes: int = 1 << 20
    # What `POST /apps/{id}/export` of a seeded app produces (a generated pattern, never stored).
    export_bytes: int = 256 * 1024
    # The largest tus upload accepted (413 beyond) and how long an upload answers 423 Locked
    # after its connection dropped (Qlik documents the 423, not its length: *sandbox choice*).
    max_upload_bytes: int = 8 << 30
    upload_lock_seconds: float = 0.5
    # Wall clock in seconds since the epoch; tests inject a fake one to move time without sleeping.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        check_bind_host(self.host, allow_remote=self.allow_remote)
        if not 0 <= self.port <= 65535:
            raise SandboxConfigError(f"port {self.port} is out of range 0..65535")
        for name in ("users", "spaces", "items"):
            if getattr(self, name) < 0:
                raise SandboxConfigError(f"{name} must be 0 or more")
        if self.token_lifetime < 1:
            raise SandboxConfigError("token lifetime must be at least 1 second")
        if self.max_tokens_per_client is not None and self.max_tokens_per_client < 1:
            raise SandboxConfigError("max tokens per client must be at least 1")
        if self.reload_queue_time < 0 or self.reload_duration < 0:
            raise SandboxConfigError("reload times must be 0 or more seconds")
        for limit in (self.rate_limit_tier1, self.rate_limit_tier2):
            if limit is not None and limit < 1:
                raise SandboxConfigError("rate limits must be at least 1 request per window")
        if self.export_bytes < 0 or self.max_upload_bytes < 0 or self.upload_lock_seconds < 0:
            raise SandboxConfigError("export size, upload limit and upload lock must be 0 or more")
        if self.rate_limit_window <= 0:
            raise SandboxConfigError("the rate-limit window must be longer than 0 seconds")
        if not self.client_id or not self.client_secret:
            raise SandboxConfigError("the client id and secret must not be empty")
        if set(self.fail_apps) & set(self.exceed_limit_apps):
            raise SandboxConfigError("an app cannot both fail and exceed its limit")
        ids = [self.client_id, *(c.client_id for c in self.extra_clients)]
        if len(set(ids)) != len(ids):
            raise SandboxConfigError("client ids must be unique")

    @property
    def clients(self) -> tuple[ClientSpec, ...]:
        main = ClientSpec(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scopes=self.scopes,
            max_tokens=self.max_tokens_per_client,
        )
        return (main, *self.extra_clients)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    # A sandbox hands out tokens to anyone who knows its throwaway secret and exposes test
    # controls: it must not be reachable from other machines by accident.
    if not host:
        raise SandboxConfigError("the host to bind to must not be empty")
    if not is_loopback(host) and not allow_remote:
        raise SandboxConfigError(
            f"refusing to bind to {host!r}, which is not a loopback address; "
            "pass --allow-remote to expose the sandbox to other machines"
        )


def split_scopes(raw: str | Sequence[str]) -> tuple[str, ...]:
    words = raw.split() if isinstance(raw, str) else [w for part in raw for w in part.split()]
    return tuple(dict.fromkeys(words))
