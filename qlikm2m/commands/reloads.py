"""`qlikm2m reloads`: an existing reload by id: get it, wait for it, cancel it, read its log.

For a job resumed after a timeout (exit 9) or a CI cancel: the reload id is in the record that
`reload` printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from qlikm2m.commands.reload import EPILOG
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

ReloadArg = Annotated[str, typer.Argument(metavar="RELOAD_ID", help="The reload's id.")]
ReloadsArg = Annotated[
    list[str],
    typer.Argument(metavar="RELOAD_ID...", help="The reloads' ids, one or more."),
]


def _checked(reload_id: str) -> str:
    from qlikm2m.errors import UsageError

    if not reload_id.strip():
        raise UsageError("The reload id is empty.")
    return reload_id.strip()


@dataclass(frozen=True, kw_only=True)
class ReloadGetOptions(TenantRun):
    reload_id: str


def run_get(options: ReloadGetOptions) -> None:
    """Print a reload record (GET /api/v1/reloads/{reloadId}).

    ``options`` is the command line of ``get``, parsed; nothing here knows Typer.
    """
    from qlikm2m.output import Output
    from qlikm2m.reloads import ClientReloadApi

    tenant = options.tenant
    reload_id = options.reload_id
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        output.emit(dict(ClientReloadApi(client).get(_checked(reload_id))))


@tenant_command
def get(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
    """Print a reload record (GET /api/v1/reloads/{reloadId})."""
    run_get(ReloadGetOptions(runtime=runtime_of(ctx), tenant=tenant, reload_id=reload_id))


@dataclass(frozen=True, kw_only=True)
class ReloadWaitOptions(TenantRun):
    reload_ids: tuple[str, ...]
    timeout: str | None = None
    poll_interval: str | None = None


def run_wait(options: ReloadWaitOptions) -> int:
    """Wait for reloads to end; print their final records (an array, one per id, in order).

    Exit codes as `reload --wait`. ``options`` is the command line of ``wait``, parsed; nothing
    here knows Typer.
    """
    from qlikm2m.commands.reload import _conclude, _reporter
    from qlikm2m.output import Output
    from qlikm2m.reloads import (
        DEFAULT_TIMEOUT,
        ClientReloadApi,
        WaitOptions,
        parse_duration,
        wait_for_reloads,
    )

    tenant = options.tenant
    timeout = options.timeout
    poll_interval = options.poll_interval
    runtime = options.runtime
    waiting = WaitOptions(
        timeout=DEFAULT_TIMEOUT if timeout is None else parse_duration(timeout, option="--timeout"),
        poll_interval=None
        if poll_interval is None
        else parse_duration(poll_interval, option="--poll-interval"),
    )
    output = Output(runtime)
    reporter = _reporter(runtime)
    with tenant.client(runtime) as client:
        try:
            report = wait_for_reloads(
                ClientReloadApi(client),
                [_checked(reload_id) for reload_id in options.reload_ids],
                waiting,
                reporter=reporter,
            )
        finally:
            reporter.close()
    return _conclude(runtime, output, report, waited=True)


@tenant_command
def wait(
    ctx: typer.Context,
    tenant: TenantFlags,
    reload_ids: ReloadsArg,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            help="Give up waiting after this long from now, e.g. 90s, 30m (default 30m; "
            "0 = no limit).",
            show_default=False,
        ),
    ] = None,
    poll_interval: Annotated[
        str | None,
        typer.Option(
            "--poll-interval",
            help="Time between checks (default adaptive).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Wait for reloads to end; print their final records (an array, one per id, in order).

    Exit codes as `reload --wait`: a job resumed after a timeout (exit 9) or a CI cancel picks
    up every reload it started.
    """
    code = run_wait(
        ReloadWaitOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            reload_ids=tuple(reload_ids),
            timeout=timeout,
            poll_interval=poll_interval,
        )
    )
    if code:
        raise typer.Exit(code)


@dataclass(frozen=True, kw_only=True)
class ReloadCancelOptions(TenantRun):
    reload_id: str


def run_cancel(options: ReloadCancelOptions) -> None:
    """Cancel a queued or running reload; print its record. A finished one is exit 5.

    ``options`` is the command line of ``cancel``, parsed; nothing here knows Typer.
    """
    from qlikm2m.output import Output
    from qlikm2m.reloads import cancel_reload

    tenant = options.tenant
    reload_id = options.reload_id
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        output.emit(dict(cancel_reload(client, _checked(reload_id))))


@tenant_command
def cancel(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
    """Cancel a queued or running reload; print its record. A finished one is exit 5."""
    run_cancel(ReloadCancelOptions(runtime=runtime_of(ctx), tenant=tenant, reload_id=reload_id))


@dataclass(frozen=True, kw_only=True)
class ReloadLogOptions(TenantRun):
    reload_id: str


def run_log(options: ReloadLogOptions) -> None:
    """Print the whole script log of a reload as text, streamed.

    ``options`` is the command line of ``log``, parsed; nothing here knows Typer.
    """
    from qlikm2m.reloads import reload_log

    tenant = options.tenant
    reload_id = options.reload_id
    runtime = options.runtime
    out = runtime.stdout
    with tenant.client(runtime) as client:
        for piece in reload_log(client, _checked(reload_id)):
            out.write(piece.decode("utf-8", errors="replace"))
        out.flush()


@tenant_command
def log(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
    """Print the whole script log of a reload as text, streamed."""
    run_log(ReloadLogOptions(runtime=runtime_of(ctx), tenant=tenant, reload_id=reload_id))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Reloads already started, by reload id.", no_args_is_help=True)

    app.command("get")(get)
    app.command("wait", epilog=EPILOG)(wait)
    app.command("cancel")(cancel)
    app.command("log")(log)

    root.add_typer(app, name="reloads")
