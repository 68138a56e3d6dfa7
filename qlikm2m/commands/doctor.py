"""`qlikm2m doctor`: diagnose the keyring, files, settings, network, clock and credentials."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from qlikm2m.commands.common import TenantFlags
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import runtime_of, tenant_command

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
_COLOURS = {"ok": "\x1b[32m", "warn": "\x1b[33m", "fail": "\x1b[31;1m", "skip": "\x1b[2m"}


@dataclass(frozen=True)
class DoctorOptions(TenantRun):
    """``doctor`` takes nothing of its own."""


def run_doctor(options: DoctorOptions) -> int:
    """Run every check and print the report; the exit code of the first failure, else 0.

    One line per check (ok/warn/fail/skip, with the fix) for a person; the report as data when
    an output format or a query is asked for.
    """
    from qlikm2m.diagnostics import run_checks
    from qlikm2m.output import Output

    runtime = options.runtime
    report = run_checks(runtime, options.tenant.as_kwargs())
    if runtime.output_explicit or runtime.query:
        Output(runtime).emit(report.as_dict())
    else:
        colour = runtime.color_for(runtime.stdout)
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            mark = _MARKS[check.status]
            if colour:
                mark = f"{_COLOURS[check.status]}{mark}\x1b[0m"
            timing = f" ({check.elapsed_ms:.0f} ms)" if check.elapsed_ms is not None else ""
            runtime.stdout.write(f"{mark}  {check.name:<{width}}  {check.detail}{timing}\n")
            if check.fix and check.status in ("warn", "fail"):
                runtime.stdout.write(f"      {'':<{width}}  fix: {check.fix}\n")
        runtime.stdout.flush()
    return 0 if report.ok else int(report.exit_code)


@tenant_command
def doctor(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Check everything qlikm2m depends on, each line ok/warn/fail with the fix.

    Exits non-zero (the code of the first failure) when anything fails; -o json for scripts.
    """
    code = run_doctor(DoctorOptions(runtime_of(ctx), tenant))
    if code:
        raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    root.command("doctor")(doctor)
