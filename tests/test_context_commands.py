"""The `context` commands in-process through `cli.main`, with an in-memory keyring.

Validation against a tenant is covered here with the sandbox; the real terminal and the real
Secret Service are exercised in tests/e2e/.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import LockedKeyring, MemoryKeyring

from qlikm2m import cli
from qlikm2m.contexts import contexts_path, load_contexts
from qlikm2m.runtime import Runtime
from qlikm2m.secretstore import SERVICE, secret_file_path

SECRET = "m2m-client-secret-0123456789abcdef"
DATA = Path(__file__).parent / "data" / "qlik-cli"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def every_test_has_a_memory_keyring(
    memory_keyring: dict[tuple[str, str], str],
) -> dict[tuple[str, str], str]:
    """The shared in-memory keyring double (tests/harness.py), empty at the start of each test."""
    return memory_keyring


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
    runtime = Runtime(
        env=dict(os.environ) if env is None else env,
        stdin=io.StringIO(stdin),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    code = cli.main(list(args), runtime=runtime)
    assert isinstance(runtime.stdout, io.StringIO)
    assert isinstance(runtime.stderr, io.StringIO)
    return Result(code, runtime.stdout.getvalue(), runtime.stderr.getvalue())


def create(name: str, *extra: str, secret: str = SECRET, server: str = "t.example.com") -> Result:
    return run(
        "context",
        "create",
        name,
        "--server",
        server,
        "--oauth-client-id",
        f"client-{name}",
        "--client-secret-stdin",
        "--no-verify",
        *extra,
        stdin=secret + "\n",
    )


def files_under(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        if folder.exists():
            yield from (path for path in folder.rglob("*") if path.is_file())


def assert_secret_in_no_file(secret: str, dirs: dict[str, Path]) -> None:
    for path in files_under(dirs["config"], dirs["cache"]):
        assert secret.encode() not in path.read_bytes(), path


# ---- create ------------------------------------------------------------------------------------


def test_create_keeps_the_secret_in_the_keyring_only(
    memory_keyring: dict[tuple[str, str], str], isolated_dirs: dict[str, Path]
) -> None:
    result = create("prod", "--comment", "the real one", "--scope", "user_default")
    assert result.code == 0, result.err
    view = result.json()
    assert view["name"] == "prod"
    assert view["server"] == "https://t.example.com"
    assert view["authType"] == "oauth"
    assert view["clientId"] == "client-prod"
    assert view["secretStorage"] == "keyring"
    assert view["current"] is False
    assert view["verified"] is False
    assert memory_keyring == {(SERVICE, "prod"): SECRET}
    stored = load_contexts(dict(os.environ)).contexts["prod"]
    assert stored.comment == "the real one"
    assert stored.scope == "user_default"
    assert_secret_in_no_file(SECRET, isolated_dirs)
    assert SECRET not in result.out + result.err


def test_create_with_use_makes_it_current() -> None:
    assert create("prod", "--use").json()["current"] is True
    assert load_contexts(dict(os.environ)).current == "prod"


def test_create_api_key_context_from_env_variable(memory_keyring: dict[Any, str]) -> None:
    env = dict(os.environ, MY_KEY="api-key-value-abcdefghijkl")
    result = run(
        "context", "create", "k", "--server", "k.example.com", "--api-key-env", "MY_KEY",
        "--no-verify", env=env,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["authType"] == "apikey"
    assert result.json()["clientId"] is None
    assert memory_keyring == {(SERVICE, "k"): "api-key-value-abcdefghijkl"}


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("context", "create", "x", "--oauth-client-id", "c", "--client-secret-stdin"), "--server"),
        (("context", "create", "x", "--server", "x.example.com"), "--oauth-client-id"),
        (
            ("context", "create", "x", "--server", "x.example.com", "--oauth-client-id", "c"),
            "--client-secret-stdin",
        ),
        (("--no-input", "context", "init"), "--server"),
        (("context", "init", "--no-input", "--server", "x.example.com"), "--auth-type"),
        (
            ("context", "init", "--server", "x.example.com", "--auth-type", "oauth"),
            "--oauth-client-id",
        ),
        (("context", "init", "--server", "x.example.com", "--auth-type", "apikey"), "--api-key"),
    ],
)
def test_missing_answers_fail_at_once_naming_the_flag(args: tuple[str, ...], flag: str) -> None:
    result = run(*args, stdin="")
    assert result.code == 2
    assert flag in result.err
    assert "does not prompt" in result.err
    assert MemoryKeyring.calls == []
    assert not contexts_path(dict(os.environ)).exists()


def test_no_keyring_is_exit_7_with_remedies_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, isolated_dirs: dict[str, Path]
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = create("prod")
    assert result.code == 7
    for remedy in ("Unlock", "QLIK_CLIENT_SECRET", "--secret-storage file"):
        assert remedy in result.err
    assert list(files_under(isolated_dirs["config"], isolated_dirs["cache"])) == []


def test_file_storage_is_explicit_0600_and_warned_about(
    monkeypatch: pytest.MonkeyPatch, isolated_dirs: dict[str, Path]
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = create("prod", "--secret-storage", "file")
    assert result.code == 0, result.err
    assert "warning" in result.err
    assert "unencrypted" in result.err
    path = secret_file_path("prod", dict(os.environ))
    assert path.read_text() == SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_contexts(dict(os.environ)).contexts["prod"].secret_storage == "file"
    assert SECRET.encode() not in contexts_path(dict(os.environ)).read_bytes()


def test_existing_name_needs_force(memory_keyring: dict[Any, str]) -> None:
    assert create("prod").code == 0
    again = create("prod", secret="another-secret-0123456789")
    assert again.code == 2
    assert "--force" in again.err
    assert memory_keyring[(SERVICE, "prod")] == SECRET
    forced = create("prod", "--force", secret="another-secret-0123456789")
    assert forced.code == 0
    assert memory_keyring[(SERVICE, "prod")] == "another-secret-0123456789"


def test_secret_on_argv_is_refused_and_not_stored(memory_keyring: dict[Any, str]) -> None:
    result = run(
        "context", "create", "x", "--server", "x.example.com", "--oauth-client-id", "c",
        "--client-secret", SECRET, "--no-verify",
    )  # fmt: skip
    assert result.code == 2
    assert "--client-secret-stdin" in result.err
    assert memory_keyring == {}
    assert run("context", "init", "--api-key", "abc").code == 2


def test_two_secret_sources_are_refused() -> None:
    env = dict(os.environ, S="x" * 20)
    result = run(
        "context", "create", "x", "--server", "x.example.com", "--oauth-client-id", "c",
        "--client-secret-stdin", "--client-secret-env", "S", "--no-verify",
        stdin="y" * 20, env=env,
    )  # fmt: skip
    assert result.code == 2
    assert "one way only" in result.err


def test_empty_secret_env_is_usage_error() -> None:
    result = run(
        "context", "create", "x", "--server", "x.example.com", "--oauth-client-id", "c",
        "--client-secret-env", "UNSET_VARIABLE_FOR_TEST", "--no-verify",
    )  # fmt: skip
    assert result.code == 2
    assert "UNSET_VARIABLE_FOR_TEST" in result.err


def test_bad_server_and_bad_name_are_refused() -> None:
    assert create("prod", server="ftp://x.example.com").code == 3
    assert create("bad name").code == 2
    assert not contexts_path(dict(os.environ)).exists()


def test_missing_ca_bundle_is_config_error(tmp_path: Path) -> None:
    result = create("prod", "--ca-bundle", str(tmp_path / "none.pem"))
    assert result.code == 3
    assert "CA bundle" in result.err


def test_ca_bundle_is_stored_as_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.chdir(tmp_path)
    assert create("prod", "--ca-bundle", "ca.pem").code == 0
    assert load_contexts(dict(os.environ)).contexts["prod"].ca_bundle == str(tmp_path / "ca.pem")


# ---- listing and selection ---------------------------------------------------------------------


def test_ls_json_lists_objects_with_boolean_current() -> None:
    create("b", "--comment", "second")
    create("a", "--use")
    result = run("-o", "json", "context", "ls")
    assert result.code == 0
    assert result.json() == [
        {
            "name": "a",
            "server": "https://t.example.com",
            "authType": "oauth",
            "current": True,
            "comment": None,
        },
        {
            "name": "b",
            "server": "https://t.example.com",
            "authType": "oauth",
            "current": False,
            "comment": "second",
        },
    ]


def test_ls_at_a_terminal_is_a_table_like_the_other_listings() -> None:
    create("prod", "--use")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    runtime = Runtime(
        env={**os.environ, "NO_COLOR": "1"},
        stdin=io.StringIO(),
        stdout=Terminal(),
        stderr=io.StringIO(),
    )
    assert cli.main(["context", "ls"], runtime) == 0
    lines = runtime.stdout.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "SERVER", "AUTH", "TYPE", "CURRENT", "COMMENT"]
    assert lines[1].split() == ["prod", "https://t.example.com", "oauth", "yes"]


def test_ls_with_no_contexts_is_an_empty_list() -> None:
    assert run("context", "ls").json() == []


def test_use_current_clear() -> None:
    create("a")
    create("b")
    assert run("context", "current").code == 3
    assert run("context", "use", "b").code == 0
    assert run("context", "current").out == "b\n"
    assert run("-o", "json", "context", "current").json() == {"name": "b"}
    assert run("context", "use", "nope").code == 3
    assert load_contexts(dict(os.environ)).current == "b"
    assert run("context", "clear").code == 0
    assert load_contexts(dict(os.environ)).current is None
    assert set(load_contexts(dict(os.environ)).contexts) == {"a", "b"}


def test_get_shows_sources_and_masks_the_secret() -> None:
    create("a", "--use")
    create("b", secret="second-secret-0123456789abcdef")
    MemoryKeyring.calls.clear()
    result = run("context", "get")
    assert result.code == 0, result.err
    view = result.json()
    assert view["name"] == "a"
    assert "keyring" in view["secretLocation"]
    rows = {row["name"]: row for row in view["settings"]}
    assert rows["server"]["value"] == "https://t.example.com"
    assert "'a'" in rows["server"]["source"]
    assert rows["client_secret"]["value"] in ("***", "")
    assert SECRET not in result.out
    # The keyring is not even read to show a masked value.
    assert "get" not in MemoryKeyring.calls

    by_name = run("context", "get", "b").json()
    assert by_name["name"] == "b"
    assert by_name["current"] is False
    by_flag = run("--context", "b", "context", "get").json()
    assert by_flag["name"] == "b"
    env = dict(os.environ, QLIK_CONTEXT="b")
    assert run("context", "get", env=env).json()["name"] == "b"
    assert load_contexts(dict(os.environ)).current == "a"


def test_get_shows_environment_overrides_and_their_source() -> None:
    create("a", "--use")
    env = dict(os.environ, QLIK_SCOPE="admin_classic", QLIKM2M_READ_TIMEOUT="7")
    result = run("context", "get", env=env)
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in result.json()["settings"]}
    assert (rows["scope"]["value"], rows["scope"]["source"]) == ("admin_classic", "env QLIK_SCOPE")
    assert (rows["read_timeout"]["value"], rows["read_timeout"]["source"]) == (
        "7",
        "env QLIKM2M_READ_TIMEOUT",
    )
    assert rows["server"]["source"] == "context 'a'"


def test_get_names_a_server_from_the_environment_that_would_mix_with_the_context() -> None:
    create("a", "--use")
    env = dict(os.environ, QLIK_SERVER="https://other.example.com")
    result = run("context", "get", env=env)
    # The context itself is still shown (exit 0); resolving it with that server is refused as a
    # mix, because the context's stored secret would be sent to another host.
    assert result.code == 0, result.err
    view = result.json()
    assert view["settings"] == []
    assert "https://other.example.com (env QLIK_SERVER)" in view["settingsError"]
    assert "would be sent to it" in view["settingsError"]


def test_get_without_any_context_is_exit_3() -> None:
    result = run("context", "get")
    assert result.code == 3
    assert "context use" in result.err


# ---- rm and rename -----------------------------------------------------------------------------


def test_rm_removes_context_and_keyring_entry(memory_keyring: dict[Any, str]) -> None:
    create("a", "--use")
    create("b")
    result = run("context", "rm", "a")
    assert result.code == 0, result.err
    assert result.json()["secretDeleted"] is True
    assert (SERVICE, "a") not in memory_keyring
    assert (SERVICE, "b") in memory_keyring
    loaded = load_contexts(dict(os.environ))
    assert set(loaded.contexts) == {"b"}
    assert loaded.current is None
    assert run("context", "rm", "a").code == 3


def test_rm_with_a_failing_keyring_keeps_the_context_unless_forced(
    keyring_backend: Any,
) -> None:
    create("a")
    keyring_backend(LockedKeyring)
    result = run("context", "rm", "a")
    assert result.code == 7
    assert "--force" in result.err
    assert "a" in load_contexts(dict(os.environ)).contexts
    forced = run("context", "rm", "a", "--force")
    assert forced.code == 0
    assert "warning" in forced.err
    assert load_contexts(dict(os.environ)).contexts == {}


def test_rename_moves_the_secret_and_the_current_mark(memory_keyring: dict[Any, str]) -> None:
    create("old", "--use")
    result = run("context", "rename", "old", "new")
    assert result.code == 0, result.err
    assert memory_keyring == {(SERVICE, "new"): SECRET}
    loaded = load_contexts(dict(os.environ))
    assert set(loaded.contexts) == {"new"}
    assert loaded.current == "new"
    assert loaded.contexts["new"].client_id == "client-old"
    assert "stay valid" in result.err


def test_rename_onto_an_existing_name_needs_force(memory_keyring: dict[Any, str]) -> None:
    create("a")
    create("b", secret="secret-of-b-0123456789")
    assert run("context", "rename", "a", "b").code == 2
    assert run("context", "rename", "a", "b", "--force").code == 0
    assert memory_keyring == {(SERVICE, "b"): SECRET}
    assert run("context", "rename", "b", "b").code == 2
    assert run("context", "rename", "b", "bad name").code == 2


def test_rename_of_a_file_stored_secret_moves_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    create("a", "--secret-storage", "file")
    assert run("context", "rename", "a", "b").code == 0
    env = dict(os.environ)
    assert not secret_file_path("a", env).exists()
    assert secret_file_path("b", env).read_text() == SECRET


# ---- update ------------------------------------------------------------------------------------


def test_update_changes_only_what_is_given(memory_keyring: dict[Any, str]) -> None:
    create("a", "--comment", "old comment", "--scope", "user_default")
    result = run("context", "update", "a", "--comment", "new comment", "--no-verify")
    assert result.code == 0, result.err
    stored = load_contexts(dict(os.environ)).contexts["a"]
    assert stored.comment == "new comment"
    assert stored.scope == "user_default"
    assert stored.client_id == "client-a"
    assert memory_keyring == {(SERVICE, "a"): SECRET}
    cleared = run("context", "update", "a", "--scope", "", "--no-verify")
    assert cleared.code == 0
    assert load_contexts(dict(os.environ)).contexts["a"].scope is None


def test_update_new_secret_replaces_the_keyring_entry(memory_keyring: dict[Any, str]) -> None:
    create("a")
    new = "rotated-secret-0123456789abcdef"
    result = run("context", "update", "a", "--client-secret-stdin", "--no-verify", stdin=new + "\n")
    assert result.code == 0, result.err
    assert memory_keyring == {(SERVICE, "a"): new}
    assert new not in result.out + result.err


def test_update_moves_the_secret_between_stores(
    memory_keyring: dict[Any, str], isolated_dirs: dict[str, Path]
) -> None:
    create("a")
    to_file = run("context", "update", "a", "--secret-storage", "file", "--no-verify")
    assert to_file.code == 0, to_file.err
    assert "warning" in to_file.err
    assert memory_keyring == {}
    assert secret_file_path("a", dict(os.environ)).read_text() == SECRET
    back = run("context", "update", "a", "--secret-storage", "keyring", "--no-verify")
    assert back.code == 0, back.err
    assert memory_keyring == {(SERVICE, "a"): SECRET}
    assert not secret_file_path("a", dict(os.environ)).exists()


def test_update_to_api_key_needs_the_key() -> None:
    create("a")
    result = run("context", "update", "a", "--auth-type", "apikey", "--no-verify")
    assert result.code == 2
    assert "--api-key-stdin" in result.err


def test_update_of_unknown_context_is_exit_3() -> None:
    assert run("context", "update", "nope", "--comment", "x").code == 3


# ---- a broken contexts file --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("context", "ls"),
        ("context", "use", "a"),
        ("context", "clear"),
        ("context", "rm", "a"),
        ("context", "get", "a"),
        ("context", "rename", "a", "b"),
        ("context", "update", "a", "--comment", "x"),
        ("context", "import-qlik-cli", str(DATA / "contexts.yml")),
    ],
)
def test_broken_file_is_exit_3_and_left_byte_for_byte(
    args: tuple[str, ...], memory_keyring: dict[Any, str]
) -> None:
    path = contexts_path(dict(os.environ))
    path.parent.mkdir(parents=True)
    broken = b'schema_version = 1\n[contexts.a]\nserver = "https://a.example.com\nclient_id = "c"\n'
    path.write_bytes(broken)
    result = run(*args)
    assert result.code == 3, result.err
    assert str(path) in result.err
    assert "line 3" in result.err
    assert path.read_bytes() == broken
    assert memory_keyring == {}
    created = create("fresh")
    assert created.code == 3
    assert path.read_bytes() == broken
    assert memory_keyring == {}


# ---- import from qlik-cli ----------------------------------------------------------------------


@pytest.fixture
def qlik_cli_file(tmp_path: Path) -> Path:
    copy = tmp_path / "home" / ".qlik" / "contexts.yml"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(DATA / "contexts.yml", copy)
    return copy


def test_import_dry_run_changes_nothing(
    qlik_cli_file: Path, memory_keyring: dict[Any, str]
) -> None:
    before = qlik_cli_file.read_bytes()
    result = run("context", "import-qlik-cli", str(qlik_cli_file), "--dry-run")
    assert result.code == 0, result.err
    report = result.json()
    assert report["dryRun"] is True
    assert sorted(entry["name"] for entry in report["imported"]) == [
        "acme-m2m",
        "acme.eu.qlikcloud.com",
        "both-kinds",
    ]
    assert len(report["skipped"]) == 6
    assert "Would import 3" in result.err
    assert memory_keyring == {}
    assert not contexts_path(dict(os.environ)).exists()
    assert qlik_cli_file.read_bytes() == before
    assert "fake-oauth-client-secret" not in result.out + result.err


def test_import_moves_secrets_to_the_keyring_and_leaves_the_source_alone(
    qlik_cli_file: Path, memory_keyring: dict[Any, str], isolated_dirs: dict[str, Path]
) -> None:
    before = qlik_cli_file.read_bytes()
    env = dict(os.environ, HOME=str(qlik_cli_file.parent.parent))
    result = run("context", "import-qlik-cli", env=env)
    assert result.code == 0, result.err
    assert memory_keyring == {
        (SERVICE, "acme.eu.qlikcloud.com"): "eyJhbGciOiJFUzM4NCJ9.fake-api-key-for-tests-0001",
        (SERVICE, "acme-m2m"): "fake-oauth-client-secret-for-tests-0002",
        (SERVICE, "both-kinds"): "fake-oauth-client-secret-for-tests-0004",
    }
    loaded = load_contexts(dict(os.environ))
    assert set(loaded.contexts) == {"acme.eu.qlikcloud.com", "acme-m2m", "both-kinds"}
    assert loaded.contexts["acme-m2m"].client_id == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert loaded.contexts["acme.eu.qlikcloud.com"].auth_type == "apikey"
    assert loaded.current == "acme-m2m"
    assert result.json()["current"] == "acme-m2m"
    assert qlik_cli_file.read_bytes() == before
    for secret in memory_keyring.values():
        assert secret not in result.out + result.err
        assert_secret_in_no_file(secret, isolated_dirs)
    assert "skipped 'user-oauth'" in result.err

    again = run("context", "import-qlik-cli", str(qlik_cli_file))
    assert again.code == 0
    assert again.json()["imported"] == []
    assert sum("exists" in entry["reason"] for entry in again.json()["skipped"]) == 3
    forced = run("context", "import-qlik-cli", str(qlik_cli_file), "--force")
    assert len(forced.json()["imported"]) == 3


def test_import_without_a_keyring_is_exit_7_and_imports_nothing(
    qlik_cli_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = run("context", "import-qlik-cli", str(qlik_cli_file))
    assert result.code == 7
    assert not contexts_path(dict(os.environ)).exists()


def test_a_dry_run_without_a_keyring_lists_the_import_then_fails_like_it(
    qlik_cli_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = run("context", "import-qlik-cli", str(qlik_cli_file), "--dry-run")
    assert result.code == 7
    assert len(result.json()["imported"]) == 3
    assert "Would import 3" in result.err
    assert "--secret-storage file" in result.err
    assert not contexts_path(dict(os.environ)).exists()
    with_files = run(
        "context", "import-qlik-cli", str(qlik_cli_file), "--dry-run", "--secret-storage", "file"
    )
    assert with_files.code == 0, with_files.err


class SecondWriteFails(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        if self.store:
            from keyring.errors import PasswordSetError

            raise PasswordSetError("the keyring is full")
        super().set_password(service, username, password)


def test_import_is_all_or_nothing_when_the_keyring_fails_midway(
    qlik_cli_file: Path, keyring_backend: Any
) -> None:
    keyring_backend(SecondWriteFails)
    result = run("context", "import-qlik-cli", str(qlik_cli_file))
    assert result.code == 7
    assert "keyring is full" in result.err
    assert MemoryKeyring.store == {}
    assert not contexts_path(dict(os.environ)).exists()


def test_import_of_a_missing_file_is_exit_3(tmp_path: Path) -> None:
    result = run("context", "import-qlik-cli", str(tmp_path / "none.yml"))
    assert result.code == 3
    assert "No qlik-cli contexts file" in result.err


# ---- validation against the sandbox tenant -----------------------------------------------------


def sandbox_create(sandbox: Any, name: str, *extra: str, secret: str | None = None) -> Result:
    return run(
        "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle, *extra,
        stdin=(secret or sandbox.client_secret) + "\n",
    )  # fmt: skip


def test_create_validates_against_the_tenant_before_saving(
    sandbox: Any, memory_keyring: dict[Any, str], isolated_dirs: dict[str, Path]
) -> None:
    result = sandbox_create(sandbox, "sbx")
    assert result.code == 0, result.err
    view = result.json()
    assert view["verified"] is True
    assert view["authenticatedAs"]["clientId"] == sandbox.client_id
    assert f"Authenticated as Sandbox M2M client (qlikbot\\{sandbox.client_id})" in result.err
    assert view["caBundle"] == sandbox.ca_bundle
    assert sandbox.count("POST /oauth/token") == 1
    assert sandbox.count("GET /api/v1/users/me") == 1
    assert memory_keyring == {(SERVICE, "sbx"): sandbox.client_secret}
    # Validation uses no token cache: a failed attempt could leave nothing behind either.
    assert list(files_under(isolated_dirs["cache"])) == []
    assert_secret_in_no_file(sandbox.client_secret, isolated_dirs)


def test_wrong_secret_is_exit_4_and_saves_nothing(
    sandbox: Any, memory_keyring: dict[Any, str], isolated_dirs: dict[str, Path]
) -> None:
    result = sandbox_create(sandbox, "sbx", secret="wrong-secret-0123456789")
    assert result.code == 4
    assert "wrong-secret-0123456789" not in result.out + result.err
    assert memory_keyring == {}
    assert list(files_under(isolated_dirs["config"], isolated_dirs["cache"])) == []


def test_untrusted_tenant_is_exit_6_and_saves_nothing(
    sandbox: Any, memory_keyring: dict[Any, str], isolated_dirs: dict[str, Path]
) -> None:
    result = run(
        "context", "create", "sbx", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", stdin=sandbox.client_secret + "\n",
    )  # fmt: skip
    assert result.code == 6
    assert "--ca-bundle" in result.err
    assert memory_keyring == {}
    assert list(files_under(isolated_dirs["config"], isolated_dirs["cache"])) == []


def test_api_key_context_is_validated_without_minting(
    sandbox: Any, memory_keyring: dict[Any, str]
) -> None:
    result = run(
        "context", "create", "key", "--server", sandbox.url, "--api-key-stdin", "--ca-bundle",
        sandbox.ca_bundle, stdin=sandbox.api_key + "\n",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["authType"] == "apikey"
    assert sandbox.count("POST /oauth/token") == 0
    assert sandbox.count("GET /api/v1/users/me") == 1
    assert memory_keyring == {(SERVICE, "key"): sandbox.api_key}


def test_a_saved_context_serves_commands_and_new_secrets_drop_its_tokens(
    sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    assert sandbox_create(sandbox, "sbx", "--use").code == 0
    me = run("user", "me")
    assert me.code == 0, me.err
    assert me.json()["clientId"] == sandbox.client_id
    assert len(list(files_under(isolated_dirs["cache"]))) >= 1
    rotated = run(
        "context", "update", "sbx", "--client-secret-stdin", stdin=sandbox.client_secret + "\n"
    )
    assert rotated.code == 0, rotated.err
    assert rotated.json()["droppedTokens"] == 1
    assert "Dropped 1 cached token" in rotated.err
    assert run("user", "me").code == 0
    removed = run("context", "rm", "sbx")
    assert removed.code == 0
    assert removed.json()["droppedTokens"] == 1
    assert MemoryKeyring.store == {}


def test_rm_drops_only_its_own_tokens_not_those_of_another_context_of_the_client(
    sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    assert sandbox_create(sandbox, "one", "--use").code == 0
    assert sandbox_create(sandbox, "two").code == 0
    assert run("user", "me").code == 0
    assert run("--context", "two", "user", "me").code == 0
    # Each context's token is bound to its own credential generation: two cache files.
    assert len(list((isolated_dirs["cache"] / "tokens").glob("*.json"))) == 2
    minted = sandbox.count("POST /oauth/token")
    first = run("context", "rm", "one")
    assert first.code == 0, first.err
    assert first.json()["droppedTokens"] == 1
    # The other context goes on with its own cached token: no new mint.
    assert run("--context", "two", "user", "me").code == 0
    assert sandbox.count("POST /oauth/token") == minted
    last = run("context", "rm", "two")
    assert last.json()["droppedTokens"] == 1
    assert not list((isolated_dirs["cache"] / "tokens").glob("*.json"))


def test_a_context_never_uses_the_token_another_context_of_the_client_minted(
    sandbox: Any,
) -> None:
    # issue 9 section 1: `ok` and `bad` share server and client id; `bad` has a wrong secret.
    assert sandbox_create(sandbox, "ok").code == 0
    assert sandbox_create(sandbox, "bad", "--no-verify", secret="wrong-secret-0123456789").code == 0
    assert run("-c", "ok", "tenant", "me").code == 0
    bad = run("-c", "bad", "tenant", "me")
    assert bad.code == 4, bad.err
    doctor = run("-c", "bad", "-o", "json", "doctor")
    assert doctor.code == 4, doctor.out
    checks = {check["check"]: check["status"] for check in doctor.json()["checks"]}
    assert checks["token"] == "fail"
    # ok still has its own cached token.
    before = sandbox.count("POST /oauth/token")
    assert run("-c", "ok", "tenant", "me").code == 0
    assert sandbox.count("POST /oauth/token") == before


def test_a_new_secret_renews_the_generation_and_rename_keeps_it(
    sandbox: Any, memory_keyring: dict[Any, str]
) -> None:
    assert sandbox_create(sandbox, "sbx").code == 0
    first = load_contexts(dict(os.environ)).contexts["sbx"].credential_generation
    assert first
    assert len(first) == 32
    assert run("context", "rename", "sbx", "renamed").code == 0
    assert load_contexts(dict(os.environ)).contexts["renamed"].credential_generation == first
    assert run("-c", "renamed", "tenant", "me").code == 0
    updated = run(
        "context", "update", "renamed", "--client-secret-stdin", stdin=sandbox.client_secret + "\n"
    )
    assert updated.code == 0, updated.err
    assert updated.json()["droppedTokens"] == 1
    second = load_contexts(dict(os.environ)).contexts["renamed"].credential_generation
    assert second not in (None, first)
    # A change that does not touch the secret keeps the generation.
    assert run("context", "update", "renamed", "--comment", "note").code == 0
    assert load_contexts(dict(os.environ)).contexts["renamed"].credential_generation == second


def test_a_token_cached_by_a_context_survives_a_keyring_swap_but_doctor_sees_it(
    sandbox: Any, memory_keyring: dict[Any, str]
) -> None:
    assert sandbox_create(sandbox, "sbx").code == 0
    assert run("-c", "sbx", "tenant", "me").code == 0
    # Removed behind its back: the warm path (no keyring read) goes on with the cached token...
    del memory_keyring[(SERVICE, "sbx")]
    assert run("-c", "sbx", "tenant", "me").code == 0
    # ...but doctor judges the stored credentials: the secret is gone from its store.
    doctor = run("-c", "sbx", "-o", "json", "doctor")
    assert doctor.code == 3, doctor.out
    token = next(c for c in doctor.json()["checks"] if c["check"] == "token")
    assert token["status"] == "fail"
    assert "has no client secret for context 'sbx'" in token["detail"]
    # Swapped for another secret behind its back: doctor refuses the cached token (its
    # fingerprint does not match) and mints with the stored secret, which the tenant refuses.
    memory_keyring[(SERVICE, "sbx")] = "wrong-secret-0123456789"
    doctor = run("-c", "sbx", "-o", "json", "doctor")
    assert doctor.code == 4, doctor.out


def test_doctor_proves_a_cached_token_of_the_stored_secret_without_minting(
    sandbox: Any,
) -> None:
    assert sandbox_create(sandbox, "sbx").code == 0
    assert run("-c", "sbx", "tenant", "me").code == 0
    before = sandbox.count("POST /oauth/token")
    doctor = run("-c", "sbx", "-o", "json", "doctor")
    assert doctor.code == 0, doctor.out
    token = next(c for c in doctor.json()["checks"] if c["check"] == "token")
    assert token["detail"].startswith("token from the token cache")
    assert sandbox.count("POST /oauth/token") == before


def test_a_context_from_before_generations_mints_rather_than_trust_an_old_token(
    sandbox: Any, isolated_dirs: dict[str, Path]
) -> None:
    assert sandbox_create(sandbox, "ok").code == 0
    assert sandbox_create(sandbox, "bad", "--no-verify", secret="wrong-secret-0123456789").code == 0
    path = contexts_path(dict(os.environ))
    # A schema-1 file, as an older qlikm2m wrote it, and a token cached the old way.
    old = "\n".join(
        line for line in path.read_text().splitlines() if "credential_generation" not in line
    ).replace("schema_version = 2", "schema_version = 1")
    path.write_text(old + "\n")
    assert run("-c", "ok", "tenant", "me").code == 0
    assert "credential_generation" in path.read_text()  # bound on first use
    bad = run("-c", "bad", "tenant", "me")
    assert bad.code == 4, bad.err


def test_a_bom_before_a_secret_on_stdin_is_stripped(
    sandbox: Any, memory_keyring: dict[Any, str]
) -> None:
    result = sandbox_create(sandbox, "sbx", secret="\ufeff" + sandbox.client_secret)
    assert result.code == 0, result.err
    assert memory_keyring == {(SERVICE, "sbx"): sandbox.client_secret}
    env = {**os.environ, "QLIK_SERVER": sandbox.url, "QLIK_CA_BUNDLE": sandbox.ca_bundle}
    given = run(
        "tenant", "me", "--client-id", sandbox.client_id, "--client-secret-stdin",
        stdin="\ufeff" + sandbox.client_secret + "\r\n", env=env,
    )  # fmt: skip
    assert given.code == 0, given.err


def test_a_bom_in_a_secret_file_is_stripped(sandbox: Any) -> None:
    result = sandbox_create(sandbox, "sbx", "--secret-storage", "file")
    assert result.code == 0, result.err
    path = secret_file_path("sbx", dict(os.environ))
    path.write_bytes(b"\xef\xbb\xbf" + sandbox.client_secret.encode() + b"\r\n")
    assert run("-c", "sbx", "tenant", "me", "--no-token-cache").code == 0


class _ClosedStdin(io.StringIO):
    def readline(self, size: int | None = -1) -> str:
        raise ValueError("I/O operation on closed file.")


@pytest.mark.parametrize("stdin", [None, "closed"])
@pytest.mark.parametrize(
    "args",
    [
        ("context", "create", "x", "--server", "t.example.com", "--client-id", "c",
         "--client-secret-stdin", "--no-verify"),
        ("context", "create", "x", "--server", "t.example.com", "--api-key-stdin", "--no-verify"),
        ("tenant", "me", "--server", "t.example.com", "--client-id", "c", "--client-secret-stdin"),
    ],
)  # fmt: skip
def test_a_closed_stdin_is_a_usage_error(args: tuple[str, ...], stdin: str | None) -> None:
    runtime = Runtime(
        env=dict(os.environ),
        stdin=_ClosedStdin() if stdin else None,  # type: ignore[arg-type] - as sys.stdin is
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    code = cli.main(list(args), runtime=runtime)
    assert isinstance(runtime.stderr, io.StringIO)
    err = runtime.stderr.getvalue()
    assert code == 2, err
    assert "stdin is closed" in err
    assert "unexpected" not in err.lower()


def test_update_with_a_wrong_secret_keeps_the_old_one(
    sandbox: Any, memory_keyring: dict[Any, str]
) -> None:
    assert sandbox_create(sandbox, "sbx").code == 0
    result = run(
        "context", "update", "sbx", "--client-secret-stdin", stdin="wrong-secret-0123456789\n"
    )
    assert result.code == 4
    assert memory_keyring == {(SERVICE, "sbx"): sandbox.client_secret}


def test_update_keeps_the_old_secret_when_the_contexts_file_cannot_be_written(
    memory_keyring: dict[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qlikm2m import fileio

    assert create("prod").code == 0
    path = contexts_path(dict(os.environ))
    before = path.read_bytes()
    real = fileio.atomic_write

    def full_disk(target: Path, data: bytes, *, mode: int = 0o600) -> None:
        if target == path:
            raise OSError(28, "No space left on device")
        real(target, data, mode=mode)

    monkeypatch.setattr(fileio, "atomic_write", full_disk)
    result = run(
        "context", "update", "prod", "--client-secret-stdin", "--no-verify",
        stdin="new-secret-0123456789\n",
    )  # fmt: skip
    assert result.code == 3, result.err
    assert "No space left on device; nothing was changed" in result.err
    assert memory_keyring == {(SERVICE, "prod"): SECRET}
    assert path.read_bytes() == before
