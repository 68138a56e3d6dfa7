"""The Python library end to end against the HTTPS sandbox, through its public names only.

The examples of docs/library.md are extracted and run as written; processes are real, so the
token cache is shared the way scripts and the CLI share it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import qlikm2m
from qlikm2m.sandbox import Sandbox

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
TOKEN = "POST /oauth/token"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def _context_only_env(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> dict[str, str]:
    """An environment without QLIK_* settings whose current context `prod` is the sandbox."""
    created = run_qlikm2m(
        "context",
        "create",
        "prod",
        "--server",
        sandbox.url,
        "--client-id",
        sandbox.client_id,
        "--client-secret-stdin",
        "--ca-bundle",
        sandbox.ca_bundle or "",
        "--secret-storage",
        "file",
        "--no-verify",
        "--use",
        input=sandbox.client_secret + "\n",
    )
    assert created.returncode == 0, created.stderr
    return {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}


def test_the_docs_have_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.parametrize("index", range(len(_examples())))
def test_each_example_in_the_docs_runs(
    index: int, sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    code = _examples()[index]
    context_env = _context_only_env(sandbox, cli_env, run_qlikm2m)
    # From the environment (CI) unless the example names a context; from a stored context always.
    settings = [context_env] if 'Client("prod")' in code else [cli_env, context_env]
    for env in settings:
        done = _python(code, env)
        assert done.returncode == 0, f"{code}\n{done.stderr}"
        assert done.stdout.strip(), code
        assert sandbox.client_secret not in done.stdout + done.stderr
    # Environment and context name the same client: one token for all the runs.
    assert sandbox.count(TOKEN) <= 2


def test_two_scripts_and_a_cli_command_share_one_token(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    script = "import qlikm2m; print(qlikm2m.token())"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=cli_env, stdout=subprocess.PIPE, text=True
        ),
        subprocess.Popen(
            [sys.executable, "-c", script], env=cli_env, stdout=subprocess.PIPE, text=True
        ),
        subprocess.Popen(
            [sys.executable, "-m", "qlikm2m", "auth", "token"],
            env=cli_env,
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    tokens = set()
    for process in started:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        tokens.add(out.strip())
    assert len(tokens) == 1
    assert sandbox.count(TOKEN) == 1


@pytest.fixture
def environment(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in cli_env.items():
        if name.startswith("QLIK"):
            monkeypatch.setenv(name, value)
    return cli_env


def test_client_reads_lists_and_follows_redirects(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    with qlikm2m.Client() as qlik:
        assert qlik.server == sandbox.url
        assert qlik.context is None
        assert qlik.get("v1/users/me")["clientId"] == sandbox.client_id
        items = list(qlik.paginate("v1/items", {"limit": "7"}))
        assert len(items) == sandbox.config.items
        assert len({item["id"] for item in items}) == len(items)
        assert qlik.token() == qlikm2m.token()
    # 50 items by 7: eight pages, one token.
    assert sandbox.count("GET /api/v1/items") == 8
    assert sandbox.count(TOKEN) == 1


def test_client_errors_are_the_clis(sandbox: Sandbox, environment: dict[str, str]) -> None:
    with qlikm2m.Client() as qlik, pytest.raises(qlikm2m.ApiError) as caught:
        qlik.get("v1/items/no-such-item")
    assert int(caught.value.exit_code) == 5
    with pytest.raises(qlikm2m.ConfigError):
        qlikm2m.Client(env={})
    with pytest.raises(qlikm2m.AuthError):
        qlikm2m.Client(env={**environment, "QLIK_CLIENT_SECRET": "wrong-0123456789"}).token()


def test_client_retries_after_429_within_the_budget(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    sandbox.force(status=429, headers={"retry-after": "1"}, match="GET /api/v1/spaces")
    with qlikm2m.Client() as qlik:
        assert len(qlik.get("v1/spaces")["data"]) > 0
    assert sandbox.count("GET /api/v1/spaces") == 2


def test_session_sends_the_token_and_follows_me_redirects(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    with qlikm2m.Client() as qlik:
        http = qlik.session()
        response = http.get(qlik.url("v1/tenants/me"))
        assert response.status_code == 200
        assert [step.status_code for step in response.history] == [302]
        assert response.json()["id"]


def test_session_remints_once_after_a_401(sandbox: Sandbox, environment: dict[str, str]) -> None:
    first = qlikm2m.token()
    sandbox.revoke_all()
    with qlikm2m.Client() as qlik:
        response = qlik.session().get(qlik.url("v1/spaces"))
        assert response.status_code == 200
        assert 401 in [step.status_code for step in response.history]
        assert qlik.token() != first
    assert sandbox.count(TOKEN) == 2


def test_session_gives_up_after_the_second_401(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    qlikm2m.token()
    sandbox.force(status=401, match="GET /api/v1/spaces", times=2)
    with qlikm2m.Client() as qlik:
        response = qlik.session().get(qlik.url("v1/spaces"))
    assert response.status_code == 401
    assert sandbox.count(TOKEN) == 2
    assert sandbox.count("GET /api/v1/spaces") == 2


def test_session_honours_retry_after(sandbox: Sandbox, environment: dict[str, str]) -> None:
    sandbox.force(status=429, headers={"retry-after": "1"}, match="GET /api/v1/spaces")
    with qlikm2m.Client() as qlik:
        response = qlik.session().get(qlik.url("v1/spaces"))
    assert response.status_code == 200
    assert [step.status_code for step in response.history] == [429]
    assert sandbox.count("GET /api/v1/spaces") == 2


def test_session_keeps_the_token_on_the_tenants_origin(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    # localhost is the same sandbox under another origin: a redirect there, or a request there,
    # goes without the token, and the 401 it earns is not answered with one.
    elsewhere = sandbox.url.replace("127.0.0.1", "localhost")
    with qlikm2m.Client() as qlik:
        http = qlik.session()
        direct = http.get(f"{elsewhere}/api/v1/spaces")
        assert direct.status_code == 401
        sandbox.force(location=f"{elsewhere}/api/v1/spaces", match="GET /api/v1/users/me")
        redirected = http.get(qlik.url("v1/users/me"))
        assert redirected.status_code == 401
        assert redirected.request.headers.get("Authorization") is None
    assert sandbox.count(TOKEN) == 1


def test_the_public_api_is_lazy_and_listed() -> None:
    for name in qlikm2m.__all__:
        assert getattr(qlikm2m, name) is not None
    with pytest.raises(AttributeError):
        _ = qlikm2m.no_such_name  # type: ignore[attr-defined]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, qlikm2m; print(sorted(m for m in sys.modules if m.startswith(('qlikm2m.', 'requests'))))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(os.environ),
    )
    assert done.stdout.strip() == "[]"
