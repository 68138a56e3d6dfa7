"""Concurrency: 16 processes at once mixing context writes and tenant commands.

tests/e2e/test_context_files.py starts 16 identical creates and tests/e2e/test_ci_tokens.py 8
identical cold commands; here the kinds are mixed in one burst, on one contexts file and one
token cache: creates, updates, removals and a `use` beside `user me`/`tenant me` of two OAuth
clients (one of them also through a stored context). Nothing may be lost or torn, and each
credential set costs exactly one token request.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.contexts import Context, contexts_path, load_contexts, update_contexts
from qlikm2m.sandbox import ClientSpec, Sandbox
from qlikm2m.secretstore import secret_file_path, store_secret

SECOND_ID = "second-client-0123456789abcdef"
SECOND_SECRET = "second-client-secret-0123456789abcdefghij"


@pytest.fixture
def two_clients(make_sandbox: Any) -> Sandbox:
    sandbox: Sandbox = make_sandbox(
        extra_clients=(ClientSpec(client_id=SECOND_ID, client_secret=SECOND_SECRET),)
    )
    return sandbox


def _seed(env: dict[str, str], sandbox: Sandbox, names: list[str]) -> None:
    """Contexts of the first client, their secrets in 0600 files (the keyring is off here)."""
    contexts = [
        Context(
            name=name,
            server=sandbox.url,
            auth_type="oauth",
            client_id=sandbox.client_id,
            ca_bundle=sandbox.ca_bundle,
            comment="original",
            secret_storage="file",
        )
        for name in names
    ]
    for context in contexts:
        store_secret(context, sandbox.client_secret, env, interactive=False)

    def add_all(current: Any) -> Any:
        for context in contexts:
            current = current.with_context(context)
        return current.with_current(names[0])

    update_contexts(env, add_all)


@pytest.mark.slow
def test_sixteen_mixed_processes_lose_nothing_and_mint_once_per_client(
    two_clients: Sandbox, cli_env: dict[str, str]
) -> None:
    sandbox = two_clients
    base_env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}
    base_env["ABUSE_SECRET"] = sandbox.client_secret
    client_a = {
        **base_env,
        "QLIK_SERVER": sandbox.url,
        "QLIK_CLIENT_ID": sandbox.client_id,
        "QLIK_CLIENT_SECRET": sandbox.client_secret,
        "QLIK_CA_BUNDLE": sandbox.ca_bundle or "",
    }
    client_b = {**client_a, "QLIK_CLIENT_ID": SECOND_ID, "QLIK_CLIENT_SECRET": SECOND_SECRET}
    kept, removed = [f"base-{n}" for n in range(4)], ["gone-0", "gone-1"]
    _seed(base_env, sandbox, kept + removed)

    create = ["context", "create", "--server", sandbox.url, "--oauth-client-id",
              sandbox.client_id, "--client-secret-env", "ABUSE_SECRET", "--secret-storage",
              "file", "--no-verify"]  # fmt: skip
    jobs: list[tuple[list[str], dict[str, str]]] = []
    jobs += [([*create[:2], f"new-{n}", *create[2:]], base_env) for n in range(4)]
    jobs += [(["context", "update", f"base-{n}", "--comment", f"updated-{n}"], base_env) for n in range(4)]  # fmt: skip
    jobs += [(["context", "rm", name], base_env) for name in removed]
    jobs += [(["context", "use", "base-1"], base_env)]
    jobs += [(["user", "me"], client_a) for _ in range(2)]
    jobs += [(["--context", "base-2", "user", "me"], base_env)]  # client A again, via a context
    jobs += [(["tenant", "me"], client_b) for _ in range(2)]
    assert len(jobs) == 16

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "qlikm2m", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, env in jobs
    ]
    outcomes = [(proc.communicate(timeout=120), proc.returncode) for proc in procs]
    failures = [(args, err) for (args, _), ((_, err), code) in zip(jobs, outcomes, strict=True) if code]  # fmt: skip
    assert failures == []

    # No lost update, no torn file: every change of the burst is there.
    loaded = load_contexts(base_env)
    assert sorted(loaded.contexts) == sorted(kept + [f"new-{n}" for n in range(4)])
    assert {name: loaded.contexts[name].comment for name in kept} == {
        f"base-{n}": f"updated-{n}" for n in range(4)
    }
    assert loaded.current == "base-1"
    for n in range(4):
        secret_file = secret_file_path(f"new-{n}", base_env)
        assert secret_file.read_text() == sandbox.client_secret
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    for name in removed:
        assert not secret_file_path(name, base_env).exists()
    config = Path(contexts_path(base_env)).parent
    assert not [p.name for p in config.iterdir() if p.name.startswith(".contexts.toml.")]

    # One token per credential set: client A from the environment, client A through context
    # base-2 (a stored context's token is bound to its own credential generation: it cannot
    # prove, without reading its keyring, that the environment's secret is its own) and client B.
    assert sandbox.count("POST /oauth/token") == 3
    assert sandbox.live_tokens(sandbox.client_id) == 2
    assert sandbox.live_tokens(SECOND_ID) == 1
    assert sandbox.count("GET /api/v1/users/me") == 3
    assert sandbox.count("GET /api/v1/tenants/me") == 2
    tokens = Path(os.environ["QLIKM2M_CACHE_DIR"]) / "tokens"
    assert len(list(tokens.glob("*.json"))) == 3
