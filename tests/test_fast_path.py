"""The launcher's fast path (qlikm2m/fast_path.py) is the Typer command line, only faster.

Three claims, each checked against the Typer command line that stays the definition:

- its tables name the same options and arguments as the Click commands (``HOT_COMMANDS``,
  ``GLOBAL_OPTIONS``);
- every command line it accepts reaches the command's run function with the same options and
  global settings as under Click, and every one it does not fully understand is left to Typer;
- run both ways against the sandbox over HTTPS, each hot form gives the same stdout, stderr and
  exit code, byte for byte, on success and on every kind of failure (only what differs from one
  request to the next, the elapsed milliseconds and Date headers of a ``-v`` trace and the
  sandbox's trace ids, and the frames of a traceback are left out).
"""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from fixtures_sandbox import sandbox_env
from harness import CliResult, RunCli, make_runtime

from qlikm2m import cli, fast_path
from qlikm2m.commands import api, api_run, tenant, tenant_run, user, user_run
from qlikm2m.sandbox.config import ClientSpec

HOT_FORMS = [("tenant", "me"), ("user", "me"), ("api", "v1/spaces")]

# --- the tables are the Click commands' ----------------------------------------------------------


def _click_command(words: tuple[str, ...]) -> tuple[Any, Any]:
    """The root group and the Click command that ``words`` name, as the CLI builds them."""
    root = typer.main.get_command(cli.build_app(list(words)))
    command = root
    for word in words:
        command = command.commands[word]
    return root, command


def _param_of(command: Any, word: str) -> Any:
    found = [p for p in command.params if word in (*p.opts, *p.secondary_opts)]
    assert len(found) == 1, (command.name, word)
    return found[0]


@pytest.mark.parametrize("words", list(fast_path.HOT_COMMANDS), ids=" ".join)
def test_the_tables_name_the_options_and_arguments_of_the_click_command(
    words: tuple[str, ...],
) -> None:
    root, command = _click_command(words)
    for place in (root, command):
        for word, name in fast_path.GLOBAL_OPTIONS.items():
            param = _param_of(place, word)
            assert param.name == name, (place.name, word)
            assert bool(param.count) == (name in fast_path.COUNTED)
            assert param.multiple is False
            if name == "output_format":
                assert tuple(param.type.choices) == fast_path.OUTPUT_FORMATS
    arguments = tuple(p.name for p in command.params if p.param_type_name == "argument")
    assert arguments == fast_path.HOT_COMMANDS[words]
    for word, name in fast_path.COMMAND_FLAGS.get(words, {}).items():
        param = _param_of(command, word)
        assert param.name == name
        assert param.is_flag
        assert not param.secondary_opts
        assert param.default is False
        # Only after the command name: the root does not take it.
        assert not [p for p in root.params if word in p.opts]


# --- what a command line means -----------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Each hot command's run function replaced, on both ways in, by one that records its
    options and the runtime's global settings."""
    calls: list[tuple[Any, ...]] = []

    def record(options: Any) -> None:
        runtime = options.runtime
        fields = {k: v for k, v in options._asdict().items() if k != "runtime"}
        # Every setting of the run (the global options and whatever else a command line sets).
        settings = {
            k: v for k, v in vars(runtime).items() if k not in ("env", "stdin", "stdout", "stderr")
        }
        calls.append((type(options).__qualname__, type(options).__module__, fields, settings))

    for module in (tenant, tenant_run, user, user_run):
        monkeypatch.setattr(module, "run_me", record)
    for module in (api, api_run):
        monkeypatch.setattr(module, "run_api", record)
    return calls


_OPTIONS = [
    ["-c", "ctx-a"],
    ["--context", "ctx-b"],
    ["--context=ctx-c"],
    ["--context="],
    ["-o", "yaml"],
    ["--output", "table"],
    ["--output=text"],
    ["-o", "json"],
    ["--query", "name"],
    ["--query=id"],
    ["--query="],
    ["-v"],
    ["-vv"],
    ["--verbose"],
]


API_SWITCHES = ["--paginate", "--ndjson"]


