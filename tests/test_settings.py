"""Settings resolution: URL normalisation, the precedence order, credential sets and sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import make_runtime
from hypothesis import given
from hypothesis import strategies as st

from qlikm2m.contexts import Context, update_contexts
from qlikm2m.errors import ConfigError, QlikM2MError, UsageError
from qlikm2m.redaction import redact
from qlikm2m.settings import (
    explicit_settings,
    normalize_server_url,
    parse_impersonation,
    resolve_settings,
)

SECRET = "s3cr3t-value-that-is-long-enough"


ENV = {
    "QLIK_SERVER": "tenant.example.com",
    "QLIK_CLIENT_ID": "client-1",
    "QLIK_CLIENT_SECRET": SECRET,
}


# --- normalize_server_url ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("tenant.eu.qlikcloud.com", "https://tenant.eu.qlikcloud.com"),
        ("  https://Tenant.EU.qlikcloud.com/  ", "https://tenant.eu.qlikcloud.com"),
        ("https://tenant.eu.qlikcloud.com/api/v1/items", "https://tenant.eu.qlikcloud.com"),
        ("https://tenant.eu.qlikcloud.com/api", "https://tenant.eu.qlikcloud.com"),
        ("https://tenant.eu.qlikcloud.com:443", "https://tenant.eu.qlikcloud.com"),
        ("https://tenant.eu.qlikcloud.com:8443/", "https://tenant.eu.qlikcloud.com:8443"),
        ("localhost:8443", "https://localhost:8443"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:9000/api/v1", "http://127.0.0.1:9000"),
        ("http://127.45.6.7", "http://127.45.6.7"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_normalize_accepts_and_canonicalises(raw: str, expected: str) -> None:
    assert normalize_server_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "empty"),
        ("http://tenant.example.com", "http://"),
        ("http://128.0.0.1", "http://"),
        ("http://localhost.evil.com", "http://"),
        ("ftp://tenant.example.com", "ftp://"),
        ("https://user:pw@tenant.example.com", "user name or password"),
        ("https://tenant.example.com/?x=1", "query"),
        ("https://tenant.example.com/#frag", "fragment"),
        ("https://tenant.example.com/explore/spaces", "path"),
        ("https://", "no host"),
        ("https://tenant.example.com:99999", "not a valid"),
        ("https://tenant.example.com:abc", "not a valid"),
        ("https://ten ant.example.com", "not a valid"),
        ("https://tenant_.example..com", "invalid host"),
    ],
)
def test_normalize_refuses_bad_urls(raw: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_server_url(raw)
    assert words in caught.value.message
    assert caught.value.exit_code == 3


def test_userinfo_password_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_server_url("https://me:hunter2-password@tenant.example.com")
    assert "hunter2-password" not in caught.value.message + (caught.value.hint or "")


@given(st.text(max_size=80))
def test_normalize_raises_only_config_errors(raw: str) -> None:
    try:
        result = normalize_server_url(raw)
    except ConfigError:
        return
    assert result.startswith(("https://", "http://"))
    assert normalize_server_url(result) == result


# --- resolution from flags and the environment ---


def test_environment_only() -> None:
    settings = resolve_settings(make_runtime(**ENV))
    assert settings.server.value == "https://tenant.example.com"
    assert settings.server.source == "env QLIK_SERVER"
    assert settings.client_id.value == "client-1"
    assert settings.client_id.source == "env QLIK_CLIENT_ID"
    assert settings.kind == "oauth"
    assert settings.secret() == SECRET
    assert settings.secret_source == "env QLIK_CLIENT_SECRET"
    assert settings.secret_at_hand
    assert settings.use_token_cache
    assert settings.token_cache.source == "default"


def test_flags_beat_environment() -> None:
    settings = resolve_settings(
        make_runtime(**ENV, QLIK_SCOPE="user_default"),
        server="https://other.example.com",
        client_id="client-2",
        scope="admin_classic",
        connect_timeout=3.0,
    )
    assert (settings.server.value, settings.server.source) == (
        "https://other.example.com",
        "flag --server",
    )
    assert (settings.client_id.value, settings.client_id.source) == ("client-2", "flag --client-id")
    assert (settings.scope.value, settings.scope.source) == ("admin_classic", "flag --scope")
    assert (settings.connect_timeout.value, settings.connect_timeout.source) == (
        "3",
        "flag --connect-timeout",
    )
    # The flag's client id is completed by the environment's secret: one explicit layer.
    assert settings.secret() == SECRET


def test_empty_variables_count_as_unset() -> None:
    runtime = make_runtime(**ENV, QLIK_API_KEY="", QLIK_ACCESS_TOKEN="  ", QLIK_SCOPE="")
    settings = resolve_settings(runtime)
    assert settings.kind == "oauth"
    assert settings.scope.value is None


def test_client_id_without_secret_names_the_missing_piece() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(make_runtime(QLIK_SERVER="t.example.com", QLIK_CLIENT_ID="c"))
    assert "no client secret" in caught.value.message
    assert "QLIK_CLIENT_SECRET" in (caught.value.hint or "")


def test_secret_without_client_id_names_the_missing_piece() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(make_runtime(QLIK_SERVER="t.example.com", QLIK_CLIENT_SECRET=SECRET))
    assert "no client id" in caught.value.message
    assert SECRET not in redact(caught.value.message + (caught.value.hint or ""))


def test_no_server_is_a_config_error() -> None:
    env = {k: v for k, v in ENV.items() if k != "QLIK_SERVER"}
    with pytest.raises(ConfigError) as caught:
        resolve_settings(make_runtime(**env))
    assert "tenant URL" in caught.value.message


def test_nothing_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(make_runtime())
    assert "credentials" in caught.value.message


def test_api_key_mode() -> None:
    settings = resolve_settings(make_runtime(QLIK_SERVER="t.example.com", QLIK_API_KEY="k" * 40))
    assert settings.kind == "apikey"
    assert settings.auth_type.source == "env QLIK_API_KEY"
    assert settings.secret() == "k" * 40
    assert settings.client_id.value is None


def test_access_token_mode_wins_over_other_environment_credentials() -> None:
    settings = resolve_settings(
        make_runtime(**ENV, QLIK_API_KEY="k" * 40, QLIK_ACCESS_TOKEN="t" * 40)
    )
    assert settings.kind == "token"
    assert settings.secret() == "t" * 40


def test_client_id_flag_selects_oauth_even_with_a_token_in_the_environment() -> None:
    runtime = make_runtime(**ENV, QLIK_ACCESS_TOKEN="t" * 40)
    settings = resolve_settings(runtime, client_id="client-9")
    assert settings.kind == "oauth"
    assert settings.client_id.value == "client-9"


def test_secret_from_stdin() -> None:
    runtime = make_runtime(stdin="piped-secret-123456\n", QLIK_SERVER="t.example.com")
    settings = resolve_settings(runtime, client_id="c", client_secret_stdin=True)
    assert settings.secret() == "piped-secret-123456"
    assert settings.secret_source == "stdin"
    assert "piped-secret-123456" not in redact("x piped-secret-123456 y")


def test_empty_stdin_secret_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        resolve_settings(
            make_runtime(stdin="", QLIK_SERVER="t.example.com"),
            client_id="c",
            client_secret_stdin=True,
        )


def test_token_cache_switches() -> None:
    assert not resolve_settings(make_runtime(**ENV), no_token_cache=True).use_token_cache
    off = resolve_settings(make_runtime(**ENV, QLIKM2M_NO_TOKEN_CACHE="1"))
    assert not off.use_token_cache
    assert off.token_cache.source == "env QLIKM2M_NO_TOKEN_CACHE"
    assert resolve_settings(make_runtime(**ENV, QLIKM2M_NO_TOKEN_CACHE="0")).use_token_cache


def test_timeouts_from_the_environment_and_bad_values() -> None:
    settings = resolve_settings(
        make_runtime(**ENV, QLIKM2M_READ_TIMEOUT="2.5", QLIKM2M_MAX_RETRY_WAIT="0")
    )
    assert settings.seconds("read_timeout") == 2.5
    assert settings.seconds("max_retry_wait") == 0
    with pytest.raises(ConfigError, match="QLIKM2M_CONNECT_TIMEOUT"):
        resolve_settings(make_runtime(**ENV, QLIKM2M_CONNECT_TIMEOUT="soon"))
    with pytest.raises(ConfigError, match="QLIKM2M_MAX_RETRIES"):
        resolve_settings(make_runtime(**ENV, QLIKM2M_MAX_RETRIES="-1"))
    with pytest.raises(UsageError):
        resolve_settings(make_runtime(**ENV), read_timeout=0)


def test_ca_bundle_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle"):
        resolve_settings(make_runtime(**ENV, QLIK_CA_BUNDLE=str(tmp_path / "missing.pem")))
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = resolve_settings(make_runtime(**ENV), ca_bundle=str(pem))
    assert settings.ca_bundle.value == str(pem.resolve())
    assert settings.ca_bundle.source == "flag --ca-bundle"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("subject:auth0|abc", "subject:auth0|abc"), ("userid:6478a", "userId:6478a")],
)
def test_impersonation(raw: str, expected: str) -> None:
    assert parse_impersonation(raw) == expected
    settings = resolve_settings(make_runtime(**ENV), impersonate=raw)
    assert settings.impersonation == tuple(expected.split(":", 1))


@pytest.mark.parametrize("raw", ["someone", "email:x@y", "subject:", ":x"])
def test_bad_impersonation_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError):
        parse_impersonation(raw)


def test_impersonation_needs_oauth() -> None:
    with pytest.raises(UsageError):
        resolve_settings(
            make_runtime(QLIK_SERVER="t.example.com", QLIK_API_KEY="k" * 40),
            impersonate="subject:x",
        )


def test_describe_masks_the_secret_and_repr_hides_it() -> None:
    settings = resolve_settings(make_runtime(**ENV))
    rows = {row["name"]: row for row in settings.describe()}
    assert rows["server"] == {
        "name": "server",
        "value": "https://tenant.example.com",
        "source": "env QLIK_SERVER",
    }
    assert rows["client_secret"]["source"] == "env QLIK_CLIENT_SECRET"
    assert SECRET not in str(settings.describe())
    assert SECRET not in repr(settings)


def test_explicit_settings_for_context_validation() -> None:
    settings = explicit_settings(
        server="tenant.example.com/", auth_type="oauth", client_id="c", secret=SECRET
    )
    assert settings.server_url == "https://tenant.example.com"
    assert settings.secret() == SECRET
    assert settings.secret_at_hand
    with pytest.raises(ConfigError):
        explicit_settings(server="x.example.com", auth_type="oauth", client_id=None, secret="s")


# --- contexts: selection and the credential-set rule ---


def _save_context(
    name: str, *, server: str = "https://ctx.example.com", current: bool = True
) -> None:
    context = Context(name=name, server=server, auth_type="oauth", client_id=f"{name}-client")

    def change(contexts_file):  # type: ignore[no-untyped-def]
        updated = contexts_file.with_context(context)
        return updated.with_current(name) if current else updated

    update_contexts({"QLIKM2M_CONFIG_DIR": os.environ["QLIKM2M_CONFIG_DIR"]}, change)


def test_current_context_supplies_server_and_credentials_without_reading_the_secret() -> None:
    _save_context("prod")
    settings = resolve_settings(make_runtime())
    assert settings.context_name.value == "prod"
    assert settings.context_name.source == "current context"
    assert settings.server.source == "context 'prod'"
    assert settings.client_id.value == "prod-client"
    # The keyring is the failing backend in tests: nothing was read yet.
    assert not settings.secret_at_hand
    with pytest.raises(QlikM2MError):
        settings.secret()


def test_context_flag_beats_environment_selection() -> None:
    _save_context("a", current=True)
    _save_context("b", server="https://b.example.com", current=False)
    settings = resolve_settings(make_runtime(context="b", QLIK_CONTEXT="a"))
    assert settings.context_name.value == "b"
    assert settings.context_name.source == "flag --context"
    settings = resolve_settings(make_runtime(QLIK_CONTEXT="b"))
    assert settings.context_name.source == "env QLIK_CONTEXT"
    with pytest.raises(ConfigError, match="nope"):
        resolve_settings(make_runtime(context="nope"))


def test_environment_client_id_is_never_paired_with_a_context_secret() -> None:
    _save_context("prod")
    with pytest.raises(ConfigError) as caught:
        resolve_settings(make_runtime(context="prod", QLIK_CLIENT_ID="someone-else"))
    assert "no client secret" in caught.value.message


def test_complete_environment_sets_aside_an_implicit_current_context() -> None:
    _save_context("prod")
    settings = resolve_settings(make_runtime(**ENV))
    assert settings.context_name.value is None
    assert settings.server.source == "env QLIK_SERVER"


def test_context_credentials_are_not_sent_to_another_server() -> None:
    _save_context("prod")
    with pytest.raises(ConfigError, match="not the server"):
        resolve_settings(make_runtime(QLIK_SERVER="https://elsewhere.example.com"))
    # The same server, spelled differently, is fine.
    settings = resolve_settings(make_runtime(QLIK_SERVER="ctx.example.com/api/v1"))
    assert settings.client_id.value == "prod-client"
