"""`qlikm2m reload APP_ID... [--wait]`: reload apps, and with --wait follow them to the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

if TYPE_CHECKING:
    from qlikm2m.output import Output
    from qlikm2m.reloads import ReloadResult, Reporter, RunReport, WaitOptions
    from qlikm2m.runtime import Runtime

EPILOG = (
    "Exit codes with --wait: 0 every reload SUCCEEDED; 8 a reload ended FAILED, CANCELED or "
    "EXCEEDED_LIMIT (the end of its log is on stderr); 9 --timeout ran out (the reload goes on "
    "server-side); 130 Ctrl-C (the reloads go on server-side). With several apps: the worst one."
)


def _complete_app_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from qlikm2m.commands.completion import complete_app_ids

    return complete_app_ids(ctx, incomplete)


@dataclass(frozen=True, kw_only=True)
class ReloadOptions(TenantRun):
    app_ids: list[str]
    partial: bool = False
    wait: bool = False
    timeout: str | None = None
    poll_interval: str | None = None
    max_parallel: int | None = None
    variables: list[str] | None = None
    weight: int | None = None


def run_reload(options: ReloadOptions) -> int:
    """Reload apps (POST /api/v1/reloads); print the reload record(s) as JSON.

    ``options`` is the command line of ``reload``, parsed; nothing here knows Typer.
    """
    from qlikm2m.output import Output
    from qlikm2m.reloads import ClientReloadApi, check_weight, parse_variables, run_reloads

    tenant = options.tenant
    app_ids = options.app_ids
    partial = options.partial
    wait = options.wait
    timeout = options.timeout
    poll_interval = options.poll_interval
    max_parallel = options.max_parallel
    variables = options.variables
    weight = options.weight
    runtime = options.runtime
    apps = _checked_app_ids(app_ids)
    parsed = parse_variables(variables or [])
    check_weight(weight)
    waiting = _wait_options(wait, timeout, poll_interval, max_parallel)
    output = Output(runtime)  # checks --query before anything is started
    reporter = _reporter(runtime) if waiting is not None else None
    with tenant.client(runtime) as client:
        try:
            report = run_reloads(
                ClientReloadApi(client, variables=parsed, weight=weight),
                apps,
                partial=partial,
                wait=waiting,
                reporter=reporter,
            )
        finally:
            if reporter is not None:
                reporter.close()
    return _conclude(runtime, output, report, waited=waiting is not None)


@tenant_command
def reload(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="APP_ID...",
            help="App ids to reload, one or more (see: qlikm2m apps ls).",
            autocompletion=_complete_app_ids,
        ),
    ],
    partial: Annotated[
        bool, typer.Option("--partial", help="A partial reload (the script's Add/Replace).")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait for each reload to end; exit non-zero unless all SUCCEEDED."
        ),
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="With --wait: give up waiting after this long per reload, e.g. 90s, 30m, "
            "1h30m (default 30m; 0 = no limit).",
            show_default=False,
        ),
    ] = None,
    poll_interval: Annotated[
        str | None,
        typer.Option(
            "--poll-interval",
            metavar="DURATION",
            help="With --wait: time between status checks, e.g. 5s (default: 1s, growing to 10s).",
            show_default=False,
        ),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            "--max-parallel",
            help="With --wait: how many reloads run at once (default 4).",
            show_default=False,
        ),
    ] = None,
    variables: Annotated[
        list[str] | None,
        typer.Option(
            "--var",
            metavar="NAME=VALUE",
            help="A reload-time variable for the load script (repeatable, at most 20).",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        int | None,
        typer.Option(
            "--weight",
            help="1-10: a higher weight is scheduled sooner among the tenant's reloads.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Reload apps (POST /api/v1/reloads); print the reload record(s) as JSON.

    With --wait, follow every reload to SUCCEEDED, FAILED or CANCELED, several apps at once,
    and print the final records and a summary.
    """
    code = run_reload(
        ReloadOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            app_ids=app_ids,
            partial=partial,
            wait=wait,
            timeout=timeout,
            poll_interval=poll_interval,
            max_parallel=max_parallel,
            variables=variables,
            weight=weight,
        )
    )
    if code:
        raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    root.command("reload", epilog=EPILOG)(reload)


