"""`qlikm2m doctor`: diagnose the keyring, files, settings, network, clock and credentials."""

from __future__ import annotations

import typer

from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
_COLOURS = {"ok": "\x1b[32m", "warn": "\x1b[33m", "fail": "\x1b[31;1m", "skip": "\x1b[2m"}


def register(root: typer.Typer) -> None:
    @root.command("doctor")
    @tenant_command
    def doctor(ctx: typer.Context, tenant: TenantFlags) -> None:
        """Check everything qlikm2m depends on, each line ok/warn/fail with the fix.

        Exits non-zero (the code of the first failure) when anything fails; -o json for scripts.
        """
        from qlikm2m.diagnostics import run_checks
        from qlikm2m.output import Output

        runtime = runtime_of(ctx)
        report = run_checks(runtime, tenant.as_kwargs())
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
        if not report.ok:
            raise typer.Exit(int(report.exit_code))