def _command_lines(count: int) -> Iterator[list[str]]:
    """Hot forms with global options before and after the command name (options repeated in
    one place too, which Click refuses), and the path before options as well as after."""
    chooser = random.Random(14)
    for _ in range(count):
        words = list(chooser.choice(HOT_FORMS))
        before = [w for o in chooser.sample(_OPTIONS, chooser.randint(0, 3)) for w in o]
        groups = chooser.sample(_OPTIONS, chooser.randint(0, 3))
        if chooser.random() < 0.2:
            groups.append(chooser.choice(_OPTIONS))  # maybe given twice
        if words[0] == "api":
            # api's own switches, anywhere among the options after the command name.
            groups += [[flag] for flag in chooser.sample(API_SWITCHES, chooser.randint(0, 2))]
            chooser.shuffle(groups)
        after = [w for o in groups for w in o]
        line = before + words + after
        if words[0] == "api" and after and chooser.random() < 0.5:
            line = [*before, "api", *after, words[1]]  # the path after options
        yield line


def test_each_command_line_the_fast_path_serves_means_the_same_under_click(
    recorded: list[tuple[Any, ...]],
) -> None:
    served = 0
    for args in _command_lines(300):
        if fast_path.recognise(args, {}) is None:
            continue
        served += 1
        code = cli.main(args, make_runtime())
        assert code == 0, args
        assert fast_path.main(args, make_runtime()) == 0, args
        typer_call, fast_call = recorded[-2:]
        assert fast_call == typer_call, args
        recorded.clear()
    assert served > 150  # most are served; the rest repeat an option in one place


def test_a_repeated_option_is_left_to_click_which_refuses_it(run_cli: RunCli) -> None:
    args = ["tenant", "me", "-o", "json", "-o", "yaml"]
    assert fast_path.recognise(args, {}) is None
    assert run_cli(*args).code == 2


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["tenant"],
        ["api"],
        ["--version"],
        ["tenant", "me", "--help"],
        ["-h", "user", "me"],
        ["api", "v1/spaces", "-h"],
        ["tenant", "me", "extra"],
        ["tenant", "-v", "me"],
        ["api", "v1/a", "v1/b"],
        ["api", ""],
        ["api", "-"],
        ["api", "--", "v1/spaces"],
        ["api", "v1/spaces", "-X", "POST"],
        ["api", "v1/spaces", "--paginate", "--paginate"],
        ["--paginate", "api", "v1/spaces"],
        ["api", "v1/spaces", "--paginate=true"],
        ["api", "v1/spaces", "--include"],
        ["tenant", "me", "--paginate"],
        ["user", "me", "--ndjson"],
        ["tenant", "me", "--server", "https://t.example.com"],
        ["--server", "https://t.example.com", "tenant", "me"],
        ["tenant", "me", "--no-input"],
        ["tenant", "me", "-o", "JSON"],
        ["tenant", "me", "-o", "xml"],
        ["tenant", "me", "--output="],
        ["tenant", "me", "-ojson"],
        ["tenant", "me", "-o=json"],
        ["tenant", "me", "-cname"],
        ["tenant", "me", "-vo", "json"],
        ["tenant", "me", "--verbose=2"],
        ["tenant", "me", "-c"],
        ["tenant", "me", "-c", "-v"],
        ["tenant", "me", "--query", "-x"],
        ["-c", "a", "-c", "b", "tenant", "me"],
        ["tenant", "me", "--query", "a", "--query=b"],
        ["tenants", "me"],
        ["app", "ls"],
        ["help", "tenant"],
    ],
)
def test_what_it_does_not_fully_understand_is_left_to_typer(args: list[str]) -> None:
    assert fast_path.recognise(args, {}) is None
    assert fast_path.main(args, make_runtime()) is None


def test_shell_completion_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast_path.recognise(["tenant", "me"], {}) is not None
    assert fast_path.recognise(["tenant", "me"], {"_QLIKM2M_COMPLETE": "zsh_complete"}) is None
    monkeypatch.setenv("_QLIKM2M_COMPLETE", "bash_complete")
    assert fast_path.main(["tenant", "me"], make_runtime()) is None


# --- the same output both ways, against the sandbox ----------------------------------------------

_TIMINGS = re.compile(r"\(\d+ ms\)")
_DATES = re.compile(r"^<   Date: .*$", re.MULTILINE)
# The sandbox gives every answer a trace id of its own, as Qlik Cloud does.
_TRACE_IDS = re.compile(r'"traceId": "[0-9a-f]+"')


def _comparable(result: CliResult) -> tuple[int, str, str]:
    err = _TIMINGS.sub("(- ms)", result.err)
    err = _TRACE_IDS.sub('"traceId": "-"', _DATES.sub("<   Date: -", err))
    return result.code, result.out, err


def both_ways(run: RunCli, *args: str, **options: Any) -> CliResult:
    """Run ``args`` through Typer, then the fast path; they must give the same result."""
    through_typer = run(*args, **options)
    fast = run(*args, fast=True, **options)
    assert _comparable(fast) == _comparable(through_typer), args
    return fast


