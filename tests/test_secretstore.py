"""The keyring adapter (availability, timeouts, error cases) and the per-context secret policy.

Fake backends (the shared doubles of tests/harness.py, and two of this module's own) are selected
the way a user selects one, through ``PYTHON_KEYRING_BACKEND``, so the adapter's real loading path
runs.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest
from harness import (
    BrokenKeyring,
    DenyingKeyring,
    HangingKeyring,
    LockedKeyring,
    MemoryKeyring,
    backend_name,
)

from qlikm2m.contexts import Context
from qlikm2m.errors import ConfigError, ExitCode, KeyringError, UsageError
from qlikm2m.secretstore import (
    INTERACTIVE_TIMEOUT,
    NON_INTERACTIVE_TIMEOUT,
    SERVICE,
    KeyringAdapter,
    check_storage,
    copy_secret,
    delete_secret,
    describe_location,
    keyring_timeout,
    read_secret,
    secret_file_path,
    store_secret,
)

SECRET = "client-secret-0123456789abcdef"


class PlaintextMemoryKeyring(MemoryKeyring):
    """Stands for keyrings.alt's plaintext file backend: must be refused by name."""


@pytest.fixture(autouse=True)
def fresh_fakes(keyring_backend: Any) -> None:
    """The shared doubles (tests/harness.py), emptied and with hanging calls released after."""


def env_with(backend: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = backend
    env.update(extra)
    return env


MEMORY = backend_name(MemoryKeyring)

OAUTH = Context(name="prod", server="https://t.example.com", auth_type="oauth", client_id="cid")
FILED = Context(
    name="h:443",
    server="https://h.example.com",
    auth_type="apikey",
    client_id=None,
    secret_storage="file",
)


def keyring_case(error: pytest.ExceptionInfo[KeyringError]) -> str:
    return str(error.value.details["keyringCase"])


# ---- timeouts ---------------------------------------------------------------------------------


def test_timeout_is_short_without_a_terminal_and_long_with_one() -> None:
    assert keyring_timeout({}, interactive=False) == NON_INTERACTIVE_TIMEOUT
    assert keyring_timeout({}, interactive=True) == INTERACTIVE_TIMEOUT
    assert NON_INTERACTIVE_TIMEOUT < INTERACTIVE_TIMEOUT


def test_timeout_override() -> None:
    env = {"QLIKM2M_KEYRING_TIMEOUT": "2.5"}
    assert keyring_timeout(env, interactive=True) == 2.5
    assert keyring_timeout(env, interactive=False) == 2.5


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "99999"])
def test_bad_timeout_override_is_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="QLIKM2M_KEYRING_TIMEOUT"):
        keyring_timeout({"QLIKM2M_KEYRING_TIMEOUT": raw}, interactive=False)


def test_hanging_backend_times_out_with_exit_7() -> None:
    env = env_with(backend_name(HangingKeyring), QLIKM2M_KEYRING_TIMEOUT="0.2")
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(env, interactive=True).get("prod")
    assert caught.value.exit_code == ExitCode.KEYRING
    assert keyring_case(caught) == "timed-out"
    assert "QLIKM2M_KEYRING_TIMEOUT" in caught.value.message
    assert MemoryKeyring.calls == ["hang"]


# ---- availability -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        "keyring.backends.fail.Keyring",
        "keyring.backends.null.Keyring",
        backend_name(PlaintextMemoryKeyring),
        "no_such_module.Keyring",
    ],
)
def test_unusable_backends_are_refused_with_remedies(backend: str) -> None:
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(env_with(backend), interactive=False).check_available()
    assert keyring_case(caught) == "no-backend"
    hint = caught.value.hint or ""
    for remedy in ("Unlock", "QLIK_", "--secret-storage file"):
        assert remedy in hint
    assert MemoryKeyring.calls == []


def test_chainer_with_nothing_usable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.backends.chainer
    import keyring.backends.fail
    import keyring.backends.null

    monkeypatch.setattr(
        keyring.backend,
        "get_all_keyring",
        lambda: [keyring.backends.fail.Keyring(), keyring.backends.null.Keyring()],
    )
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(
            env_with("keyring.backends.chainer.ChainerBackend"), interactive=False
        ).check_available()
    assert keyring_case(caught) == "no-backend"


def test_chainer_uses_its_best_usable_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.backends.fail

    monkeypatch.setattr(
        keyring.backend,
        "get_all_keyring",
        lambda: [keyring.backends.fail.Keyring(), MemoryKeyring()],
    )
    adapter = KeyringAdapter(env_with("keyring.backends.chainer.ChainerBackend"), interactive=False)
    assert adapter.check_available() == backend_name(MemoryKeyring)


def test_availability_is_one_probe_call() -> None:
    name = KeyringAdapter(env_with(MEMORY), interactive=False).check_available()
    assert name == MEMORY
    assert MemoryKeyring.calls == ["get"]


