"""`qlikm2m reloads`: an existing reload by id: get it, wait for it, cancel it, read its log.

For a job resumed after a timeout (exit 9) or a CI cancel: the reload id is in the record that
`reload` printed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.reload import EPILOG
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


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Reloads already started, by reload id.", no_args_is_help=True)

    @app.command("get")
    @tenant_command
    def get(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
        """Print a reload record (GET /api/v1/reloads/{reloadId})."""
        from qlikm2m.output import Output
        from qlikm2m.reloads import ClientReloadApi

        runtime = runtime_of(ctx)
        output = Output(runtime)
        with tenant.client(runtime) as client:
            output.emit(dict(ClientReloadApi(client).get(_checked(reload_id))))

    @app.command("wait", epilog=EPILOG)
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

        Exit codes as `reload --wait`: a job resumed after a timeout (exit 9) or a CI cancel
        picks up every reload it started.
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

        runtime = runtime_of(ctx)
        options = WaitOptions(
            timeout=DEFAULT_TIMEOUT
            if timeout is None
            else parse_duration(timeout, option="--timeout"),
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
                    [_checked(reload_id) for reload_id in reload_ids],
                    options,
                    reporter=reporter,
                )
            finally:
                reporter.close()
        _conclude(runtime, output, report, waited=True)

    @app.command("cancel")
    @tenant_command
    def cancel(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
        """Cancel a queued or running reload; print its record. A finished one is exit 5."""
        from qlikm2m.output import Output
        from qlikm2m.reloads import cancel_reload

        runtime = runtime_of(ctx)
        output = Output(runtime)
        with tenant.client(runtime) as client:
            output.emit(dict(cancel_reload(client, _checked(reload_id))))

    @app.command("log")
    @tenant_command
    def log(ctx: typer.Context, tenant: TenantFlags, reload_id: ReloadArg) -> None:
        """Print the whole script log of a reload as text, streamed."""
        from qlikm2m.reloads import reload_log

        runtime = runtime_of(ctx)
        out = runtime.stdout
        with tenant.client(runtime) as client:
            for piece in reload_log(client, _checked(reload_id)):
                out.write(piece.decode("utf-8", errors="replace"))
            out.flush()

    root.add_typer(app, name="reloads")
