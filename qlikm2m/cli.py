"""The root command, its global options, and the one error boundary of the tool.

Command modules are imported here only for their Typer objects; each defers the imports of the
core modules it uses to the moment it runs, so ``--version``, ``--help`` and a cached-token
request stay fast (measured in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
import sys
import traceback
import weakref
from enum import StrEnum
from typing import Annotated

import typer

from qlikm2m import __version__
from qlikm2m.errors import ExitCode, Interrupted, QlikM2MError, UsageError
from qlikm2m.redaction import redact
from qlikm2m.runtime import OUTPUT_ENV, OUTPUT_FORMATS, Runtime

app = typer.Typer(
    name="qlikm2m",
    help="Qlik Cloud machine-to-machine OAuth from the command line: contexts, tokens and the API.",
    no_args_is_help=True,
    # Locals of a failing frame can hold a client secret or a token: never print them.
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    # Rich help panels cost ~150 ms of imports: worth it for a person at a terminal, not for a pipe.
    rich_markup_mode="rich" if sys.stdout.isatty() else None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(StrEnum):
    json = "json"
    yaml = "yaml"
    table = "table"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"qlikm2m {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            "-c",
            help="Use this context for this command only ($QLIK_CONTEXT does the same per shell).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--output",
            "-o",
            help=f"Output format: json (default), yaml or table. Also ${OUTPUT_ENV}.",
            show_default=False,
            case_sensitive=False,
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", help="JMESPath expression applied to the result.", show_default=False
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Trace HTTP requests on stderr (secrets redacted); show tracebacks on errors.",
        ),
    ] = 0,
    no_input: Annotated[
        bool,
        typer.Option("--no-input", help="Never prompt: fail at once when an answer is missing."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    runtime = ctx.ensure_object(Runtime)
    runtime.context = context
    runtime.output_flag = output.value if output else None
    runtime.query = query
    runtime.verbose = verbose
    runtime.no_input = no_input
    env_output = runtime.env.get(OUTPUT_ENV, "").strip().lower()
    if env_output and env_output not in OUTPUT_FORMATS:
        raise UsageError(
            f"${OUTPUT_ENV} is {env_output!r}; expected one of {', '.join(OUTPUT_FORMATS)}."
        )


# Command name -> module in qlikm2m.commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "context",
    "auth",
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
    "sandbox",
)
# Root options that take a value: the word after them is not the command name.
_VALUED_ROOT_OPTIONS = frozenset({"-c", "--context", "-o", "--output", "--query"})
# Keyed by the app object itself, weakly: an id() can be reused by a new app once the old one
# is collected, and would then claim groups the new app never received.
_registered: weakref.WeakKeyDictionary[typer.Typer, set[str]] = weakref.WeakKeyDictionary()


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


def register_commands(args: list[str] | None = None) -> None:
    """Attach the command groups to ``app``: only the one asked for when there is one.

    Building every group's Click objects costs tens of milliseconds on each run; a command
    line that names its command needs only that group. Root help, completion and unknown
    names get the whole tree (so "No such command" still lists the right choices).
    """
    import importlib
    import os

    wanted = None if args is None or "_QLIKM2M_COMPLETE" in os.environ else _requested_command(args)
    wanted = wanted.replace("-", "_") if wanted else wanted  # data-files lives in data_files
    names = (wanted,) if wanted in COMMAND_MODULES else COMMAND_MODULES
    done = _registered.setdefault(app, set())
    for name in COMMAND_MODULES:
        if name in names and name not in done:
            importlib.import_module(f"qlikm2m.commands.{name}").register(app)
            done.add(name)


def _report(runtime: Runtime, error: QlikM2MError) -> None:
    stream = runtime.stderr
    if runtime.json_errors:
        stream.write(redact(json.dumps(error.to_dict())) + "\n")
        return
    red, dim, reset = (
        ("\x1b[31;1m", "\x1b[2m", "\x1b[0m") if runtime.color_for(stream) else ("",) * 3
    )
    stream.write(f"{red}error:{reset} {redact(error.message)}\n")
    if error.hint:
        stream.write(f"{dim}hint:{reset} {redact(error.hint)}\n")


def _print_traceback(runtime: Runtime) -> None:
    # Plain traceback without locals, passed through the redactor in case a message holds a secret.
    runtime.stderr.write(redact(traceback.format_exc()))


def main(argv: list[str] | None = None, runtime: Runtime | None = None) -> int:
    """Run the CLI and map every outcome to a documented exit code (docs/exit-codes.md)."""
    args = list(sys.argv[1:] if argv is None else argv)
    runtime = runtime or Runtime()
    _treat_sigterm_as_interrupt()
    try:
        register_commands(args)
        result = app(args=args, prog_name="qlikm2m", standalone_mode=False, obj=runtime)
    except QlikM2MError as error:
        if runtime.verbose:
            _print_traceback(runtime)
        _report(runtime, error)
        return int(error.exit_code)
    except typer.TyperException as error:
        # Typer's own usage errors (unknown option, bad value) already read well, with usage.
        show = getattr(error, "show", None)
        if callable(show):
            show(file=runtime.stderr)
        else:
            runtime.stderr.write(f"error: {error.format_message()}\n")
        return int(ExitCode.USAGE)
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
    return result if isinstance(result, int) else int(ExitCode.OK)


def _report_interrupted(runtime: Runtime) -> int:
    if runtime.json_errors:
        # A script that asked for JSON parses the last stderr line, whatever ended the run.
        runtime.stderr.write("\n" + json.dumps(Interrupted("interrupted").to_dict()) + "\n")
    else:
        runtime.stderr.write("\ninterrupted\n")
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
