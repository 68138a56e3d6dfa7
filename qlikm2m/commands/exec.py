"""`qlikm2m exec -- COMMAND ARGS...`: run another program with a fresh access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command


@dataclass(frozen=True, kw_only=True)
class ExecOptions(TenantRun):
    command: list[str]


def run_exec(options: ExecOptions) -> int:
    """Run COMMAND with QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_TENANT_ID in its environment.

    ``options`` is the command line of ``exec``, parsed; nothing here knows Typer. Returns
    the command's exit code (126/127: it could not be started).
    """
    from qlikm2m.execution import handoff, start

    tenant = options.tenant
    command = options.command
    runtime = options.runtime
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        from qlikm2m.errors import UsageError

        raise UsageError("No command to run.", hint="e.g. qlikm2m exec -- node script.mjs")

    def warn(line: str) -> None:
        runtime.stderr.write(line + "\n")

    with tenant.client(runtime) as client:
        given = handoff(client, warn=warn)
    return start(command, given.environment(runtime.env))


@tenant_command
def exec_command(
    ctx: typer.Context,
    tenant: TenantFlags,
    command: Annotated[
        list[str],
        typer.Argument(
            help="The command and its arguments (put `--` before them).",
            metavar="COMMAND [ARGS]...",
            show_default=False,
        ),
    ],
) -> None:
    """Run COMMAND with QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_TENANT_ID in its environment.

    The token has at least 30 minutes of life left. QLIK_CLIENT_SECRET and QLIK_API_KEY are
    removed from the command's environment. stdin, stdout, stderr and signals are the
    command's own, and its exit code is qlikm2m's (126/127: it could not be started).

    e.g. qlikm2m exec -c prod -- node deploy.mjs
    """
    code = run_exec(ExecOptions(runtime=runtime_of(ctx), tenant=tenant, command=command))
    # Even 0: the exit code is the command's, said explicitly.
    raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    root.command(
        "exec",
        # Options end at the command's name: `qlikm2m exec curl -c jar` gives -c to curl.
        context_settings={"allow_interspersed_args": False},
    )(exec_command)
