"""The root command, its global options, and the one error boundary of the tool.

The command tree is built per invocation (``build_app``): a fresh root Typer with only the group
the command line names, so no app object or registry outlives a run. Command modules are
imported here only for their Typer objects; each defers the imports of the core modules it uses
to the moment it runs, so ``--version``, ``--help`` and a cached-token request stay fast
(measured in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from qlikm2m import __version__
from qlikm2m.commands.command_classes import ALIASES, QlikGroup, use_qlik_classes
from qlikm2m.commands.tenant_options import root_command, valued_option_names
from qlikm2m.errors import ExitCode, Interrupted, QlikM2MError, UsageError
from qlikm2m.redaction import redact
from qlikm2m.runtime import OUTPUT_ENV, OUTPUT_FORMATS, Runtime, open_run

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
    runtime = ctx.ensure_object(Runtime)
    env_output = runtime.env.get(OUTPUT_ENV, "").strip().lower()
    if env_output and env_output not in OUTPUT_FORMATS:
        raise UsageError(
            f"${OUTPUT_ENV} is {env_output!r}; expected one of {', '.join(OUTPUT_FORMATS)}."
        )


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


def build_app(args: list[str] | None = None, *, rich_help: bool | None = None) -> typer.Typer:
    """A new command tree for one invocation: the root and the group(s) ``args`` needs.

    Building every group's Click objects costs tens of milliseconds on each run; a command
    line that names its command needs only that group. Root help, completion and unknown
    names get the whole tree (so "No such command" still lists the right choices).
    ``rich_help`` (default: whether stdout is a terminal) picks rich help panels.
    """
    import importlib
    import os

    if "_QLIKM2M_COMPLETE" in os.environ:
        # The shell classes Typer registers only when it adds --install-completion itself
        # (typer is pinned below 0.29: this private home is known).
        from typer._completion_classes import completion_init

        completion_init()
    if rich_help is None:
        rich_help = sys.stdout is not None and sys.stdout.isatty()
    app = _root_app(rich_help=rich_help)
    names = wanted_groups(args)
    for name in COMMAND_MODULES:
        if name in names:
            importlib.import_module(f"qlikm2m.commands.{name}").register(app)
    use_qlik_classes(app)
    return app


def _report(runtime: Runtime, error: QlikM2MError) -> None:
    from qlikm2m.output import report_error

    report_error(runtime, error)


def _print_traceback(runtime: Runtime) -> None:
    # Plain traceback without locals, passed through the redactor in case a message holds a secret.
    runtime.stderr.write(redact(traceback.format_exc()))


def main(argv: list[str] | None = None, runtime: Runtime | None = None) -> int:
    """Run the CLI and map every outcome to a documented exit code (docs/exit-codes.md).

    Each call is one run: what it registers or caches (secrets to redact, keyring backends) and
    its SIGTERM handler end with it, so several calls in one process do not affect each other.
    """
    import signal
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    try:
        with open_run():
            return _run(argv, runtime)
    finally:
        # getsignal() says None for a handler set outside Python: that cannot be put back.
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _run(argv: list[str] | None, runtime: Runtime | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    runtime = runtime or Runtime()
    _treat_sigterm_as_interrupt()
    try:
        app = build_app(args)
        result = app(args=args, prog_name="qlikm2m", standalone_mode=False, obj=runtime)
    except QlikM2MError as error:
        # An expected error is its sentence; its traceback is for those who ask twice (-vv).
        if runtime.verbose >= 2:
            _print_traceback(runtime)
        _report(runtime, error)
        return int(error.exit_code)
    except typer.TyperException as error:
        # Click's own usage errors (unknown option, missing argument, bad value) keep the one
        # error contract: a line and a hint, or one JSON object when JSON was asked for.
        usage = _click_usage_error(error)
        _report(runtime, usage)
        return int(usage.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        return _report_interrupted(runtime)
    except BrokenPipeError:
        # The reader went away (`| head`): that is its choice, not our failure.
        _silence_stdout()
        return int(ExitCode.OK)
    except SystemExit as exit_request:
        # Typer meets the broken pipe first and exits 1; scripts with `set -o pipefail` and
        # `| head` would fail for nothing.
        if isinstance(exit_request.__context__, BrokenPipeError):
            _silence_stdout()
            return int(ExitCode.OK)
        raise
    except Exception as error:
        if runtime.verbose:
            _print_traceback(runtime)
        unexpected = QlikM2MError(
            f"unexpected {type(error).__name__}: {error}",
            hint="Re-run with -v for a traceback, and please report it.",
        )
        _report(runtime, unexpected)
        return int(ExitCode.UNEXPECTED)
    if result == int(ExitCode.INTERRUPTED):
        return _report_interrupted(runtime)
    try:
        # What is still buffered must reach its file before the exit code says it did.
        runtime.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except QlikM2MError as error:
        _report(runtime, error)
        return int(error.exit_code)
    return result if isinstance(result, int) else int(ExitCode.OK)


def _click_usage_error(error: typer.TyperException) -> UsageError:
    message = error.format_message().strip().rstrip(".") + "."
    command = getattr(getattr(error, "ctx", None), "command_path", None) or "qlikm2m"
    return UsageError(message, hint=f"See `{command} --help`.")


def _report_interrupted(runtime: Runtime) -> int:
    from qlikm2m.output import report_error

    report_error(runtime, Interrupted("interrupted"))
    return int(ExitCode.INTERRUPTED)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _treat_sigterm_as_interrupt() -> None:
    """CI runners cancel a job with SIGTERM: stop the way Ctrl-C does (say what goes on, exit 130)
    instead of dying silently mid-wait."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