def _checked_app_ids(app_ids: list[str]) -> list[str]:
    from qlikm2m.errors import UsageError

    cleaned = [app_id.strip() for app_id in app_ids]
    if not cleaned or any(not app_id for app_id in cleaned):
        raise UsageError("An app id is empty.", hint="List app ids with: qlikm2m apps ls")
    seen: set[str] = set()
    for app_id in cleaned:
        if app_id in seen:
            # The tenant refuses a second reload of an app that has one pending.
            raise UsageError(f"App {app_id} is given twice.")
        seen.add(app_id)
    return cleaned


def _wait_options(
    wait: bool, timeout: str | None, poll_interval: str | None, max_parallel: int | None
) -> WaitOptions | None:
    from qlikm2m.errors import UsageError
    from qlikm2m.reloads import DEFAULT_MAX_PARALLEL, DEFAULT_TIMEOUT, WaitOptions, parse_duration

    if not wait:
        given = [
            flag
            for flag, value in (
                ("--timeout", timeout),
                ("--poll-interval", poll_interval),
                ("--max-parallel", max_parallel),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} only applies with --wait.")
        return None
    return WaitOptions(
        timeout=DEFAULT_TIMEOUT if timeout is None else parse_duration(timeout, option="--timeout"),
        poll_interval=(
            None
            if poll_interval is None
            else parse_duration(poll_interval, option="--poll-interval")
        ),
        max_parallel=DEFAULT_MAX_PARALLEL if max_parallel is None else max_parallel,
    )


def _reporter(runtime: Runtime) -> Reporter:
    if runtime.stderr_is_tty:
        from qlikm2m.terminal import SpinnerReporter

        return SpinnerReporter(runtime.stderr, color=runtime.color_for(runtime.stderr))
    from qlikm2m.reloads import PlainReporter

    return PlainReporter(runtime.stderr)


def _entry(result: ReloadResult) -> dict[str, Any]:
    """The app's last reload record, or ``{"appId", "error"}`` when no reload could start."""
    if result.record is not None:
        return dict(result.record)
    entry: dict[str, Any] = {"appId": result.app_id, "id": None, "status": None}
    if result.error is not None:
        entry["error"] = result.error.to_dict()["error"]
    return entry


def _conclude(runtime: Runtime, output: Output, report: RunReport, *, waited: bool) -> int:
    """Records on stdout; log tails, the summary and Ctrl-C notes on stderr; then the exit code
    (130 when interrupted; an error of the run is raised)."""
    from qlikm2m.errors import ExitCode
    from qlikm2m.reloads import Outcome, describe, summary_lines

    # One entry per app id given, in order, whatever happened: the shape never depends on the data.
    output.emit([_entry(result) for result in report.results])
    err = runtime.stderr
    for result in report.results:
        if result.outcome is Outcome.FAILED:
            excerpt = result.failure_excerpt()
            err.write(
                f"reload {result.reload_id} of app {result.app_id} ended {result.status}"
                + ("; the end of its log:\n" if excerpt else ".\n")
            )
            err.writelines(f"  | {line}\n" for line in excerpt)
    if len(report.results) > 1 and (waited or report.exit_code is not ExitCode.OK):
        err.write("\n" + "\n".join(summary_lines(report)) + "\n")
    if report.interrupted:
        stopped = [r for r in report.results if r.outcome is Outcome.INTERRUPTED]
        if len(report.results) == 1:
            err.writelines(describe(result) + "\n" for result in stopped)
        else:
            ids = [f"{r.reload_id} (app {r.app_id})" for r in stopped if r.reload_id]
            if ids:
                err.write(f"stopped waiting; these reloads go on server-side: {', '.join(ids)}\n")
            if any(not r.reload_id for r in stopped):
                err.write(
                    "an app was being started when interrupted: a reload may have been queued\n"
                )
        err.flush()
        return int(ExitCode.INTERRUPTED)
    err.flush()
    error = report.error()
    if error is not None:
        raise error
    return 0
