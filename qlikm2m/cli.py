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
from typing import Annotated

import typer

from qlikm2m import __version__
from qlikm2m.commands.command_classes import ALIASES, QlikGroup, use_qlik_classes
from qlikm2m.commands.tenant_options import root_command, valued_option_names
from qlikm2m.errors import ExitCode, Interrupted, QlikM2MError, UsageError
from qlikm2m.redaction import redact
from qlikm2m.runtime import OUTPUT_ENV, OUTPUT_FORMATS, Runtime, open_run

app = typer.Typer(
    name="qlikm2m",
    help="Qlik Cloud machine-to-machine OAuth from the command line: contexts, tokens and the API.",
    no_args_is_help=True,
    # Locals of a failing frame can hold a client secret or a token: never print them.
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    # Rich help panels cost ~150 ms of imports: worth it for a person at a terminal, not for a pipe.
    rich_markup_mode="rich" if sys.stdout is not None and sys.stdout.isatty() else None,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=QlikGroup,
    # `qlikm2m completion SHELL` prints the script for the shell named; Typer's
    # --show-completion guessed the shell from the parent process and printed bash for zsh.
    add_completion=False,
)


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


@app.callback(
    epilog="Every option above is also accepted after the command name, where it wins. "
    "qlik-cli habits work: app, space, item and list stand for apps, spaces, items and ls. "
    "Guides: qlikm2m help TOPIC (qlikm2m help lists them)."
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
# Which groups were attached to which app: a fact about a live app object (groups are never
# detached), so it may outlive a run, unlike per-run state (see runtime.open_run). Keyed by the
# app object itself, weakly: an id() can be reused by a new app once the old one is collected,
# and would then claim groups the new app never received.
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

    completing = "_QLIKM2M_COMPLETE" in os.environ
    if completing:
        # The shell classes Typer registers only when it adds --install-completion itself
        # (typer is pinned below 0.29: this private home is known).
        from typer._completion_classes import completion_init

        completion_init()
    wanted = None if args is None or completing else _requested_command(args)
    wanted = ALIASES.get(wanted, wanted) if wanted else None
    wanted = wanted.replace("-", "_") if wanted else wanted  # data-files lives in data_files
    # `help apps ls` shows another command's help: it needs the whole tree.
    names = (wanted,) if wanted in COMMAND_MODULES and wanted != "help" else COMMAND_MODULES
    done = _registered.setdefault(app, set())
    for name in COMMAND_MODULES:
        if name in names and name not in done:
            importlib.import_module(f"qlikm2m.commands.{name}").register(app)
            done.add(name)
    use_qlik_classes(app)


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
        register_commands(args)
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
