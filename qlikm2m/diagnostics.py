"""`qlikm2m doctor`: every check a person needs when something is wrong, each with its fix.

Checks run in dependency order (settings before the network, the network before the token) and a
failed prerequisite turns the checks that need it into "skip", so the first "fail" is the cause.
Nothing here prints: the command renders the list.
"""

from __future__ import annotations

import email.utils
import socket
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from qlikm2m import paths
from qlikm2m.errors import ExitCode, QlikM2MError
from qlikm2m.redaction import redact

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import ResolvedSettings

Status = Literal["ok", "warn", "fail", "skip"]

# Beyond this, expiry computed from the server's `expires_at` and log timestamps disagree visibly.
CLOCK_SKEW_WARN = 30.0
CLOCK_SKEW_FAIL = 300.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None
    elapsed_ms: float | None = None
    exit_code: ExitCode = ExitCode.UNEXPECTED

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"check": self.name, "status": self.status, "detail": self.detail}
        if self.fix:
            body["fix"] = self.fix
        if self.elapsed_ms is not None:
            body["elapsedMs"] = round(self.elapsed_ms, 1)
        return body


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(check.status == "fail" for check in self.checks)

    @property
    def exit_code(self) -> ExitCode:
        """The code of the first failure: the cause, since later checks depend on earlier ones."""
        for check in self.checks:
            if check.status == "fail":
                return check.exit_code
        return ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.as_dict() for check in self.checks]}


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, (time.perf_counter() - started) * 1000


def _failure(name: str, error: QlikM2MError, elapsed_ms: float | None = None) -> Check:
    return Check(
        name,
        "fail",
        redact(error.message),
        redact(error.hint) if error.hint else None,
        elapsed_ms,
        error.exit_code,
    )


# ---- local checks ---------------------------------------------------------------------------------


def check_keyring(env: Mapping[str, str], *, interactive: bool, needed: bool) -> Check:
    """The keyring backend, proven with one probe call (which also shows whether it is locked)."""
    from qlikm2m.secretstore import KeyringAdapter

    adapter = KeyringAdapter(env, interactive=interactive)
    try:
        backend, elapsed = _timed(adapter.check_available)
    except QlikM2MError as error:
        if needed:
            return _failure("keyring", error)
        return Check(
            "keyring",
            "warn",
            f"{redact(error.message)} (not needed: the selected credentials do not use it)",
            "Only needed for stored contexts; see `qlikm2m help contexts-and-security`.",
        )
    return Check("keyring", "ok", f"{backend}, unlocked and answering", elapsed_ms=elapsed)


def _loose_files(files: Iterator[Path]) -> list[str]:
    return [
        f"{path} is {oct(stat.S_IMODE(path.stat().st_mode))}, expected 0o600"
        for path in files
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    ]


def check_permissions(name: str, folder: Path) -> Check:
    """Files that may hold tokens or context details must be private to the user.

    A readable file is a failure (its token or settings are exposed). A folder that others may
    list is only a warning: every file qlikm2m writes in it is 0600, and CI jobs often create the
    folder themselves (e.g. under $RUNNER_TEMP) with the usual 0755.
    """
    if not folder.exists():
        return Check(name, "ok", f"{folder} (not created yet)")
    fix = f"chmod -R go-rwx {folder}"
    files = (p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    problems = _loose_files(files)
    if problems:
        return Check(
            name,
            "fail",
            "; ".join(problems[:3])
            + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""),
            fix,
            exit_code=ExitCode.CONFIG,
        )
    folder_mode = stat.S_IMODE(folder.stat().st_mode)
    if folder_mode & 0o077:
        return Check(
            name,
            "warn",
            f"{folder} is {oct(folder_mode)}: others can list it (its files are 0600)",
            fix,
        )
    return Check(name, "ok", f"{folder} is private (0700, files 0600)")


def check_token_cache(env: Mapping[str, str]) -> Check:
    """The cache folder as the token step will use it: private, and writable at all.

    A folder that cannot be written (read-only, under a HOME that does not exist) is a warning:
    commands work, minting a token on every run, as the token step then reports.
    """
    from qlikm2m.tokens import probe_token_cache

    problem = probe_token_cache(env)
    if problem is not None:
        return Check(
            "cache dir",
            "warn",
            f"tokens cannot be cached ({problem}): every run mints a new token",
            "Point QLIKM2M_CACHE_DIR at a writable folder (or use --no-token-cache to mean it).",
        )
    return check_permissions("cache dir", paths.cache_dir(env))


def check_proxies(env: Mapping[str, str], server: str | None) -> Check:
    """The proxy variables set, and whether the tenant goes through a proxy (``proxy_for``)."""
    from qlikm2m.http import without_userinfo

    seen = {}
    for name in _PROXY_VARIABLES:
        value = env.get(name.lower()) or env.get(name)
        if value:
            seen[name] = value if name == "NO_PROXY" else without_userinfo(value)
    if not seen:
        return Check("proxy", "ok", "no proxy variables set: direct connections")
    detail = ", ".join(f"{key}={value}" for key, value in seen.items())
    if server:
        from qlikm2m.http import proxy_for

        host = urlsplit(server).hostname or ""
        proxy = proxy_for(server, env)
        if proxy:
            detail += f"; the tenant {host} is reached through the proxy {without_userinfo(proxy)}"
        elif any(name != "NO_PROXY" for name in seen):
            detail += f"; the tenant {host} is bypassed by NO_PROXY (direct connection)"
        else:
            detail += f"; the tenant {host} is reached directly"
    return Check("proxy", "ok", detail)