def test_locked_keyring() -> None:
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(env_with(backend_name(LockedKeyring)), interactive=False).get("x")
    assert keyring_case(caught) == "locked"
    assert "locked" in caught.value.message


def test_access_denied_does_not_leak_the_secret() -> None:
    adapter = KeyringAdapter(env_with(backend_name(DenyingKeyring)), interactive=False)
    with pytest.raises(KeyringError) as caught:
        adapter.set("prod", SECRET)
    assert keyring_case(caught) == "access-denied"
    assert SECRET not in caught.value.message


def test_unexpected_backend_error_is_still_exit_7() -> None:
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(env_with(backend_name(BrokenKeyring)), interactive=False).get("x")
    assert keyring_case(caught) == "failed"
    assert "ValueError" in caught.value.message


# ---- the policy -------------------------------------------------------------------------------


def test_keyring_round_trip_under_service_and_context_name() -> None:
    env = env_with(MEMORY)
    location = store_secret(OAUTH, SECRET, env, interactive=False)
    assert location.storage == "keyring"
    assert MemoryKeyring.store == {(SERVICE, "prod"): SECRET}
    assert read_secret(OAUTH, env, interactive=False) == SECRET
    assert delete_secret(OAUTH, env, interactive=False) is True
    assert delete_secret(OAUTH, env, interactive=False) is False
    assert MemoryKeyring.store == {}


def test_missing_keyring_entry_is_config_error_with_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        read_secret(OAUTH, env_with(MEMORY), interactive=False)
    assert "context update prod --client-secret-stdin" in (caught.value.hint or "")


def test_check_storage_probes_the_keyring_only_for_keyring_contexts() -> None:
    env = env_with("keyring.backends.fail.Keyring")
    with pytest.raises(KeyringError):
        check_storage(OAUTH, env, interactive=False)
    assert check_storage(FILED, env, interactive=False).storage == "file"


def test_file_storage_is_0600_and_never_touches_the_keyring() -> None:
    env = env_with("keyring.backends.fail.Keyring")
    store_secret(FILED, SECRET, env, interactive=False)
    path = secret_file_path(FILED.name, env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.name == "h%3A443"
    assert read_secret(FILED, env, interactive=False) == SECRET
    assert str(path) in describe_location(FILED, env).description
    assert delete_secret(FILED, env, interactive=False) is True
    assert not path.exists()


def test_secret_file_readable_by_others_is_refused() -> None:
    env = dict(os.environ)
    store_secret(FILED, SECRET, env, interactive=False)
    path = secret_file_path(FILED.name, env)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users") as caught:
        read_secret(FILED, env, interactive=False)
    assert "chmod 600" in (caught.value.hint or "")


def test_missing_secret_file_is_config_error() -> None:
    with pytest.raises(ConfigError, match="missing") as caught:
        read_secret(FILED, dict(os.environ), interactive=False)
    assert "--api-key-stdin" in (caught.value.hint or "")


def test_empty_secret_is_refused() -> None:
    with pytest.raises(UsageError):
        store_secret(OAUTH, "", env_with(MEMORY), interactive=False)
    assert MemoryKeyring.store == {}


def test_copy_secret_between_names_and_stores() -> None:
    env = env_with(MEMORY)
    store_secret(OAUTH, SECRET, env, interactive=False)
    renamed = Context(name="renamed", server=OAUTH.server, auth_type="oauth", client_id="cid")
    copy_secret(OAUTH, renamed, env, interactive=False)
    assert MemoryKeyring.store[(SERVICE, "renamed")] == SECRET
    to_file = Context(
        name="renamed",
        server=OAUTH.server,
        auth_type="oauth",
        client_id="cid",
        secret_storage="file",
    )
    copy_secret(renamed, to_file, env, interactive=False)
    assert secret_file_path("renamed", env).read_text() == SECRET


def test_adapter_returns_registered_secrets() -> None:
    from qlikm2m.redaction import redact

    env = env_with(MEMORY)
    MemoryKeyring.store[(SERVICE, "prod")] = "another-secret-from-the-keyring"
    value: Any = KeyringAdapter(env, interactive=False).get("prod")
    assert redact(f"x {value} y") == "x *** y"


class HeadlessPromptKeyring(MemoryKeyring):
    """What keyring's Secret Service backend raises when no unlock prompt can be shown."""

    def get_password(self, service: str, username: str) -> str | None:
        from keyring.errors import InitError

        raise InitError("Failed to create the collection: Prompt dismissed..")


def test_a_dismissed_unlock_prompt_counts_as_locked() -> None:
    with pytest.raises(KeyringError) as caught:
        KeyringAdapter(
            env_with(backend_name(HeadlessPromptKeyring)), interactive=False
        ).check_available()
    assert keyring_case(caught) == "locked"
    assert caught.value.message.endswith("Prompt dismissed.")
