"""`qlikm2m completion SHELL` prints each shell's script, and completion completes: commands,
context names from the contexts file, app ids from the cache `apps ls` leaves (never the network).

Bash runs for real with the script loaded; zsh, fish and PowerShell are driven through the same
protocol their scripts speak (`_QLIKM2M_COMPLETE=complete_<shell>` and `_TYPER_COMPLETE_ARGS`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_sandbox import RunQlikm2m

from qlikm2m.completion_cache import APP_IDS_TTL, app_ids_path, recent_app_ids
from qlikm2m.sandbox import Sandbox

SHELL_MARKERS = {
    "bash": "complete -o default -F _qlikm2m_completion qlikm2m",
    "zsh": "compdef _qlikm2m_completion qlikm2m",
    "fish": "complete --command qlikm2m",
    "powershell": "Register-ArgumentCompleter -Native -CommandName qlikm2m",
}


@pytest.fixture
def on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a `qlikm2m` running this checkout with this interpreter."""
    folder = tmp_path / "bin"
    folder.mkdir()
    launcher = folder / "qlikm2m"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qlikm2m "$@"\n')
    launcher.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _create_contexts(run: RunQlikm2m, env: dict[str, str], *names: str) -> None:
    for name in names:
        done = run(
            "context", "create", name, "--server", "https://tenant.example",
            "--client-id", "id-1", "--client-secret-stdin", "--secret-storage", "file",
            "--no-verify", env=env, input="throwaway-secret-value\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("shell", sorted(SHELL_MARKERS))
def test_each_shell_gets_its_own_script(run_qlikm2m: RunQlikm2m, shell: str) -> None:
    done = run_qlikm2m("completion", shell, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert SHELL_MARKERS[shell] in done.stdout
    for other, marker in SHELL_MARKERS.items():
        if other != shell:
            assert marker not in done.stdout


def test_an_unknown_shell_is_a_usage_error(run_qlikm2m: RunQlikm2m) -> None:
    done = run_qlikm2m("completion", "tcsh", env=dict(os.environ))
    assert done.returncode == 2
    assert done.stdout == ""


@pytest.mark.parametrize("option", ["--show-completion", "--install-completion"])
def test_the_old_completion_options_name_the_new_command(
    run_qlikm2m: RunQlikm2m, option: str
) -> None:
    done = run_qlikm2m(option, env=dict(os.environ))
    assert done.returncode == 2
    assert "`qlikm2m completion SHELL`" in done.stderr
    assert done.stdout == ""


def _bash_complete(env: dict[str, str], *words: str) -> list[str]:
    """Load the bash script into a real bash and press <TAB> after ``words``."""
    assert shutil.which("bash")
    script = (
        'source <(qlikm2m completion bash)\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        '_qlikm2m_completion qlikm2m\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )  # fmt: skip
    done = subprocess.run(
        ["bash", "--norc", "-c", script, "bash", "qlikm2m", *words],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_aliases_stay_hidden(on_path: dict[str, str]) -> None:
    assert _bash_complete(on_path, "con") == ["context"]
    apps = _bash_complete(on_path, "apps", "")
    assert apps[:2] == ["ls", "get"]
    assert "export" in apps
    assert "list" not in apps  # the qlik-cli alias of ls
    assert "app" not in _bash_complete(on_path, "ap")


def test_bash_completes_context_names_without_the_keyring(
    run_qlikm2m: RunQlikm2m, on_path: dict[str, str]
) -> None:
    _create_contexts(run_qlikm2m, on_path, "prod", "staging", "sandbox")
    # An unusable keyring backend: completion must not need one.
    env = {**on_path, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert _bash_complete(env, "-c", "") == ["prod", "sandbox", "staging"]
    assert _bash_complete(env, "user", "me", "--context", "s") == ["sandbox", "staging"]


def test_a_broken_contexts_file_completes_nothing(on_path: dict[str, str]) -> None:
    folder = Path(on_path["QLIKM2M_CONFIG_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contexts.toml").write_text("not = [valid\n")
    assert _bash_complete(on_path, "-c", "") == []


def test_app_ids_complete_from_what_apps_ls_printed(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, cli_env: dict[str, str], on_path: dict[str, str]
) -> None:
    listed = run_qlikm2m("apps", "ls", "--limit", "4")
    assert listed.returncode == 0, listed.stderr
    ids = [record["resourceId"] for record in json.loads(listed.stdout)]
    path = app_ids_path(cli_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    requests_before = sandbox.counters()

    env = {**on_path, **{k: cli_env[k] for k in ("QLIKM2M_CACHE_DIR", "QLIKM2M_CONFIG_DIR")}}
    assert sorted(_bash_complete(env, "reload", "")) == sorted(ids)
    assert _bash_complete(env, "apps", "get", ids[0][:6]) == [
        app_id for app_id in ids if app_id.startswith(ids[0][:6])
    ]
    # Completion itself asked the tenant nothing.
    assert sandbox.counters() == requests_before


def test_app_ids_older_than_the_ttl_are_not_offered(tmp_path: Path) -> None:
    env = {"QLIKM2M_CACHE_DIR": str(tmp_path)}
    written = time.time() - APP_IDS_TTL - 1
    app_ids_path(env).write_text(json.dumps({"written": written, "apps": [["a1", "Sales"]]}))
    assert recent_app_ids(env) == []
    assert recent_app_ids(env, now=written + 1) == [("a1", "Sales")]


@pytest.mark.parametrize(
    ("shell", "extra"),
    [
        ("zsh", {}),
        ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"}),
        ("powershell", {"_TYPER_COMPLETE_WORD_TO_COMPLETE": "p"}),
    ],
)
def test_other_shells_protocol_completes_context_names(
    run_qlikm2m: RunQlikm2m, on_path: dict[str, str], shell: str, extra: dict[str, str]
) -> None:
    _create_contexts(run_qlikm2m, on_path, "prod", "qa")
    # The words the script hands over, as each script builds them.
    line = "qlikm2m -c p"
    env = {
        **on_path,
        **extra,
        "_QLIKM2M_COMPLETE": f"complete_{shell}",
        "_TYPER_COMPLETE_ARGS": line,
    }
    done = subprocess.run(
        ["qlikm2m"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "prod" in done.stdout
    assert "qa" not in done.stdout


@pytest.mark.parametrize(
    "words",
    [
        ("context", "use"),
        ("context", "get"),
        ("context", "rm"),
        ("context", "rename"),
        ("context", "update"),
    ],
)
def test_context_commands_complete_stored_names(
    run_qlikm2m: RunQlikm2m, on_path: dict[str, str], words: tuple[str, ...]
) -> None:
    _create_contexts(run_qlikm2m, on_path, "prod", "qa")
    env = {**on_path, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert _bash_complete(env, *words, "p") == ["prod"]
    assert _bash_complete(env, *words, "") == ["prod", "qa"]
