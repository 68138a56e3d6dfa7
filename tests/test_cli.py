"""The error boundary: every outcome becomes a documented exit code and a one-line message."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import typer
import typer.main
from harness import make_runtime

from qlikm2m import __version__, cli
from qlikm2m.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ExitCode,
    KeyringError,
    NetworkError,
    QlikM2MError,
    UsageError,
)
from qlikm2m.redaction import register_secret
from qlikm2m.runtime import Runtime


def _built(app: typer.Typer) -> Callable[..., typer.Typer]:
    """A stand-in for cli.build_app that hands out ``app`` for every command line."""
    return lambda *args, **kwargs: app


def _app_raising(error: BaseException) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_show_locals=False)

    @app.callback()
    def root(
        ctx: typer.Context,
        verbose: int = typer.Option(0, "--verbose", "-v", count=True),
        output: str | None = typer.Option(None, "--output", "-o"),
    ) -> None:
        runtime = ctx.ensure_object(Runtime)
        runtime.verbose = verbose
        runtime.output_flag = output

    @app.command()
    def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("bad flag"), ExitCode.USAGE),
        (ConfigError("no server"), ExitCode.CONFIG),
        (AuthError("refused"), ExitCode.AUTH),
        (ApiError("not found"), ExitCode.API),
        (NetworkError("unreachable"), ExitCode.NETWORK),
        (KeyringError("locked"), ExitCode.KEYRING),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (RuntimeError("surprise"), ExitCode.UNEXPECTED),
    ],
)
def test_each_error_maps_to_its_exit_code_without_traceback(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, code: ExitCode
) -> None:
    monkeypatch.setattr(cli, "build_app", _built(_app_raising(error)))
    runtime = make_runtime()
    assert cli.main(["boom"], runtime) == code
    err = runtime.err
    assert "Traceback" not in err
    assert err.strip(), "every failure says something on stderr"
    assert runtime.stdout.getvalue() == ""  # type: ignore[attr-defined]


def test_message_and_hint_are_printed_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "build_app", _built(_app_raising(ConfigError("No tenant.", hint="Set QLIK_SERVER.")))
    )
    runtime = make_runtime()
    assert cli.main(["boom"], runtime) == ExitCode.CONFIG
    assert runtime.stderr.getvalue() == "error: No tenant.\nhint: Set QLIK_SERVER.\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "code"),
    [(AuthError("refused"), ExitCode.AUTH), (ApiError("not found"), ExitCode.API)],
)
def test_an_expected_error_gets_a_traceback_only_with_vv(
    monkeypatch: pytest.MonkeyPatch, error: QlikM2MError, code: ExitCode
) -> None:
    # -v is the HTTP trace; a traceback of an expected error is noise there, kept for -vv.
    monkeypatch.setattr(cli, "build_app", _built(_app_raising(error)))
    once, twice = make_runtime(), make_runtime()
    assert cli.main(["-v", "boom"], once) == code
    assert cli.main(["-vv", "boom"], twice) == code
    assert "Traceback" not in once.stderr.getvalue()  # type: ignore[attr-defined]
    assert f"error: {error.message}" in once.stderr.getvalue()  # type: ignore[attr-defined]
    assert "Traceback" in twice.stderr.getvalue()  # type: ignore[attr-defined]


def test_verbose_adds_a_traceback_to_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "build_app", _built(_app_raising(RuntimeError("surprise"))))
    runtime = make_runtime()
    assert cli.main(["-v", "boom"], runtime) == ExitCode.UNEXPECTED
    assert "Traceback" in runtime.stderr.getvalue()  # type: ignore[attr-defined]


def test_explicit_json_output_makes_errors_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "build_app", _built(_app_raising(ApiError("gone", hint="check the id")))
    )
    runtime = make_runtime()
    assert cli.main(["-o", "json", "boom"], runtime) == ExitCode.API
    body = json.loads(runtime.err)
    assert body == {
        "error": {"kind": "api", "message": "gone", "exitCode": 5, "hint": "check the id"}
    }


def test_json_errors_also_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "build_app", _built(_app_raising(NetworkError("down"))))
    runtime = make_runtime(QLIKM2M_OUTPUT="json")
    assert cli.main(["boom"], runtime) == ExitCode.NETWORK
    assert json.loads(runtime.stderr.getvalue())["error"]["exitCode"] == 6  # type: ignore[attr-defined]


def test_registered_secrets_are_redacted_from_messages_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cr3t-value-for-redaction"
    register_secret(secret)
    monkeypatch.setattr(cli, "build_app", _built(_app_raising(RuntimeError(f"leaked {secret}"))))
    runtime = make_runtime()
    assert cli.main(["-v", "boom"], runtime) == ExitCode.UNEXPECTED
    err = runtime.err
    assert "Traceback" in err
    assert secret not in err


def test_unknown_option_is_a_usage_error() -> None:
    runtime = make_runtime()
    assert cli.main(["--no-such-option"], runtime) == ExitCode.USAGE
    assert "No such option" in runtime.err


def test_version_in_a_subprocess_and_as_module() -> None:
    for argv in (
        [sys.executable, "-m", "qlikm2m", "--version"],
        [
            sys.executable,
            "-c",
            "from qlikm2m.cli import main; raise SystemExit(main())",
            "--version",
        ],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"qlikm2m {__version__}"


def test_base_error_default_is_unexpected() -> None:
    assert QlikM2MError("x").exit_code == ExitCode.UNEXPECTED


def _group_name(group: Any) -> str:
    # A group may be named by add_typer(name=...) or by its Typer(name=...).
    return group.name if isinstance(group.name, str) else group.typer_instance.info.name


def test_a_named_command_builds_only_its_own_group() -> None:
    app = cli.build_app(["-v", "-o", "json", "--context", "prod", "user", "me"])
    assert [_group_name(group) for group in app.registered_groups] == ["user"]
    assert app.registered_commands == []


def test_a_hyphenated_command_builds_only_its_own_group() -> None:
    app = cli.build_app(["data-files", "ls"])
    assert [_group_name(group) for group in app.registered_groups] == ["data-files"]


@pytest.mark.parametrize(
    "args", [None, [], ["--help"], ["-h", "user"], ["usr", "me"], ["-o", "user"]]
)
def test_root_help_and_unknown_names_get_the_whole_tree(args: list[str] | None) -> None:
    app = cli.build_app(args)
    names = {_group_name(g) for g in app.registered_groups} | {
        c.name for c in app.registered_commands
    }
    # A command with a hyphen (data-files) lives in a module with an underscore.
    assert {name.replace("-", "_") for name in names} == set(cli.COMMAND_MODULES)


def _root_help(args: list[str], *, listing_only: bool) -> str:
    import contextlib
    import io

    command = typer.main.get_command(
        cli.build_app(args, rich_help=False, listing_only=listing_only)
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            command.main(args, prog_name="qlikm2m", standalone_mode=False)
        except typer.Exit:
            pass
        except typer.TyperException as error:  # no arguments: Click raises the help as usage
            out.write(error.format_message())
    return out.getvalue()


def _short_tree(app: typer.Typer) -> bool:
    stand_ins = {c.callback is cli._listed_only for c in app.registered_commands}
    assert len(stand_ins) <= 1  # all stand-ins or none
    return stand_ins == {True}


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"]])
def test_a_plain_root_help_lists_the_whole_tree_without_building_it(args: list[str]) -> None:
    # ROOT_LISTING stands in for every group's commands in a piped root help: it must print
    # exactly what the whole tree prints, so a new command or a changed summary fails here.
    whole = _root_help(args, listing_only=False)
    assert "data-files" in whole
    assert _root_help(args, listing_only=True) == whole
    assert _short_tree(cli.build_app(args, rich_help=False))


@pytest.mark.parametrize(
    "args", [["--help"], ["-h"], ["tenant", "--help"], ["help"], ["-v", "--help"], ["nope"]]
)
def test_only_a_plain_root_help_takes_the_short_tree(args: list[str]) -> None:
    assert not _short_tree(cli.build_app(args, rich_help=True))
    if args not in (["--help"], ["-h"]):
        assert not _short_tree(cli.build_app(args, rich_help=False))


def test_each_invocation_builds_its_own_tree() -> None:
    # No app object outlives a run: a registry keyed by a live app once told a fresh app (at a
    # reused address) it already had every group. Each build now starts from nothing.
    first = cli.build_app(["user", "me"])
    second = cli.build_app(["tenant", "me"])
    assert first is not second
    assert [_group_name(g) for g in first.registered_groups] == ["user"]
    assert [_group_name(g) for g in second.registered_groups] == ["tenant"]
    assert not hasattr(cli, "app")


def test_two_runs_in_one_process_each_see_their_own_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--version"]) == 0
    assert cli.main(["help"]) == 0
    assert "tenant" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["reload", "--wait"], "Missing argument 'APP_ID...'."),
        (["tenant", "me", "--bogus"], "No such option: --bogus"),
        (["-o", "bogus", "tenant", "me"], "'bogus' is not one of"),
    ],
)
def test_usage_errors_keep_the_error_contract(args: list[str], said: str) -> None:
    runtime = make_runtime()
    assert cli.main(args, runtime) == ExitCode.USAGE
    lines = runtime.stderr.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ")
    assert said in lines[0]
    assert lines[1].startswith("hint: See `qlikm2m")
    assert len(lines) == 2
    as_json = make_runtime(QLIKM2M_OUTPUT="json")
    assert cli.main(args, as_json) == ExitCode.USAGE
    [line] = as_json.stderr.getvalue().splitlines()  # type: ignore[attr-defined]
    error = json.loads(line)["error"]
    assert (error["kind"], error["exitCode"]) == ("usage", 2)
    assert said in error["message"]
