"""The root command, its global options, and the command line's side of the error boundary.

The command tree is built per invocation (``build_app``): a fresh root Typer with only the group
the command line names, so no app object or registry outlives a run. Command modules are
imported here only for their Typer objects; each defers the imports of the core modules it uses
to the moment it runs, so ``--version``, ``--help`` and a cached-token request stay fast
(measured in benchmarks/RESULTS.md). The hottest command lines (``tenant me``, ``user me``,
``api PATH``) do not come here: the launcher serves them without Typer (qlikm2m/fast_path.py),
and this stays the one definition of what every command line means.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qlikm2m import __version__, boundary
from qlikm2m.boundary import run_command
from qlikm2m.commands.command_classes import ALIASES, QlikGroup, use_qlik_classes
from qlikm2m.commands.common import check_output_env
from qlikm2m.commands.tenant_options import root_command, valued_option_names
from qlikm2m.errors import UsageError
from qlikm2m.runtime import Runtime

_EPILOG = (
    "Every option above is also accepted after the command name, where it wins. "
    "qlik-cli habits work: app, space, item and list stand for apps, spaces, items and ls. "
    "Guides: qlikm2m help TOPIC (qlikm2m help lists them)."
)


def _root_app(*, rich_help: bool) -> typer.Typer:
    """A fresh root Typer with the root callback and no command groups yet."""
    app = typer.Typer(
        name="qlikm2m",
        help="Qlik Cloud machine-to-machine OAuth from the command line: contexts, tokens and "
        "the API.",
        no_args_is_help=True,
        # Locals of a failing frame can hold a client secret or a token: never print them.
        pretty_exceptions_show_locals=False,
        pretty_exceptions_enable=False,
        # Rich help panels cost ~150 ms of imports: worth it for a person at a terminal, not for
        # a pipe.
        rich_markup_mode="rich" if rich_help else None,
        context_settings={"help_option_names": ["-h", "--help"]},
        cls=QlikGroup,
        # `qlikm2m completion SHELL` prints the script for the shell named; Typer's
        # --show-completion guessed the shell from the parent process and printed bash for zsh.
        add_completion=False,
    )
    app.callback(epilog=_EPILOG)(root)
    return app


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"qlikm2m {__version__}\n")
        raise typer.Exit()


def _completion_moved(value: bool) -> None:
    if value:
        raise UsageError(
            "--show-completion and --install-completion were replaced by `qlikm2m completion "
            "SHELL`.",
            hint="e.g. qlikm2m completion zsh > ~/.zfunc/_qlikm2m (see `qlikm2m help completion`).",
        )


@root_command
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    completion_moved: Annotated[
        bool,
        typer.Option(
            "--show-completion",
            "--install-completion",
            callback=_completion_moved,
            is_eager=True,
            hidden=True,
        ),
    ] = False,
) -> None:
    check_output_env(ctx.ensure_object(Runtime))


# Command name -> module in qlikm2m.commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "context",
    "auth",
    "oauth",
    "user",
    "tenant",
    "api",
    "spaces",
    "items",
    "apps",
    "data_files",
    "reload",
    "reloads",
    "doctor",
    "exec",
    "each",
    "sandbox",
    "completion",
    "help",
)
# Root options that take a value: the word after them is not the command name.
_VALUED_ROOT_OPTIONS = valued_option_names()

# What the root help lists, in its order: name, "command" or "group", and the first paragraph
# of the entry's help (Click shortens it). A piped root help (`qlikm2m --help | less`, the
# benchmark's and CI logs' case) builds only these entries instead of every group's commands,
# which took two thirds of its time (issue 14, target 5). tests/test_cli.py holds this table to
# the real tree's help, byte for byte, so it cannot drift from the commands' own texts.
ROOT_LISTING: tuple[tuple[str, str, str], ...] = (
    ("api", "command", "Call any endpoint of the tenant with the right token."),
    (
        "reload",
        "command",
        "Reload apps (POST /api/v1/reloads); print the reload record(s) as JSON.",
    ),
    (
        "doctor",
        "command",
        "Check everything qlikm2m depends on, each line ok/warn/fail with the fix.",
    ),
    (
        "exec",
        "command",
        "Run COMMAND with QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_TENANT_ID in its environment.",
    ),
    ("each", "command", "Run a qlikm2m command for every context matching PATTERN."),
    (
        "completion",
        "command",
        "Print the shell completion script for SHELL (bash, zsh, fish or powershell).",
    ),
    ("help", "command", "Show a guide (environment, exit-codes, ci, ...) or a command's help."),
    (
        "context",
        "group",
        "Named tenant settings (like qlik-cli's contexts), with secrets in the OS keyring.",
    ),
    ("auth", "group", "Tokens: print one, check the credentials, revoke."),
    (
        "oauth",
        "group",
        "An OAuth client's key pairs, secrets and tokens (private-key JWT, rotation).",
    ),
    ("user", "group", "Users of the tenant."),
    ("tenant", "group", "The tenant itself."),
    ("spaces", "group", "Spaces of the tenant."),
    ("items", "group", "Items of the tenant: apps, datasets, notes, ..."),
    ("apps", "group", "Qlik Sense apps."),
    ("data-files", "group", "Data files (CSV, QVD, ...) of the tenant."),
    ("reloads", "group", "Reloads already started, by reload id."),
    ("sandbox", "group", "A local Qlik Cloud tenant for tests, demos and dry runs of CI scripts."),
)
_ROOT_HELP_ARGS: tuple[list[str], ...] = ([], ["--help"], ["-h"])


def _requested_command(args: list[str]) -> str | None:
    """The command a command line asks for, or None when it asks for none (root help)."""
    expect_value = False
    for word in args:
        if expect_value:
            expect_value = False
        elif word in _VALUED_ROOT_OPTIONS:
            expect_value = True
        elif not word.startswith("-"):
            return word
        elif word in ("-h", "--help"):
            return None
    return None


def wanted_groups(args: list[str] | None) -> tuple[str, ...]:
    """The modules of ``COMMAND_MODULES`` a command line needs: only the one it names when it
    names one; root help, completion, ``help`` and unknown names get them all."""
    import os

    completing = "_QLIKM2M_COMPLETE" in os.environ
    wanted = None if args is None or completing else _requested_command(args)
    wanted = ALIASES.get(wanted, wanted) if wanted else None
    wanted = wanted.replace("-", "_") if wanted else wanted  # data-files lives in data_files
    # `help apps ls` shows another command's help: it needs the whole tree.
    return (wanted,) if wanted in COMMAND_MODULES and wanted != "help" else COMMAND_MODULES


def build_app(
    args: list[str] | None = None,
    *,
    rich_help: bool | None = None,
    listing_only: bool | None = None,
) -> typer.Typer:
    """A new command tree for one invocation: the root and the group(s) ``args`` needs.

    Building every group's Click objects costs tens of milliseconds on each run; a command
    line that names its command needs only that group. Root help, completion and unknown
    names get the whole tree (so "No such command" still lists the right choices); a plain
    (piped) root help gets the entries of ``ROOT_LISTING`` only, which print the same.
    ``rich_help`` (default: whether stdout is a terminal) picks rich help panels;
    ``listing_only`` (default: a plain root help) forces or forbids the short tree.
    """
    import importlib
    import os

    completing = "_QLIKM2M_COMPLETE" in os.environ
    if completing:
        # The shell classes Typer registers only when it adds --install-completion itself
        # (typer is pinned below 0.29: this private home is known).
        from typer._completion_classes import completion_init

        completion_init()
    if rich_help is None:
        rich_help = sys.stdout is not None and sys.stdout.isatty()
    app = _root_app(rich_help=rich_help)
    if listing_only is None:
        listing_only = not rich_help and not completing and args in _ROOT_HELP_ARGS
    if listing_only:
        _add_root_listing(app)
        use_qlik_classes(app)
        return app
    names = wanted_groups(args)
    for name in COMMAND_MODULES:
        if name in names:
            importlib.import_module(f"qlikm2m.commands.{name}").register(app)
    use_qlik_classes(app)
    return app


def _listed_only() -> None:
    """Stands in for a command in a root help that only lists them; never run."""


def _add_root_listing(app: typer.Typer) -> None:
    for name, kind, summary in ROOT_LISTING:
        if kind == "group":
            app.add_typer(typer.Typer(help=summary), name=name)
        else:
            app.command(name, help=summary)(_listed_only)


def main(argv: list[str] | None = None, runtime: Runtime | None = None) -> int:
    """Run the CLI and map every outcome to a documented exit code (docs/exit-codes.md).

    ``argv`` defaults to ``sys.argv[1:]``, ``runtime`` to this process's streams and environment.
    The error boundary is ``qlikm2m.boundary.run_command`` (one run scope per call, SIGTERM as
    Ctrl-C); this adds what only Click raises (``_click_outcome``).
    """
    args = list(sys.argv[1:] if argv is None else argv)

    def body(runtime: Runtime) -> object:
        app = build_app(args)
        return app(args=args, prog_name="qlikm2m", standalone_mode=False, obj=runtime)

    return run_command(body, runtime, adapt=_click_outcome)


def _click_outcome(runtime: Runtime, error: BaseException) -> int | None:
    """Click's own ways to end a command, as the boundary's outcomes (None: not Click's)."""
    if isinstance(error, typer.TyperException):
        # Click's own usage errors (unknown option, missing argument, bad value) keep the one
        # error contract: a line and a hint, or one JSON object when JSON was asked for.
        return boundary.report(runtime, _click_usage_error(error))
    if isinstance(error, typer.Abort):
        return boundary.interrupted(runtime)
    if isinstance(error, SystemExit) and isinstance(error.__context__, BrokenPipeError):
        # Typer meets the broken pipe first and exits 1; scripts with `set -o pipefail` and
        # `| head` would fail for nothing.
        return boundary.broken_pipe()
    return None


def _click_usage_error(error: typer.TyperException) -> UsageError:
    message = error.format_message().strip().rstrip(".") + "."
    command = getattr(getattr(error, "ctx", None), "command_path", None) or "qlikm2m"
    return UsageError(message, hint=f"See `{command} --help`.")
