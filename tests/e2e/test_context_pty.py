"""`context init` driven in a real pseudo-terminal (pexpect), against the sandbox over HTTPS.

These tests store the secret with ``--secret-storage file`` so that they run on any machine; the
same dialogue against the real Secret Service is in test_context_keyring.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from qlikm2m.contexts import contexts_path, load_contexts
from qlikm2m.secretstore import secret_file_path

TIMEOUT = 30

Spawn = Callable[..., pexpect.spawn]


def default_signals() -> None:
    """Undo dispositions the test process may have set (ignored ones survive exec): Ctrl-C must
    reach the child as a person's would."""
    for signum in (signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def pty_env() -> dict[str, str]:
    env = dict(os.environ)
    # A person at a terminal: CI would (rightly) switch every prompt off.
    env.pop("CI", None)
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def spawn(pty_env: dict[str, str]) -> Spawn:
    children: list[pexpect.spawn] = []

    def start(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "qlikm2m", *args],
            env=env or pty_env,
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 200),
            preexec_fn=default_signals,
        )
        # Everything the terminal showed, for checks that a secret was never echoed.
        child.logfile_read = io.StringIO()
        children.append(child)
        return child

    yield start  # type: ignore[misc]
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the end; the exit status and everything the terminal showed after the prompts."""
    child.expect(pexpect.EOF)
    rest = child.before or ""
    child.close()
    return child.exitstatus, rest


def transcript(child: pexpect.spawn) -> str:
    log = child.logfile_read
    assert isinstance(log, io.StringIO)
    return log.getvalue()


# qlik-cli's question, with the default shown after it.
AO = "A/O/K? (API key, OAuth client secret, or private Key) [O]:"


def host_port(sandbox: Any) -> str:
    return str(sandbox.url).removeprefix("https://")


def nothing_saved(isolated_dirs: dict[str, Path]) -> bool:
    found = [
        path
        for folder in (isolated_dirs["config"], isolated_dirs["cache"])
        if folder.exists()
        for path in folder.rglob("*")
        if path.is_file()
    ]
    return found == []


def test_init_happy_path_in_a_terminal(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline(host_port(sandbox))  # no scheme: https:// is added
    child.expect_exact(AO)
    child.sendline("")  # the default: OAuth
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect_exact("Authenticated as Sandbox M2M client")
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    # The two sentences are the whole answer at a terminal: no JSON record after them.
    assert "{" not in rest
    assert "made it the current context" in rest
    env = dict(os.environ)
    loaded = load_contexts(env)
    name = host_port(sandbox)
    assert loaded.current == name
    context = loaded.contexts[name]
    assert context.server == sandbox.url
    assert context.client_id == sandbox.client_id
    assert context.ca_bundle == sandbox.ca_bundle
    secret_file = secret_file_path(name, env)
    assert secret_file.read_text() == sandbox.client_secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # Hidden input: the secret was never echoed back to the terminal (the client id was).
    assert sandbox.client_id in transcript(child)
    assert sandbox.client_secret not in transcript(child)
    assert sandbox.count("POST /oauth/token") == 1


def test_init_private_key_dialogue(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from keys_support import key_pair

    from qlikm2m.assertion import thumbprint

    pair = key_pair("ES384")
    sandbox.add_public_key({**pair.public_jwk, "kid": thumbprint(pair.public_jwk)})
    passphrase = "pty-key-passphrase-0123456789"
    key_file = tmp_path / "bot.pem"
    key_file.write_text(pair.pem(password=passphrase.encode()))
    child = spawn("context", "init", "bot", "--ca-bundle", sandbox.ca_bundle, "--secret-storage",
                  "file")  # fmt: skip
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("k")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Private key file:")
    child.sendline(str(tmp_path / "missing.pem"))  # a typo: asked again
    child.expect_exact("Private key file:")
    child.sendline(str(key_file))
    child.expect_exact("Passphrase of the private key:")
    child.sendline(passphrase)
    child.expect_exact("Authenticated as Sandbox M2M client")
    code, rest = finish(child)
    assert code == 0, rest
    assert "its private key is in the file" in rest
    env = dict(os.environ)
    context = load_contexts(env).contexts["bot"]
    assert (context.credential_type, context.key_alg) == ("private_key", "ES384")
    assert context.key_id == thumbprint(pair.public_jwk)
    stored = secret_file_path("bot", env).read_text()
    assert "PRIVATE KEY" in stored
    assert "ENCRYPTED" not in stored
    assert passphrase not in transcript(child)
    for line in pair.pem().splitlines()[1:-1]:
        assert line not in transcript(child)


def test_init_api_key_dialogue(spawn: Spawn, sandbox: Any) -> None:
    child = spawn(
        "context", "init", "key", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file"
    )
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("A")
    child.expect_exact("API-key:")
    child.sendline(sandbox.api_key)
    code, rest = finish(child)
    assert code == 0, rest
    assert sandbox.api_key not in transcript(child)
    assert load_contexts(dict(os.environ)).contexts["key"].auth_type == "apikey"


def test_flags_pre_answer_the_prompts(spawn: Spawn, sandbox: Any) -> None:
    child = spawn(
        "context", "init", "pre", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file",
    )  # fmt: skip
    # Only the secret is left to ask, hidden.
    child.expect_exact("Client Secret:")
    assert "Enter tenant url" not in (child.before or "")
    child.sendline(sandbox.client_secret)
    code, rest = finish(child)
    assert code == 0, rest


def test_asking_for_json_at_a_terminal_prints_the_record(spawn: Spawn, sandbox: Any) -> None:
    child = spawn(
        "-o", "json", "context", "init", "rec", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file",
    )  # fmt: skip
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    record = json.loads(rest[rest.index("{") :])
    assert (record["name"], record["verified"]) == ("rec", True)


def test_wrong_secret_is_asked_again_then_exit_4_and_saves_nothing(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("O")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline("not-the-secret-0123456789")
    for _ in range(2):
        # Only what was wrong is asked again: the client id (Enter keeps it) and the secret.
        child.expect_exact("refused")
        child.expect_exact(f"Client ID [{sandbox.client_id}]:")
        child.sendline("")
        child.expect_exact("Client Secret:")
        child.sendline("not-the-secret-0123456789")
    code, rest = finish(child)
    assert code == 4
    assert "refused" in rest
    assert "not-the-secret-0123456789" not in transcript(child)
    assert transcript(child).count("Enter tenant url:") == 1
    assert sandbox.count("POST /oauth/token") == 3
    assert nothing_saved(isolated_dirs)


def test_after_a_wrong_secret_only_the_secret_is_asked_again(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline("not-the-secret-0123456789")
    child.expect_exact(f"Client ID [{sandbox.client_id}]:")
    child.sendline("")
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    assert transcript(child).count("Enter tenant url:") == 1
    assert transcript(child).count("A/O/K?") == 1
    name = host_port(sandbox)
    assert load_contexts(dict(os.environ)).contexts[name].client_id == sandbox.client_id


def test_an_unreachable_url_is_asked_again_and_nothing_else(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    import socket

    with socket.socket() as unused:  # a loopback port nothing listens on
        unused.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{unused.getsockname()[1]}"
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline(dead)
    child.expect_exact(AO)
    child.sendline("O")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect_exact(f"Enter tenant url [{dead}]:")
    child.sendline(sandbox.url)
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    shown = transcript(child)
    assert shown.count("Client Secret:") == 1
    assert shown.count("A/O/K?") == 1
    assert load_contexts(dict(os.environ)).contexts[host_port(sandbox)].server == sandbox.url


def test_an_unusable_keyring_offers_the_file_store_before_any_question(
    spawn: Spawn, sandbox: Any, pty_env: dict[str, str]
) -> None:
    env = {**pty_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, env=env)
    child.expect_exact("No usable OS keyring")
    child.expect_exact("instead (--secret-storage file)? [y/N]:")
    assert "Enter tenant url" not in (child.before or "")
    child.sendline("y")
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    assert load_contexts(env).contexts[host_port(sandbox)].secret_storage == "file"


def test_declining_the_file_store_is_exit_7_before_any_question(
    spawn: Spawn, sandbox: Any, pty_env: dict[str, str], isolated_dirs: dict[str, Path]
) -> None:
    env = {**pty_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    child = spawn("context", "init", env=env)
    child.expect_exact("[y/N]:")
    child.sendline("")
    code, _ = finish(child)
    assert code == 7
    assert "Enter tenant url" not in transcript(child)
    assert nothing_saved(isolated_dirs)


@pytest.mark.parametrize("at", ["Enter tenant url:", "A/O/K?", "Client ID:", "Client Secret:"])
def test_ctrl_c_at_a_prompt_is_exit_130_and_saves_nothing(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path], at: str
) -> None:
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    answers = {
        "Enter tenant url:": sandbox.url,
        "A/O/K?": "O",
        "Client ID:": sandbox.client_id,
    }
    for prompt in ("Enter tenant url:", "A/O/K?", "Client ID:", "Client Secret:"):
        child.expect_exact(prompt)
        if prompt == at:
            child.sendintr()
            break
        child.sendline(answers[prompt])
    code, rest = finish(child)
    assert code == 130
    assert "interrupted" in rest
    assert "Traceback" not in rest
    assert nothing_saved(isolated_dirs)
    assert sandbox.count("POST /oauth/token") == 0


def test_no_input_with_missing_answers_fails_at_once(
    spawn: Spawn, isolated_dirs: dict[str, Path]
) -> None:
    child = spawn("--no-input", "context", "init")
    code, rest = finish(child)
    assert code == 2
    assert "--server" in rest
    assert "Enter tenant url" not in rest
    assert nothing_saved(isolated_dirs)


def test_ci_variable_also_turns_prompts_off(
    spawn: Spawn, pty_env: dict[str, str], sandbox: Any
) -> None:
    child = spawn("context", "init", "--server", sandbox.url, env={**pty_env, "CI": "true"})
    code, rest = finish(child)
    assert code == 2
    assert "--auth-type" in rest
    assert "CI is set" in rest


def test_existing_name_asks_before_overwriting(
    spawn: Spawn, sandbox: Any, run_qlikm2m: Any, pty_env: dict[str, str]
) -> None:
    created = run_qlikm2m(
        "context", "create", "prod", "--server", "old.example.com", "--oauth-client-id", "old",
        "--client-secret-stdin", "--no-verify", "--secret-storage", "file",
        env=pty_env, input="old-secret-0123456789\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    path = contexts_path(dict(os.environ))
    before = path.read_bytes()

    child = spawn("context", "init", "prod")
    child.expect_exact("Context 'prod' already exists. Overwrite it? [y/N]:")
    child.sendline("n")
    code, rest = finish(child)
    assert code == 2
    assert "nothing was changed" in rest
    assert path.read_bytes() == before

    child = spawn(
        "context", "init", "prod", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file"
    )
    child.expect_exact("Overwrite it? [y/N]:")
    child.sendline("y")
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact(AO)
    child.sendline("o")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    code, rest = finish(child)
    assert code == 0, rest
    assert load_contexts(dict(os.environ)).contexts["prod"].server == sandbox.url


def test_a_typo_in_the_url_is_asked_again(spawn: Spawn, sandbox: Any) -> None:
    child = spawn("context", "init", "--ca-bundle", sandbox.ca_bundle, "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline("ftp://nope.example.com")
    child.expect_exact("https only")
    child.expect_exact("Enter tenant url:")
    child.sendintr()
    code, _ = finish(child)
    assert code == 130


def test_ctrl_d_at_the_hidden_prompt_is_exit_130(
    spawn: Spawn, sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    child = spawn(
        "context", "init", "--server", sandbox.url, "--oauth-client-id", "c",
        "--secret-storage", "file",
    )  # fmt: skip
    child.expect_exact("Client Secret:")
    child.sendeof()
    code, rest = finish(child)
    assert code == 130, rest
    assert "unexpected" not in rest
    assert nothing_saved(isolated_dirs)


def test_a_loopback_url_without_scheme_to_a_plain_http_sandbox_switches_to_http(
    spawn: Spawn, make_sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    plain = make_sandbox(tls=False)
    host_port = plain.url.removeprefix("http://")
    child = spawn("context", "init", "--secret-storage", "file")
    child.expect_exact("Enter tenant url:")
    child.sendline(host_port)  # no scheme: https:// is tried first
    child.expect_exact(AO)
    child.sendline("")
    child.expect_exact("Client ID:")
    child.sendline(plain.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(plain.client_secret)
    child.expect_exact(f"answers in plain HTTP: using http://{host_port}")
    child.expect_exact("Saved context")
    code, rest = finish(child)
    assert code == 0, rest
    # Only the secret was typed once: nothing was asked again.
    assert transcript(child).count("Client Secret:") == 1
    assert load_contexts(dict(os.environ)).contexts[host_port].server == f"http://{host_port}"
