"""The contexts file: round trips, permissions, broken files reported and left alone, parallel writers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from qlikm2m.contexts import (
    Context,
    ContextsFile,
    contexts_path,
    load_contexts,
    new_generation,
    update_contexts,
    validate_name,
)
from qlikm2m.errors import ConfigError, ExitCode, UsageError

PROD = Context(
    name="prod",
    server="https://tenant.eu.qlikcloud.com",
    auth_type="oauth",
    client_id="abc123",
    scope="user_default",
    ca_bundle="/etc/ssl/private-ca.pem",
    comment="production tenant",
)
DEV = Context(
    name="127.0.0.1:8443", server="https://127.0.0.1:8443", auth_type="apikey", client_id=None
)


@pytest.fixture
def env() -> dict[str, str]:
    return dict(os.environ)


def write_raw(env: dict[str, str], text: str | bytes) -> Path:
    path = contexts_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = textwrap.dedent(text).encode()
    path.write_bytes(text)
    return path


def test_missing_file_is_empty_and_not_created(env: dict[str, str]) -> None:
    loaded = load_contexts(env)
    assert loaded.contexts == {}
    assert loaded.current is None
    assert not loaded.path.exists()
    assert not loaded.path.parent.exists()


def test_round_trip_keeps_every_field(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD).with_context(DEV).with_current("prod"))
    loaded = load_contexts(env)
    assert loaded.contexts == {"prod": PROD, DEV.name: DEV}
    assert loaded.current == "prod"
    text = loaded.path.read_text()
    assert "schema_version = 2" in text
    assert '[contexts."127.0.0.1:8443"]' in text


def test_file_is_0600_in_a_0700_folder(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD))
    path = contexts_path(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_without_clears_current_and_keeps_others(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD).with_context(DEV).with_current("prod"))
    after = update_contexts(env, lambda f: f.without("prod"))
    assert after.current is None
    assert list(load_contexts(env).contexts) == [DEV.name]


def test_unknown_context_is_config_error_listing_known(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD))
    with pytest.raises(ConfigError, match=r"known: prod"):
        load_contexts(env).get("nope")
    with pytest.raises(ConfigError):
        load_contexts(env).with_current("nope")


def test_failed_change_writes_nothing(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD))
    before = contexts_path(env).read_bytes()

    def change(current: ContextsFile) -> ContextsFile:
        raise UsageError("no")

    with pytest.raises(UsageError):
        update_contexts(env, change)
    assert contexts_path(env).read_bytes() == before


def test_hand_written_file_with_defaults_loads(env: dict[str, str]) -> None:
    write_raw(
        env,
        """
        current = "a"
        [contexts.a]
        server = "https://a.example.com"
        client_id = "id"
        """,
    )
    loaded = load_contexts(env)
    assert loaded.contexts["a"].auth_type == "oauth"
    assert loaded.contexts["a"].secret_storage == "keyring"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('schema_version = 1\n[contexts.a]\nserver = "x\n', 3, "not valid TOML"),
        ("schema_version = 1\n\n[contexts.a]\nserver = 5\nclient_id = 'i'\n", 4, "server"),
        ('[contexts.a]\nserver = "https://a"\nauth_type = "basic"\n', 3, "auth_type"),
        ('[contexts.a]\nserver = "https://a"\n', 1, "no client_id"),
        ('[contexts.a]\nserver = "https://a"\nclient_id = "i"\nsevrer = "z"\n', 4, "unknown key"),
        ('schema_version = 99\n[contexts.a]\nserver = "https://a"\n', 1, "newer qlikm2m"),
        ('current = "b"\n[contexts.a]\nserver = "https://a"\nclient_id = "i"\n', 1, "'b'"),
        ("surprise = 1\n", 1, "unknown top-level key"),
        ('[contexts."bad name"]\nserver = "https://a"\n', 1, "invalid context name"),
        (
            '[contexts.a]\nserver = "https://a"\nclient_id = "i"\ncredential_type = "mtls"\n',
            4,
            "credential_type",
        ),
        (
            '[contexts.a]\nserver = "https://a"\nclient_id = "i"\nprivate_key = "x"\n',
            4,
            "secrets do not belong",
        ),
    ],
)
def test_broken_file_names_file_line_problem_and_is_left_alone(
    env: dict[str, str], text: str, line: int, problem: str
) -> None:
    path = write_raw(env, text)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        load_contexts(env)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert str(path) in caught.value.message
    assert f"line {line}" in caught.value.message
    assert problem in caught.value.message
    with pytest.raises(ConfigError):
        update_contexts(env, lambda f: f.with_context(PROD))
    assert path.read_bytes() == before


def test_pasted_secret_is_refused_without_echoing_it(env: dict[str, str]) -> None:
    secret = "s3cr3t-pasted-into-the-file-by-hand"
    path = write_raw(
        env,
        f"""
        [contexts.a]
        server = "https://a"
        client_id = "i"
        client_secret = "{secret}"
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_contexts(env)
    assert "secrets do not belong" in caught.value.message
    assert "line 5" in caught.value.message
    assert secret not in caught.value.message
    assert secret not in (caught.value.hint or "")
    assert secret in path.read_text()


