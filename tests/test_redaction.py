"""The redaction safety net."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer
from harness import make_runtime

from qlikm2m import cli
from qlikm2m.errors import ExitCode, UsageError
from qlikm2m.redaction import mask, redact, register_secret
from qlikm2m.runtime import open_run


def _built(app: typer.Typer) -> Callable[..., typer.Typer]:
    """A stand-in for cli.build_app that hands out ``app`` for every command line."""
    return lambda *args, **kwargs: app


def test_registered_values_are_masked_everywhere_longest_first() -> None:
    register_secret("abcdefgh")
    register_secret("abcdefgh-ijkl")
    assert redact("x abcdefgh-ijkl y abcdefgh z") == "x *** y *** z"


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc") == "abc"


def test_mask_shows_only_the_tail_of_long_values() -> None:
    assert mask(None) == ""
    assert mask("short-secret") == "***"
    assert mask("a-very-long-client-secret-1234") == "***1234"


def test_a_run_forgets_what_it_registered_when_it_ends() -> None:
    with open_run():
        register_secret("keyring-run-one")
        assert redact("keyring-run-one") == "***"
    assert redact("keyring-run-one") == "keyring-run-one"


def test_a_run_masks_what_its_caller_registered_but_not_what_a_sibling_did() -> None:
    register_secret("caller-secret")
    with open_run():
        register_secret("sibling-secret")
    with open_run():
        assert redact("caller-secret sibling-secret") == "*** sibling-secret"


def test_one_cli_run_does_not_mask_the_next_runs_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # The leak seen on a fresh clone: an earlier in-process run had registered "http://" (or
    # "keyring") and a later, unrelated run's message came out as "***".
    app = typer.Typer()

    @app.command()
    def say(words: str, secret: str = "") -> None:
        register_secret(secret)
        raise UsageError(f"you said {words}")

    @app.callback()
    def root() -> None:
        pass

    monkeypatch.setattr(cli, "build_app", _built(app))
    first, second = make_runtime(), make_runtime()
    assert cli.main(["say", "https://", "--secret", "https://"], first) == ExitCode.USAGE
    assert first.err == "error: you said ***\n"
    assert cli.main(["say", "https://"], second) == ExitCode.USAGE
    assert second.err == "error: you said https://\n"
