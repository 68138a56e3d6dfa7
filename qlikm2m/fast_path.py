"""The launcher's fast path: the hottest command lines run without importing Typer or Click.

``tenant me``, ``user me`` and ``api PATH`` (also with ``--paginate``/``--ndjson``) are what CI
scripts repeat; importing Typer and Click and building the command tree took a fifth of such a
run (issue 14). ``recognise`` accepts only
command lines it understands completely: those hot forms with the global options ``-c/--context
NAME``, ``-o/--output FORMAT``, ``--query JMESPATH`` and ``-v/--verbose`` (``-vv``; ``--name=VALUE``
for the long valued ones), before or after the command name, as the Typer command line accepts
them. Anything else (another option, ``--help``, an option given twice in one place, a value that
starts with ``-``, an unknown format, shell completion) returns None and the launcher goes the
ordinary way (``qlikm2m.cli``), which stays the one definition of every command line:
tests/test_fast_path.py checks that each form accepted here means the same under Click and that
both ways give the same output and exit code.

What runs is what the Typer command runs, in the same order: the options before the command name,
the ``$QLIKM2M_OUTPUT`` check of the root command, the options after the name, then the command's
``run_*`` function, inside the same error boundary (``qlikm2m.boundary``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from qlikm2m.runtime import Runtime

# The hot command lines: the command's words -> its positional arguments (names of its options
# value). Each is a Typer command of qlikm2m/commands/ (tenant.py, user.py, api.py).
HOT_COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("tenant", "me"): (),
    ("user", "me"): (),
    ("api",): ("path",),
}

# The switches of a hot command served here: option word -> the ``ApiOptions`` field it turns on.
# ``api PATH --paginate --ndjson`` is how scripts stream a whole listing (issue 14, target 2).
COMMAND_FLAGS: dict[tuple[str, ...], dict[str, str]] = {
    ("api",): {"--paginate": "paginate", "--ndjson": "ndjson"},
}

# The global options served here (qlikm2m/commands/tenant_options.py declares them for Typer):
# option word -> the parameter it sets there.
GLOBAL_OPTIONS: dict[str, str] = {
    "-c": "context_name",
    "--context": "context_name",
    "-o": "output_format",
    "--output": "output_format",
    "--query": "jmespath_query",
    "-v": "verbose",
    "--verbose": "verbose",
}
COUNTED = frozenset({"verbose"})  # a flag that counts (``-v``, ``-vv``); the others take a value
# Click takes these case-insensitively; only the exact names are served here.
OUTPUT_FORMATS = ("json", "yaml", "table", "text")

# Shell completion (Click's ``_{PROG}_COMPLETE``) is the Typer command line's business.
_COMPLETION_VARIABLE = "_QLIKM2M_COMPLETE"


class HotCommand:
    """A command line ``recognise`` understood: the command's words, the global options given
    before and after them (parameter name -> value, as Typer would pass them, a format as its
    name), the values of its positional arguments and the switches of ``COMMAND_FLAGS`` given
    (field name -> True)."""

    __slots__ = ("after", "arguments", "before", "flags", "words")

    def __init__(
        self,
        words: tuple[str, ...],
        before: dict[str, Any],
        after: dict[str, Any],
        arguments: dict[str, str],
        flags: dict[str, bool] | None = None,
    ) -> None:
        self.words = words
        self.before = before
        self.after = after
        self.arguments = arguments
        self.flags = flags or {}

    def run(self, runtime: Runtime) -> None:
        """What the Typer command line does with it, from the root callback on."""
        try:
            self._run(runtime)
        except EOFError:
            # As Click's main does (typer.core._main): end the line, then stop as on Ctrl-C.
            if sys.stderr is not None:
                sys.stderr.write("\n")
                sys.stderr.flush()
            raise KeyboardInterrupt from None

    def _run(self, runtime: Runtime) -> None:
        from qlikm2m.commands.common import TenantFlags, apply_global_options, check_output_env

        apply_global_options(runtime, self.before, root=True)
        check_output_env(runtime)
        apply_global_options(runtime, self.after, root=False)
        if self.words == ("tenant", "me"):
            from qlikm2m.commands import tenant_run

            tenant_run.run_me(tenant_run.MeOptions(runtime, TenantFlags()))
        elif self.words == ("user", "me"):
            from qlikm2m.commands import user_run

            user_run.run_me(user_run.MeOptions(runtime, TenantFlags()))
        else:
            from qlikm2m.commands import api_run

            path = self.arguments["path"]
            options = api_run.ApiOptions(
                runtime=runtime,
                tenant=TenantFlags(),
                path=path,
                paginate=self.flags.get("paginate", False),
                ndjson=self.flags.get("ndjson", False),
            )
            api_run.run_api(options)


def recognise(args: Sequence[str], env: Mapping[str, str]) -> HotCommand | None:
    """``args`` (the words after ``qlikm2m``) as a hot command line, or None when they are not
    exactly one (``env``: the process environment, for shell completion)."""
    if _COMPLETION_VARIABLE in env:
        return None
    before: dict[str, Any] = {}
    index = _options(args, 0, before)
    if index is None:
        return None
    words = next((w for w in HOT_COMMANDS if tuple(args[index : index + len(w)]) == w), None)
    if words is None:
        return None
    wanted = HOT_COMMANDS[words]
    switches = COMMAND_FLAGS.get(words, {})
    positional: list[str] = []
    after: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    index += len(words)
    # After the command name, Click takes options and arguments in any order.
    while index < len(args):
        word = args[index]
        switch = switches.get(word)
        if switch is not None:
            if switch in flags:
                return None  # given twice: Click's business (it allows it; this path need not)
            flags[switch] = True
            index += 1
            continue
        if word.startswith("-"):
            following = _option(args, index, after)
            if following is None:
                return None
            index = following
            continue
        if not word or len(positional) == len(wanted):
            return None
        positional.append(word)
        index += 1
    if len(positional) != len(wanted):
        return None
    return HotCommand(words, before, after, dict(zip(wanted, positional, strict=True)), flags)


def _options(args: Sequence[str], index: int, given: dict[str, Any]) -> int | None:
    """The options before the command name: the index of the first other word, or None."""
    while index < len(args) and args[index].startswith("-"):
        following = _option(args, index, given)
        if following is None:
            return None
        index = following
    return index


def _option(args: Sequence[str], index: int, given: dict[str, Any]) -> int | None:
    """Read the option at ``args[index]`` into ``given``: the index after it, or None when it is
    not one this path serves as Click would read it."""
    word = args[index]
    if len(word) > 2 and word[0] == "-" and word[1:] == "v" * (len(word) - 1):
        given["verbose"] = given.get("verbose", 0) + len(word) - 1  # -vv: Click's short cluster
        return index + 1
    flag, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
    name = GLOBAL_OPTIONS.get(flag)
    if name is None:
        return None
    if name in COUNTED:
        if equals:
            return None
        given[name] = given.get(name, 0) + 1
        return index + 1
    if not equals:
        index += 1
        if index == len(args) or args[index].startswith("-"):
            return None
        value = args[index]
    # Click refuses one option twice in one place (qlikm2m/commands/command_classes.py).
    if name in given or (name == "output_format" and value not in OUTPUT_FORMATS):
        return None
    given[name] = value
    return index + 1


def main(args: Sequence[str] | None = None, runtime: Runtime | None = None) -> int | None:
    """Run ``args`` (default: ``sys.argv[1:]``) when they are a hot command line and return its
    exit code, as ``qlikm2m.cli.main`` would; None, having done nothing, when they are not."""
    import os

    hot = recognise(list(sys.argv[1:] if args is None else args), os.environ)
    if hot is None:
        return None
    from qlikm2m.boundary import run_command

    return run_command(hot.run, runtime)