def test_syntax_error_message_does_not_quote_the_file(env: dict[str, str]) -> None:
    secret = "abcdefghijklmnopqrstuvwxyz0123456789"
    write_raw(env, f'[contexts.a]\nserver = "https://a"\nclient_id = {secret}\n')
    with pytest.raises(ConfigError) as caught:
        load_contexts(env)
    assert secret not in caught.value.message


def test_non_utf8_file_is_config_error(env: dict[str, str]) -> None:
    write_raw(env, b'[contexts.a]\nserver = "\xff"\n')
    with pytest.raises(ConfigError, match=r"line 2.*UTF-8"):
        load_contexts(env)


def test_directory_in_place_of_the_file(env: dict[str, str]) -> None:
    contexts_path(env).mkdir(parents=True)
    with pytest.raises(ConfigError, match="is a directory"):
        load_contexts(env)


@pytest.mark.parametrize(
    "name", ["prod", "tenant.eu.qlikcloud.com", "127.0.0.1:8443", "[::1]:8443", "a_b-c@d+e"]
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "a\nb", "x" * 129, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UsageError):
        validate_name(name)


_WRITER = """
import os, sys
from qlikm2m.contexts import Context, update_contexts
name = sys.argv[1]
context = Context(name=name, server="https://" + name + ".example.com", auth_type="apikey",
                  client_id=None)
update_contexts(dict(os.environ), lambda f: f.with_context(context))
"""


@pytest.mark.slow
def test_sixteen_parallel_writers_lose_nothing(env: dict[str, str]) -> None:
    names = [f"ctx{i}" for i in range(16)]
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, name], env=env) for name in names]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 16
    assert sorted(load_contexts(env).contexts) == sorted(names)


def test_replace_keeps_other_contexts(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD).with_context(DEV))
    changed = replace(PROD, comment=None, scope=None)
    update_contexts(env, lambda f: f.with_context(changed))
    loaded = load_contexts(env)
    assert loaded.contexts["prod"] == changed
    assert loaded.contexts[DEV.name] == DEV


def test_a_schema_1_file_loads_with_unbound_contexts(env: dict[str, str]) -> None:
    path = contexts_path(env)
    path.parent.mkdir(parents=True)
    path.write_text(
        'schema_version = 1\n[contexts.prod]\nserver = "https://t.example.com"\nclient_id = "id"\n'
    )
    assert load_contexts(env).contexts["prod"].credential_generation is None


def test_a_byte_order_mark_before_the_file_is_ignored(env: dict[str, str]) -> None:
    path = contexts_path(env)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        b'\xef\xbb\xbfcurrent = "prod"\n[contexts.prod]\nserver = "s"\nclient_id = "i"\n'
    )
    assert load_contexts(env).current == "prod"


def test_the_credential_generation_round_trips(env: dict[str, str]) -> None:
    bound = replace(PROD, credential_generation=new_generation())
    update_contexts(env, lambda f: f.with_context(bound))
    assert load_contexts(env).contexts["prod"] == bound


KEYED = Context(
    name="keybot",
    server="https://tenant.eu.qlikcloud.com",
    auth_type="oauth",
    client_id="client-k",
    credential_type="private_key",
    key_id="ci-2026",
    key_alg="RS512",
)


def test_a_context_holding_a_key_round_trips_as_schema_3(env: dict[str, str]) -> None:
    update_contexts(env, lambda f: f.with_context(PROD).with_context(KEYED))
    text = contexts_path(env).read_text()
    loaded = load_contexts(env)

    assert loaded.contexts["keybot"] == KEYED
    assert loaded.contexts["keybot"].holds_private_key
    assert not loaded.contexts["prod"].holds_private_key
    assert "schema_version = 3" in text
    assert 'credential_type = "private_key"' in text
    assert 'key_id = "ci-2026"' in text
    # Without a key context the file is written as version 2 again: older versions read it.
    update_contexts(env, lambda f: f.without("keybot"))
    assert "schema_version = 2" in contexts_path(env).read_text()


def test_key_settings_of_a_context_without_a_key_are_ignored(env: dict[str, str]) -> None:
    write_raw(
        env,
        '[contexts.a]\nserver = "https://a"\nauth_type = "apikey"\n'
        'credential_type = "private_key"\nkey_id = "k"\n',
    )
    context = load_contexts(env).contexts["a"]

    assert (context.credential_type, context.key_id, context.holds_private_key) == (
        None,
        None,
        False,
    )
