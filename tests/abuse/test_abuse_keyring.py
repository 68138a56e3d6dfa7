"""Keyring faults through the real command in a subprocess: a backend that hangs, raises or is
locked, met at each step that touches the keyring (probe, write, read, delete).

tests/test_secretstore.py covers the adapter in-process (each case's name and remedies); this
proves the whole command: exit 7 within the bound, the case named, the remedies given, nothing
written. The backend is loaded the way a user selects one, through PYTHON_KEYRING_BACKEND, from a
module written to a temporary folder on PYTHONPATH. It keeps working entries in a JSON file so
that a context can be stored by one process and met by another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import assert_clear_error, assert_json_error, files_under

from qlikm2m.contexts import Context, contexts_path, new_generation, update_contexts
from qlikm2m.sandbox import Sandbox
from qlikm2m.secretstore import SERVICE

BACKEND_SOURCE = '''
"""A keyring backend whose chosen operations hang, raise or report a locked keyring."""
import json
import os
import threading

import keyring.backend
from keyring.errors import KeyringLocked


class FaultyKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def _fault(self, operation):
        if operation not in os.environ.get("ABUSE_KEYRING_FAULT_ON", "").split(","):
            return
        fault = os.environ["ABUSE_KEYRING_FAULT"]
        if fault == "hang":
            threading.Event().wait()  # forever, like a Secret Service call nobody answers
        if fault == "locked":
            raise KeyringLocked("Failed to unlock the collection!")
        raise RuntimeError("the backend exploded")

    def _load(self):
        try:
            with open(os.environ["ABUSE_KEYRING_FILE"]) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def _save(self, entries):
        with open(os.environ["ABUSE_KEYRING_FILE"], "w") as handle:
            json.dump(entries, handle)

    def get_password(self, service, username):
        self._fault("get")
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        self._fault("set")
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._save(entries)

    def delete_password(self, service, username):
        self._fault("delete")
        entries = self._load()
        del entries[f"{service}/{username}"]
        self._save(entries)
'''

FAULTS = {
    "hang": ("timed-out", "did not answer"),
    "raise": ("failed", "the backend exploded"),
    "locked": ("locked", "is locked"),
}
# The keyring timeout bounds each call, the first one's backend loading included, so a short one
# fails under load (-n 8 turned "locked" into "timed-out"). Calls that answer get one no load can
# reach; a hanging call needs a short one to keep the test quick. Every operation starts with a
# read, so when reads hang the first call hangs and its length does not matter; when only writes
# hang, the reads before them must fit in HANG_AFTER_READS. A run that waited for the hang itself
# is caught by run_qlikm2m's own timeout.
ANSWERS = "60"
HANG = "1"
HANG_AFTER_READS = "4"
SECRET_VAR = "ABUSE_CLIENT_SECRET"
TOKEN = "POST /oauth/token"


@pytest.fixture
def keyring_env(tmp_path: Path, cli_env: dict[str, str], sandbox: Sandbox) -> dict[str, str]:
    """No QLIK_* credentials: commands must go through a context and its keyring entry."""
    folder = tmp_path / "backend"
    folder.mkdir()
    (folder / "abuse_faulty_keyring.py").write_text(BACKEND_SOURCE)
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}
    env.update(
        PYTHONPATH=str(folder),
        PYTHON_KEYRING_BACKEND="abuse_faulty_keyring.FaultyKeyring",
        QLIKM2M_KEYRING_TIMEOUT=ANSWERS,
        ABUSE_KEYRING_FILE=str(tmp_path / "keyring.json"),
        ABUSE_KEYRING_FAULT="hang",
        ABUSE_KEYRING_FAULT_ON="",
        **{SECRET_VAR: sandbox.client_secret},
    )
    return env


def _entries(env: dict[str, str]) -> dict[str, str]:
    path = Path(env["ABUSE_KEYRING_FILE"])
    return json.loads(path.read_text()) if path.exists() else {}


def _stored_context(env: dict[str, str], sandbox: Sandbox, name: str = "prod") -> bytes:
    """A context saved with a working keyring; returns the contexts file's bytes."""
    context = Context(
        name=name,
        server=sandbox.url,
        auth_type="oauth",
        client_id=sandbox.client_id,
        ca_bundle=sandbox.ca_bundle,
        # Bound, as `context create` leaves it: an unbound one is given a generation on first use.
        credential_generation=new_generation(),
    )
    update_contexts(env, lambda current: current.with_context(context).with_current(name))
    Path(env["ABUSE_KEYRING_FILE"]).write_text(
        json.dumps({f"{SERVICE}/{name}": sandbox.client_secret})
    )
    return contexts_path(env).read_bytes()