@pytest.fixture
def warm(sandbox_cli: RunCli) -> RunCli:
    """``sandbox_cli`` with a token already cached, so that every run compared is warm."""
    assert sandbox_cli("tenant", "me").code == 0
    return sandbox_cli


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["tenant", "me"], 0),
        (["user", "me"], 0),
        (["api", "v1/spaces"], 0),
        (["api", "/api/v1/users/me"], 0),
        (["tenant", "me", "-o", "yaml"], 0),
        (["tenant", "me", "-o", "table"], 0),
        (["-o", "text", "tenant", "me"], 0),
        (["user", "me", "--output=json"], 0),
        (["api", "-o", "table", "v1/spaces"], 0),
        (["tenant", "me", "--query", "name"], 0),
        (["--query", "data[].name", "api", "v1/spaces", "-o", "text"], 0),
        (["tenant", "me", "--query", "[["], 2),
        (["-o", "json", "user", "me", "--query", "[["], 2),
        (["-v", "tenant", "me"], 0),
        (["user", "me", "-vv"], 0),
        (["-v", "api", "v1/spaces", "--verbose"], 0),
        (["api", "v1/items?limit=7", "--paginate", "--ndjson"], 0),
        (["api", "--ndjson", "v1/items", "--paginate", "-o", "yaml"], 2),
        (["api", "v1/items?limit=20", "--paginate"], 0),
        (["api", "v1/items?limit=20", "--paginate", "-o", "table"], 0),
        (["api", "v1/items", "--paginate", "--query", "[0].name", "--ndjson"], 0),
        (["api", "v1/no-such-thing", "--paginate"], 5),
        (["api", "v1/no-such-thing"], 5),
        (["-o", "json", "api", "v1/no-such-thing"], 5),
        (["api", "v1/spaces/no-such-space", "-v"], 5),
        (["-c", "nowhere", "tenant", "me"], 3),
        (["user", "me", "--context=nowhere", "-o", "json"], 3),
    ],
)
def test_each_hot_form_gives_the_same_output_both_ways(
    warm: RunCli, args: list[str], code: int
) -> None:
    assert both_ways(warm, *args).code == code


def test_a_403_answer_is_the_same_both_ways(make_sandbox: Any, sandbox_cli: RunCli) -> None:
    sandbox = make_sandbox(
        extra_clients=(ClientSpec("plain", "plain-secret-value", may_manage_clients=False),)
    )
    env = {**sandbox_env(sandbox), "QLIK_CLIENT_ID": "plain"}
    env["QLIK_CLIENT_SECRET"] = "plain-secret-value"
    path = f"v1/oauth-clients/{sandbox.client_id}"
    for args in (["api", path], ["-o", "json", "api", path]):
        result = both_ways(sandbox_cli, *args, env=env)
        assert result.code == 5
        assert "403" in result.err or "Forbidden" in result.err


@pytest.mark.parametrize("extra", [[], ["-o", "json"]], ids=["text", "json"])
def test_refused_credentials_are_the_same_both_ways(
    sandbox_cli: RunCli, cli_env: dict[str, str], extra: list[str]
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-secret-0123456789"}
    for form in HOT_FORMS:
        assert both_ways(sandbox_cli, *form, *extra, env=env).code == 4


def test_no_credentials_are_the_same_both_ways(run_cli: RunCli) -> None:
    for form in HOT_FORMS:
        result = both_ways(run_cli, *form)
        assert result.code == 3
        assert "No credentials" in result.err


@pytest.mark.parametrize(
    "args", [["tenant", "me"], ["api", "v1/spaces", "-o", "json"], ["-o", "yaml", "user", "me"]]
)
def test_an_invalid_output_variable_is_refused_the_same_both_ways(
    warm: RunCli, cli_env: dict[str, str], args: list[str]
) -> None:
    result = both_ways(warm, *args, env={**cli_env, "QLIKM2M_OUTPUT": "xml"})
    assert result.code == 2
    assert "QLIKM2M_OUTPUT" in result.err


def test_the_output_variable_is_used_the_same_both_ways(
    warm: RunCli, cli_env: dict[str, str]
) -> None:
    result = both_ways(warm, "tenant", "me", env={**cli_env, "QLIKM2M_OUTPUT": "YAML"})
    assert result.out.startswith("id: ")


@pytest.mark.parametrize(
    ("raised", "code"), [(KeyboardInterrupt, 130), (EOFError, 130), (RuntimeError, 1)]
)
@pytest.mark.parametrize("verbose", [[], ["-v"], ["-vv"]], ids=["quiet", "v", "vv"])
def test_interrupts_and_unexpected_errors_end_the_same_both_ways(
    warm: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: type[BaseException],
    code: int,
    verbose: list[str],
) -> None:
    def fail(*args: Any) -> None:
        raise raised("boom")

    monkeypatch.setattr(tenant_run, "show_resource", fail)
    capsys.readouterr()
    results = []
    for fast in (False, True):
        result = warm("tenant", "me", *verbose, fast=fast)
        # Click ends an input that ran out with a blank line on the process's stderr.
        assert capsys.readouterr().err == ("\n" if raised is EOFError else "")
        results.append(result)
    through_typer, fast_result = results
    assert (
        (fast_result.code, fast_result.out)
        == (through_typer.code, through_typer.out)
        == (
            code,
            "",
        )
    )
    # A traceback's frames are those of the way in; the rest is the same.
    assert _without_traceback(fast_result.err) == _without_traceback(through_typer.err)
    has_traceback = bool(verbose) and raised is RuntimeError
    assert ("Traceback" in fast_result.err) == has_traceback
    assert ("Traceback" in through_typer.err) == has_traceback
    if has_traceback:
        assert fast_result.err.splitlines()[-3:] == through_typer.err.splitlines()[-3:]


def _without_traceback(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("error:", "hint:", "{"))]


