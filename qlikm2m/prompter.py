"""Questions to a person at the terminal, with no Typer: prompts on stderr, answers from the
runtime's stdin (hidden ones through getpass), and a clear error naming the flag to use when
nobody can answer (--no-input, CI, no terminal). Shared by the context and delivery commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime


class Prompter:
    """Asks on the terminal (prompts on stderr), or fails at once naming the flag to use."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def why_not(self) -> str:
        if self.runtime.no_input:
            return "--no-input was given"
        if self.runtime.in_ci:
            return "CI is set"
        return "stdin is not a terminal"

    def missing(self, what: str, flags: str) -> NoReturn:
        from qlikm2m.errors import UsageError

        raise UsageError(
            f"Missing {what}: pass {flags}.",
            hint=f"qlikm2m does not prompt here ({self.why_not()}).",
        )

    def ask(
        self,
        prompt: str,
        *,
        what: str,
        flags: str,
        hidden: bool = False,
        default: str | None = None,
    ) -> str:
        """The answer to ``prompt``; ``default`` (shown as ``[default]``) when Enter is pressed."""
        if not self.runtime.can_prompt:
            self.missing(what, flags)
        if default:
            prompt = f"{prompt.removesuffix(':')} [{default}]:"
        while True:
            value = self.read(prompt, hidden=hidden).strip()
            if value:
                return value
            if default:
                return default

    def confirm(self, question: str) -> bool:
        answer = self.read(f"{question} [y/N]:").strip().lower()
        return answer in ("y", "yes")

    def read(self, prompt: str, *, hidden: bool = False) -> str:
        stream = self.runtime.stderr
        if hidden:
            import getpass

            # getpass talks to the terminal itself and turns echo off; Ctrl-C propagates.
            try:
                value = getpass.getpass(prompt + " ", stream=stream)
            except EOFError:  # Ctrl-D: the person gave up, as with Ctrl-C
                stream.write("\n")
                raise KeyboardInterrupt from None
        else:
            stream.write(prompt + " ")
            stream.flush()
            value = self.runtime.stdin.readline()
            if not value:  # end of input (Ctrl-D): the person gave up
                stream.write("\n")
                raise KeyboardInterrupt
        return value

    def say(self, text: str) -> None:
        self.runtime.stderr.write(text + "\n")
        self.runtime.stderr.flush()