def _faulty(env: dict[str, str], fault: str, *operations: str) -> dict[str, str]:
    return {
        **env,
        "ABUSE_KEYRING_FAULT": fault,
        "ABUSE_KEYRING_FAULT_ON": ",".join(operations),
        "QLIKM2M_KEYRING_TIMEOUT": (
            ANSWERS if fault != "hang" else HANG if "get" in operations else HANG_AFTER_READS
        ),
    }


def _assert_keyring_failure(result: Any, fault: str) -> str:
    line = assert_clear_error(result, 7, FAULTS[fault][1], after_progress=True)
    hint = result.stderr.split("hint: ", 1)[1]
    for remedy in ("Unlock the keyring", "QLIK_", "--secret-storage file"):
        assert remedy in hint
    return line


def _create_args(sandbox: Sandbox, name: str = "new") -> list[str]:
    return ["context", "create", name, "--server", sandbox.url, "--oauth-client-id",
            sandbox.client_id, "--client-secret-env", SECRET_VAR, "--ca-bundle",
            sandbox.ca_bundle or ""]  # fmt: skip


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_create_with_a_broken_keyring_fails_at_the_probe_and_writes_nothing(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    env = _faulty(keyring_env, fault, "get", "set", "delete")
    result = run_qlikm2m(*_create_args(sandbox), env=env)
    _assert_keyring_failure(result, fault)
    # Checked before validation: no token was asked for, nothing stored anywhere.
    assert sandbox.count(TOKEN) == 0
    assert files_under(env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]) == []
    assert _entries(env) == {}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_create_whose_keyring_write_fails_after_validation_saves_no_context(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    env = _faulty(keyring_env, fault, "set")
    result = run_qlikm2m(*_create_args(sandbox), env=env)
    _assert_keyring_failure(result, fault)
    assert "Authenticated as" in result.stderr  # validated first, then the write failed
    assert sandbox.count(TOKEN) == 1
    assert not contexts_path(env).exists()
    assert _entries(env) == {}
    # No file anywhere holds the secret.
    for path in files_under(env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]):
        assert sandbox.client_secret.encode() not in path.read_bytes()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_using_a_context_whose_keyring_read_fails_is_exit_7(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    before = _stored_context(keyring_env, sandbox)
    env = _faulty(keyring_env, fault, "get")
    result = run_qlikm2m("user", "me", env=env)
    _assert_keyring_failure(result, fault)
    assert sandbox.count(TOKEN) == 0
    assert contexts_path(env).read_bytes() == before
    # At most the empty lock file of single-flight minting: no token was cached.
    for path in files_under(env["QLIKM2M_CACHE_DIR"]):
        assert path.suffix == ".lock"
        assert path.stat().st_size == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_json_error_names_the_keyring_case(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    _stored_context(keyring_env, sandbox)
    env = _faulty(keyring_env, fault, "get")
    error = assert_json_error(run_qlikm2m("-o", "json", "tenant", "me", env=env), 7)
    assert error["kind"] == "keyring"
    assert error["keyringCase"] == FAULTS[fault][0]
    assert error["keyringBackend"].endswith("FaultyKeyring")
    assert "--secret-storage file" in error["hint"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_rm_with_a_broken_keyring_keeps_the_context_and_offers_force(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    before = _stored_context(keyring_env, sandbox)
    env = _faulty(keyring_env, fault, "get", "delete")
    result = run_qlikm2m("context", "rm", "prod", env=env)
    _assert_keyring_failure(result, fault)
    assert "--force" in result.stderr
    assert contexts_path(env).read_bytes() == before
    assert _entries(env) == {f"{SERVICE}/prod": sandbox.client_secret}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_update_and_rename_with_a_broken_keyring_change_nothing(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any, fault: str
) -> None:
    before = _stored_context(keyring_env, sandbox)
    entries = _entries(keyring_env)
    env = _faulty(keyring_env, fault, "set")
    updated = run_qlikm2m("context", "update", "prod", "--client-secret-env", SECRET_VAR, env=env)
    _assert_keyring_failure(updated, fault)
    renamed = run_qlikm2m("context", "rename", "prod", "renamed", env=env)
    _assert_keyring_failure(renamed, fault)
    assert contexts_path(env).read_bytes() == before
    assert _entries(env) == entries


def test_the_same_commands_work_once_the_keyring_answers(
    keyring_env: dict[str, str], sandbox: Sandbox, run_qlikm2m: Any
) -> None:
    """The control case: with no fault, the backend above is a working keyring."""
    created = run_qlikm2m(*_create_args(sandbox), "--use", env=keyring_env)
    assert created.returncode == 0, created.stderr
    assert _entries(keyring_env) == {f"{SERVICE}/new": sandbox.client_secret}
    assert run_qlikm2m("user", "me", env=keyring_env).returncode == 0
    assert run_qlikm2m("context", "rm", "new", env=keyring_env).returncode == 0
    assert _entries(keyring_env) == {}