def test_qlik_errors_get_their_traceback_at_vv_the_same_both_ways(warm: RunCli) -> None:
    through_typer = warm("api", "v1/no-such-thing", "-vv")
    fast = warm("api", "v1/no-such-thing", "-vv", fast=True)
    assert "Traceback" in through_typer.err
    assert "Traceback" in fast.err
    assert _without_traceback(fast.err) == _without_traceback(through_typer.err)
    assert fast.code == through_typer.code == 5


# --- the launcher, as a process ------------------------------------------------------------------

# The console script, forced one way or the other.
_LAUNCH = "import sys; from qlikm2m import launcher; sys.exit(launcher.run(fast={fast}))"


def _launch(args: list[str], env: dict[str, str], *, fast: bool, redirect: str = "") -> Any:
    script = f'"$0" -c "{_LAUNCH.format(fast=fast)}" "$@" {redirect}'
    return subprocess.run(
        ["sh", "-c", script, sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"], ids=["closed", "full"])
@pytest.mark.parametrize("form", HOT_FORMS, ids=" ".join)
def test_stdout_that_cannot_be_written_exits_10_the_same_both_ways(
    warm: RunCli, cli_env: dict[str, str], form: tuple[str, ...], redirect: str
) -> None:
    done = [_launch(list(form), cli_env, fast=fast, redirect=redirect) for fast in (False, True)]
    assert [(d.returncode, d.stdout, d.stderr) for d in done] == [
        (done[0].returncode, done[0].stdout, done[0].stderr)
    ] * 2
    assert done[0].returncode == 10
    assert "Could not write the output to stdout" in done[0].stderr


def test_the_console_script_serves_hot_forms_as_typer_does(
    warm: RunCli, cli_env: dict[str, str]
) -> None:
    for form, extra in itertools.product(HOT_FORMS, ([], ["-o", "yaml"])):
        done = [_launch([*form, *extra], cli_env, fast=fast) for fast in (False, True)]
        assert done[0].returncode == done[1].returncode == 0
        assert done[0].stdout == done[1].stdout
        assert done[0].stderr == done[1].stderr == ""


def test_an_option_the_fast_path_does_not_know_still_works(
    warm: RunCli, cli_env: dict[str, str], sandbox: Any
) -> None:
    args = ["tenant", "me", "--server", sandbox.url, "--no-input"]
    assert fast_path.recognise(args, cli_env) is None
    done = _launch(args, cli_env, fast=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == warm("tenant", "me").out


def test_sigterm_mid_request_stops_the_same_both_ways(
    warm: RunCli, cli_env: dict[str, str], sandbox: Any
) -> None:
    import signal
    import time

    results = []
    for fast in (False, True):
        sandbox.force(body={"id": "late"}, delay=5, match="GET /api/v1/users/me")
        before = sandbox.count("GET /api/v1/users/me")
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH.format(fast=fast), "user", "me"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while sandbox.count("GET /api/v1/users/me") == before:
                assert time.monotonic() < deadline, "the request never arrived"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        results.append((proc.returncode, out, err))
    assert results[0] == results[1]
    assert results[0][0] == 130
    assert "interrupted" in results[0][2]