# ---- network checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    tls: bool


def _target(server: str) -> _Target:
    parts = urlsplit(server)
    tls = parts.scheme == "https"
    return _Target(parts.hostname or "", parts.port or (443 if tls else 80), tls)


def check_dns(target: _Target, timeout: float) -> tuple[Check, list[Any]]:
    try:
        infos, elapsed = _timed(
            lambda: socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        )
    except OSError as error:
        return (
            Check(
                "dns",
                "fail",
                f"{target.host} does not resolve: {error}",
                "Check the tenant URL and your DNS or VPN.",
                exit_code=ExitCode.NETWORK,
            ),
            [],
        )
    addresses = sorted({info[4][0] for info in infos})
    return Check("dns", "ok", f"{target.host} → {', '.join(addresses)}", elapsed_ms=elapsed), infos


def check_tcp(target: _Target, timeout: float) -> Check:
    """A direct TCP connection to the tenant (only run when no proxy carries the traffic)."""
    try:
        sock, elapsed = _timed(
            lambda: socket.create_connection((target.host, target.port), timeout=timeout)
        )
    except OSError as error:
        return Check(
            "tcp",
            "fail",
            f"cannot connect to {target.host}:{target.port}: {error}",
            "Check the URL, the port and any firewall between you and the tenant.",
            exit_code=ExitCode.NETWORK,
        )
    sock.close()
    return Check("tcp", "ok", f"connected to {target.host}:{target.port}", elapsed_ms=elapsed)


