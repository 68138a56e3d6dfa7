"""`qlikm2m sandbox serve` and `python -m qlikm2m.sandbox`: run a sandbox tenant until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from qlikm2m.sandbox.config import DEFAULT_SCOPES, SandboxConfig, SandboxConfigError, split_scopes
from qlikm2m.sandbox.server import Sandbox

SECRET_ENV = "QLIKM2M_SANDBOX_CLIENT_SECRET"  # noqa: S105 - a variable name


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Serve a local Qlik Cloud tenant (OAuth M2M, users, tenants, spaces, items, apps, "
            "reloads) for tests, demos and dry runs of CI scripts. Prints export-ready QLIK_* "
            "lines on stdout, then serves until SIGINT/SIGTERM."
        ),
        epilog="Details, control endpoints and figures: qlikm2m help sandbox",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    net.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    net.add_argument(
        "--allow-remote", action="store_true", help="allow binding to a non-loopback address"
    )
    net.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    net.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert (PEM)")
    net.add_argument(
        "--tls-ca", metavar="FILE", help="CA that signed --tls-cert; printed as QLIK_CA_BUNDLE"
    )
    net.add_argument("--access-log", action="store_true", help="log every request on stderr")
    auth = parser.add_argument_group("credentials")
    auth.add_argument("--client-id", help="the demo OAuth client id (default: a random one)")
    auth.add_argument(
        "--client-secret",
        help=f"its secret (default: ${SECRET_ENV}, else a random throwaway one)",
    )
    auth.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help=f"scope allow-list of the client, repeatable (default: {' '.join(DEFAULT_SCOPES)})",
    )
    auth.add_argument("--api-key", help="accept this string as a Bearer API key")
    auth.add_argument("--token-lifetime", type=int, default=21600, metavar="SECONDS")
    auth.add_argument("--max-tokens-per-client", type=int, metavar="N", help="live-token cap (403)")
    data = parser.add_argument_group("seeded data")
    data.add_argument("--items", type=int, default=50, metavar="N", help="items (default 50)")
    data.add_argument("--users", type=int, default=5, metavar="N", help="users (default 5)")
    data.add_argument("--spaces", type=int, default=3, metavar="N", help="spaces (default 3)")
    data.add_argument(
        "--reload-duration", type=float, default=5.0, metavar="SECONDS", help="RELOADING time"
    )
    data.add_argument(
        "--reload-queue-time", type=float, default=1.0, metavar="SECONDS", help="QUEUED time"
    )
    data.add_argument(
        "--fail-app",
        action="append",
        default=[],
        metavar="APP_ID",
        help="reloads of this app fail (added as an app if not seeded); repeatable",
    )
    data.add_argument(
        "--exceed-limit-app",
        action="append",
        default=[],
        metavar="APP_ID",
        help="reloads of this app end EXCEEDED_LIMIT (added if not seeded); repeatable",
    )
    limits = parser.add_argument_group("rate limits (off unless given)")
    limits.add_argument("--rate-limit-tier1", type=int, metavar="N", help="GETs per window")
    limits.add_argument(
        "--rate-limit-tier2", type=int, metavar="N", help="writes/tokens per window"
    )
    limits.add_argument(
        "--rate-limit-window", type=float, default=60.0, metavar="SECONDS", help="default 60"
    )
    parser.add_argument(
        "--no-control", action="store_true", help="disable the /_sandbox/ control endpoints"
    )
    return parser


def _config(args: argparse.Namespace) -> SandboxConfig:
    overrides: dict[str, object] = {}
    if args.client_id:
        overrides["client_id"] = args.client_id
    secret = args.client_secret or os.environ.get(SECRET_ENV)
    if secret:
        overrides["client_secret"] = secret
    if args.scope:
        overrides["scopes"] = split_scopes(args.scope)
    return SandboxConfig(
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        api_key=args.api_key,
        token_lifetime=args.token_lifetime,
        max_tokens_per_client=args.max_tokens_per_client,
        items=args.items,
        users=args.users,
        spaces=args.spaces,
        reload_duration=args.reload_duration,
        reload_queue_time=args.reload_queue_time,
        fail_apps=tuple(args.fail_app),
        exceed_limit_apps=tuple(args.exceed_limit_app),
        rate_limit_tier1=args.rate_limit_tier1,
        rate_limit_tier2=args.rate_limit_tier2,
        rate_limit_window=args.rate_limit_window,
        control_api=not args.no_control,
        **overrides,  # type: ignore[arg-type]
    )


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SandboxConfigError("--tls-cert and --tls-key go together")
    if args.tls_ca and not args.tls_cert:
        raise SandboxConfigError("--tls-ca needs --tls-cert and --tls-key")
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise SandboxConfigError(f"cannot load the TLS certificate or key: {error}") from None
    if args.tls_ca and not os.path.isfile(args.tls_ca):
        raise SandboxConfigError(f"--tls-ca {args.tls_ca!r} is not a readable file")
    return context


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m qlikm2m.sandbox") -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        config = _config(args)
        context = _ssl_context(args)
    except SandboxConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    ca_bundle = os.path.abspath(args.tls_ca) if args.tls_ca else None
    sandbox = Sandbox(config, ssl_context=context, ca_bundle=ca_bundle, access_log=args.access_log)
    try:
        sandbox.start()
    except OSError as error:
        sys.stderr.write(f"error: cannot listen on {config.host}:{config.port}: {error}\n")
        return 2
    stop = threading.Event()
    previous = _install_signal_handlers(stop)
    try:
        # First and flushed, so that a script can read them (or `eval` them) right away. The
        # secret is printed on purpose: it is a throwaway credential of a local sandbox.
        lines = [
            f"QLIK_SERVER={sandbox.url}",
            f"QLIK_CLIENT_ID={sandbox.client_id}",
            f"QLIK_CLIENT_SECRET={sandbox.client_secret}",
        ]
        if ca_bundle:
            lines.append(f"QLIK_CA_BUNDLE={ca_bundle}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        sys.stderr.write(
            f"Qlik Cloud sandbox tenant at {sandbox.url}: {config.users} users, "
            f"{config.spaces} spaces, {config.items} items"
            + (", rate limits on" if config.rate_limit_tier1 or config.rate_limit_tier2 else "")
            + ". Stop with Ctrl-C.\n"
        )
        sys.stderr.flush()
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
        _restore_signal_handlers(previous)
    sys.stderr.write("sandbox stopped\n")
    return 0


_Handler = signal.Handlers | int | None | object


def _install_signal_handlers(stop: threading.Event) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, _Handler] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, on_signal)
    return previous


def _restore_signal_handlers(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]