def check_tls(target: _Target, timeout: float, ca_bundle: str | None) -> Check:
    if not target.tls:
        return Check("tls", "skip", "plain HTTP (allowed for loopback only)")
    from qlikm2m.http import add_environment_ca_bundle, environment_ca_bundle, tls_context

    try:
        context = tls_context(ca_bundle)
        # The bundle requests takes from the environment, checked as every request checks it.
        from_environment = environment_ca_bundle()
        if from_environment is not None:
            add_environment_ca_bundle(context, from_environment[1])
    except QlikM2MError as error:
        return _failure("tls", error)
    import ssl

    def handshake() -> dict[str, Any]:
        with (
            socket.create_connection((target.host, target.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=target.host) as tls,
        ):
            cert = tls.getpeercert() or {}
            return {"version": tls.version(), "notAfter": cert.get("notAfter")}

    try:
        info, elapsed = _timed(handshake)
    except ssl.SSLCertVerificationError as error:
        return Check(
            "tls",
            "fail",
            f"the certificate of {target.host} is not trusted: {error.verify_message}",
            "If the tenant or a TLS-inspecting proxy uses a private CA, pass --ca-bundle FILE.pem "
            "or set QLIK_CA_BUNDLE.",
            exit_code=ExitCode.NETWORK,
        )
    except (OSError, ssl.SSLError) as error:
        return Check(
            "tls", "fail", f"TLS handshake failed: {error}", None, exit_code=ExitCode.NETWORK
        )
    detail = f"{info['version']}, certificate valid"
    if info.get("notAfter"):
        detail += f" until {info['notAfter']}"
    return Check("tls", "ok", detail, elapsed_ms=elapsed)


def check_clock(settings: ResolvedSettings, runtime: Runtime) -> Check:
    """Compare our clock with the server's Date header (an unauthenticated metadata request)."""
    from qlikm2m.http import Transport

    options = settings.http_options(max_retry_wait=0.0, max_retries=0)
    transport = Transport(
        options, trace=runtime.stderr if runtime.verbose else None, env=runtime.env
    )
    url = settings.server_url + "/.well-known/oauth-authorization-server"
    try:
        response, elapsed = _timed(lambda: transport.request("GET", url))
        response.close()
    except QlikM2MError as error:
        return _failure("clock", error)
    finally:
        transport.close()
    header = response.headers.get("date")
    if not header:
        return Check("clock", "warn", "the server sent no Date header", elapsed_ms=elapsed)
    server_time = email.utils.parsedate_to_datetime(header).timestamp()
    skew = time.time() - server_time
    status: Status = "ok"
    fix = None
    if abs(skew) >= CLOCK_SKEW_FAIL:
        status, fix = "fail", "Synchronise the clock (e.g. enable NTP: timedatectl set-ntp true)."
    elif abs(skew) >= CLOCK_SKEW_WARN:
        status, fix = "warn", "Synchronise the clock (NTP)."
    direction = "ahead of" if skew > 0 else "behind"
    return Check(
        "clock",
        status,
        f"local clock {abs(skew):.1f}s {direction} the server",
        fix,
        elapsed,
        ExitCode.CONFIG,
    )


def check_token_and_me(settings: ResolvedSettings, runtime: Runtime) -> list[Check]:
    from qlikm2m.client import QlikClient

    checks: list[Check] = []
    if settings.stored_context is not None:
        # Judge the stored credentials themselves: the secret must be in its store, and a cached
        # token counts only when its fingerprint proves this secret minted it.
        try:
            settings = settings.with_secret_read()
        except QlikM2MError as error:
            return [_failure("token", error)]
    signed_with = ""
    if settings.uses_private_key:
        # The key must load and fit Qlik's rules even when a cached token spares a mint.
        try:
            key = settings.signing_key()
        except QlikM2MError as error:
            return [_failure("token", error)]
        signed_with = f" (private key {key.alg}, kid {key.kid})"
    with QlikClient(settings, runtime) as client:
        try:
            token, elapsed = _timed(client.tokens.token)
        except QlikM2MError as error:
            return [_failure("token", error)]
        origin = {"cache": "from the token cache", "minted": "minted now"}.get(
            token.origin, f"from {token.origin}"
        )
        remaining = token.remaining(time.time())
        detail = f"token {origin}{signed_with}"
        if remaining is not None:
            detail += f", valid for {remaining / 60:.0f} more minutes"
        if client.tokens.cache_problem is not None:
            detail += f" (not cached: {client.tokens.cache_problem})"
        checks.append(Check("token", "ok", detail, elapsed_ms=elapsed))
        try:
            user, elapsed = _timed(lambda: client.get_json("/api/v1/users/me"))
        except QlikM2MError as error:
            checks.append(_failure("users/me", error))
            return checks
    fields = user if isinstance(user, dict) else {}
    who = fields.get("name") or fields.get("subject") or fields.get("id")
    # The subject (qlikbot\<client id> for an M2M client) tells which client it really was.
    subject = fields.get("subject")
    if subject and subject != who:
        who = f"{who} ({subject})"
    checks.append(Check("users/me", "ok", f"authenticated as {who}", elapsed_ms=elapsed))
    return checks


# ---- the whole run --------------------------------------------------------------------------------


def run_checks(runtime: Runtime, flags: Mapping[str, Any]) -> Report:
    from qlikm2m.settings import resolve_settings

    report = Report()
    env = runtime.env
    settings: ResolvedSettings | None = None
    try:
        settings = resolve_settings(runtime, **flags)
    except QlikM2MError as error:
        settings_check = _failure("settings", error)
    else:
        rows = {row["name"]: row for row in settings.describe()}
        shown = ", ".join(
            f"{name}={rows[name]['value'] or '-'} ({rows[name]['source']})"
            for name in ("context", "server", "auth_type", "client_id")
            if name in rows
        )
        settings_check = Check("settings", "ok", shown)

    needs_keyring = settings is not None and settings.secret_source.endswith("(keyring)")
    report.checks.append(check_keyring(env, interactive=runtime.can_prompt, needed=needs_keyring))
    report.checks.append(check_permissions("config dir", paths.config_dir(env)))
    caches_tokens = settings is not None and settings.kind == "oauth" and settings.use_token_cache
    report.checks.append(
        check_token_cache(env)
        if caches_tokens
        else check_permissions("cache dir", paths.cache_dir(env))
    )
    report.checks.append(settings_check)
    report.checks.append(check_proxies(env, settings.server_url if settings else None))

    later = ("dns", "tcp", "tls", "clock", "token", "users/me")
    if settings is None:
        report.checks += [Check(name, "skip", "needs valid settings") for name in later]
        return report
    target = _target(settings.server_url)
    timeout = settings.seconds("connect_timeout")
    from qlikm2m.http import proxy_for, without_userinfo

    proxy = proxy_for(settings.server_url, env)
    if proxy:
        # The tenant's name, connection and TLS are the proxy's business: checking them
        # directly would test a path no request takes. The clock and token checks below go
        # through the proxy as every command does.
        shown = without_userinfo(proxy)
        report.checks += [
            Check(name, "skip", f"through the proxy {shown}") for name in ("dns", "tcp")
        ]
        report.checks.append(
            Check("tls", "skip", f"through the proxy {shown} (checked by the next requests)")
        )
        report.checks.append(check_clock(settings, runtime))
        report.checks += check_token_and_me(settings, runtime)
        return report
    dns, _ = check_dns(target, timeout)
    report.checks.append(dns)
    if dns.status == "fail":
        report.checks += [Check(name, "skip", "needs DNS") for name in later[1:]]
        return report
    tcp = check_tcp(target, timeout)
    report.checks.append(tcp)
    if tcp.status == "fail":
        report.checks += [Check(name, "skip", "needs a connection") for name in later[2:]]
        return report
    tls = check_tls(target, timeout, settings.ca_bundle.value)
    report.checks.append(tls)
    if tls.status == "fail":
        report.checks += [Check(name, "skip", "needs TLS") for name in later[3:]]
        return report
    report.checks.append(check_clock(settings, runtime))
    report.checks += check_token_and_me(settings, runtime)
    return report
