"""The token module: mint, cache, expiry margin, fingerprint, invalidation, refusals."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import FakeClock

from qlikm2m.errors import AuthError, NetworkError
from qlikm2m.http import Response
from qlikm2m.runtime import Runtime
from qlikm2m.settings import ResolvedSettings, resolve_settings
from qlikm2m.tokens import (
    IMPERSONATION_GRANT,
    REFRESH_MARGIN,
    TokenManager,
    cached_tokens,
    drop_cached_tokens,
    token_dir,
)

SECRET = "client-secret-for-token-tests-0123456789"
NOW = 1_800_000_000.0


def _env(**extra: str) -> dict[str, str]:
    return {
        "QLIKM2M_CONFIG_DIR": os.environ["QLIKM2M_CONFIG_DIR"],
        "QLIKM2M_CACHE_DIR": os.environ["QLIKM2M_CACHE_DIR"],
        "QLIK_SERVER": "https://tenant.example.com",
        "QLIK_CLIENT_ID": "client-1",
        "QLIK_CLIENT_SECRET": SECRET,
        **extra,
    }


def _settings(env: dict[str, str] | None = None, **flags: Any) -> ResolvedSettings:
    runtime = Runtime(
        env=env or _env(), stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO()
    )
    return resolve_settings(runtime, **flags)


def _response(
    status: int, body: Any, url: str = "https://tenant.example.com/oauth/token"
) -> Response:
    raw = requests.Response()
    raw.status_code = status
    raw.reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 503: "Busy"}.get(status, "")
    raw._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    raw._content_consumed = True
    raw.headers["Content-Type"] = "application/json"
    raw.url = url
    return Response(raw, method="POST")


class FakeTransport:
    """Answers the token endpoint with numbered tokens and records what was asked."""

    def __init__(self, *, expires_in: Any = 21600, status: int = 200, error: Any = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.expires_in = expires_in
        self.status = status
        self.error = error

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.requests.append({"method": method, "url": url, **kwargs})
        if self.status != 200:
            return _response(self.status, self.error or {})
        body: dict[str, Any] = {
            "access_token": f"token-number-{len(self.requests)}-abcdefghijkl",
            "token_type": "Bearer",
            "scope": "user_default",
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return _response(200, body)


def _manager(
    transport: FakeTransport,
    settings: ResolvedSettings | None = None,
    clock: FakeClock | None = None,
) -> TokenManager:
    settings = settings or _settings()
    return TokenManager(
        settings,
        _env(),
        transport,  # type: ignore[arg-type]
        clock=clock or FakeClock(NOW),
    )


def test_mint_sends_a_json_client_credentials_body() -> None:
    transport = FakeTransport()
    token = _manager(transport, _settings(scope="user_default admin_classic")).token()
    assert token.origin == "minted"
    assert token.expires_at == NOW + 21600
    [sent] = transport.requests
    assert sent["method"] == "POST"
    assert sent["url"] == "https://tenant.example.com/oauth/token"
    assert sent["json_body"] == {
        "client_id": "client-1",
        "client_secret": SECRET,
        "grant_type": "client_credentials",
        "scope": "user_default admin_classic",
    }


def test_impersonation_uses_the_impersonation_grant() -> None:
    transport = FakeTransport()
    _manager(transport, _settings(impersonate="subject:auth0|abc")).token()
    body = transport.requests[0]["json_body"]
    assert body["grant_type"] == IMPERSONATION_GRANT
    assert body["user_lookup"] == {"field": "subject", "value": "auth0|abc"}


def test_second_process_reuses_the_cached_token() -> None:
    first = FakeTransport()
    minted = _manager(first).token()
    second = FakeTransport()
    cached = _manager(second).token()
    assert second.requests == []
    assert cached.value == minted.value
    assert cached.origin == "cache"


def test_cache_file_is_private_atomic_and_holds_no_secret() -> None:
    _manager(FakeTransport()).token()
    folder = token_dir(_env())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert SECRET not in files[0].read_text()
    assert not list(folder.glob("*.tmp"))


def test_scope_and_impersonation_get_their_own_entries() -> None:
    transport = FakeTransport()
    _manager(transport).token()
    _manager(transport, _settings(scope="admin_classic")).token()
    _manager(transport, _settings(impersonate="userId:u1")).token()
    _manager(transport, _settings(impersonate="userId:u1")).token()
    assert len(transport.requests) == 3
    assert len(list(token_dir(_env()).glob("*.json"))) == 3


@pytest.mark.parametrize(
    ("seconds_left", "mints"), [(REFRESH_MARGIN + 1, 1), (REFRESH_MARGIN - 1, 2)]
)
def test_refresh_margin(seconds_left: float, mints: int) -> None:
    transport = FakeTransport(expires_in=3600)
    _manager(transport).token()
    later = FakeClock(NOW + 3600 - seconds_left)
    _manager(transport, clock=later).token()
    assert len(transport.requests) == mints


def test_expires_at_is_used_without_expires_in() -> None:
    transport = FakeTransport(expires_in=None)
    original = transport.request

    def with_expires_at(method: str, url: str, **kwargs: Any) -> Response:
        response = original(method, url, **kwargs)
        body = json.loads(response.read())
        body["expires_at"] = "2027-01-15T08:00:00.000Z"
        return _response(200, body)

    transport.request = with_expires_at  # type: ignore[method-assign]
    from datetime import datetime

    expected = datetime.fromisoformat("2027-01-15T08:00:00+00:00").timestamp()
    token = _manager(transport, clock=FakeClock(expected - 7200)).token()
    assert token.expires_at == expected


def test_token_without_known_lifetime_is_not_cached() -> None:
    transport = FakeTransport(expires_in=None)
    _manager(transport).token()
    _manager(transport).token()
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"version": 1}', b"[]", b'{"version": 99, "access_token": "x"}'],
)
def test_corrupt_cache_file_is_a_miss(content: bytes) -> None:
    transport = FakeTransport()
    manager = _manager(transport)
    manager.token()
    assert manager.cache_path is not None
    manager.cache_path.write_bytes(content)
    assert _manager(transport).token().origin == "minted"
    assert len(transport.requests) == 2


def test_foreign_or_loose_cache_file_is_a_miss() -> None:
    transport = FakeTransport()
    manager = _manager(transport)
    manager.token()
    path = manager.cache_path
    assert path is not None
    document = json.loads(path.read_text())
    document["key"]["server"] = "https://evil.example.com"
    path.write_text(json.dumps(document))
    os.chmod(path, 0o600)
    assert _manager(transport).token().origin == "minted"
    os.chmod(path, 0o644)
    assert _manager(transport).token().origin == "minted"
    assert len(transport.requests) == 3


def test_a_token_minted_with_another_secret_is_not_served() -> None:
    transport = FakeTransport()
    _manager(transport).token()
    rotated = _settings(_env(QLIK_CLIENT_SECRET="a-completely-different-secret-999"))
    token = _manager(transport, rotated).token()
    assert token.origin == "minted"
    assert len(transport.requests) == 2


def test_unauthorized_cached_token_is_dropped_and_reminted_once() -> None:
    transport = FakeTransport()
    _manager(transport).token()
    manager = _manager(transport)
    cached = manager.token()
    assert cached.origin == "cache"
    replacement = manager.after_unauthorized(cached)
    assert replacement is not None
    assert replacement.value != cached.value
    assert len(transport.requests) == 2
    # A token minted a moment ago is final: a second 401 will not mint again.
    assert manager.after_unauthorized(replacement) is None
    assert _manager(transport).token().value == replacement.value


def test_token_endpoint_refusal_is_an_auth_error_with_qlik_words() -> None:
    refusal = {
        "errors": [{"code": "OAUTH-5", "title": "Unauthorized", "detail": "bad credentials"}],
        "traceId": "0123",
    }
    transport = FakeTransport(status=401, error=refusal)
    with pytest.raises(AuthError) as caught:
        _manager(transport).token()
    error = caught.value
    assert error.exit_code == 4
    assert "Unauthorized: bad credentials (OAUTH-5)" in error.message
    assert "client id and secret" in (error.hint or "")
    assert SECRET not in error.message + (error.hint or "") + json.dumps(error.to_dict())


def test_token_endpoint_outage_is_a_network_error() -> None:
    with pytest.raises(NetworkError):
        _manager(FakeTransport(status=503)).token()


def test_api_key_and_given_token_are_used_directly() -> None:
    transport = FakeTransport()
    env = {k: v for k, v in _env().items() if not k.startswith("QLIK_CLIENT")}
    key = _manager(transport, _settings({**env, "QLIK_API_KEY": "api-key-value-0123456789"}))
    assert key.token().value == "api-key-value-0123456789"
    given = _manager(transport, _settings({**env, "QLIK_ACCESS_TOKEN": "given-token-0123456789"}))
    token = given.token()
    assert token.origin == "env"
    assert given.after_unauthorized(token) is None
    assert transport.requests == []


def test_no_token_cache_mints_every_time_and_writes_nothing() -> None:
    transport = FakeTransport()
    _manager(transport, _settings(no_token_cache=True)).token()
    _manager(transport, _settings(no_token_cache=True)).token()
    assert len(transport.requests) == 2
    assert not token_dir(_env()).exists() or not list(token_dir(_env()).glob("*.json"))


def test_drop_cached_tokens_only_drops_that_client() -> None:
    transport = FakeTransport()
    _manager(transport).token()
    _manager(transport, _settings(scope="admin_classic")).token()
    other = _settings(_env(QLIK_CLIENT_ID="client-2"))
    _manager(transport, other).token()
    server = "https://tenant.example.com"
    assert len(cached_tokens(_env(), server=server, client_id="client-1")) == 2
    assert drop_cached_tokens(_env(), server="tenant.example.com/", client_id="client-1") == 2
    assert drop_cached_tokens(_env(), server=server, client_id="client-1") == 0
    assert len(cached_tokens(_env(), server=server, client_id="client-2")) == 1


def test_unwritable_cache_mints_without_caching_and_warns_once(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "tokens").write_text("a file where the folder should be")
    env = _env(QLIKM2M_CACHE_DIR=str(blocked))
    transport = FakeTransport()
    warnings: list[str] = []
    manager = TokenManager(
        _settings(env),
        env,
        transport,  # type: ignore[arg-type]
        clock=FakeClock(NOW),
        warn=warnings.append,
    )
    assert manager.token().origin == "minted"
    assert manager.token().origin == "cache"  # the run keeps the token it holds
    next_run = TokenManager(_settings(env), env, transport, clock=FakeClock(NOW))  # type: ignore[arg-type]
    assert next_run.token().origin == "minted"  # but nothing was cached for the next run
    assert len(transport.requests) == 2
    assert manager.cache_problem is not None
    assert "tokens" in manager.cache_problem
    assert len(warnings) == 1


def _stored(generation: str | None, secret: str = SECRET) -> ResolvedSettings:
    """Settings as a stored context gives them: the secret is not at hand (its keyring)."""
    from qlikm2m.settings import _LazySecret

    return _settings()._replace(
        _secret=_LazySecret(lambda: secret, at_hand=False),
        stored_context="ctx",
        credential_generation=generation,
    )


def test_a_stored_context_uses_only_tokens_of_its_own_generation() -> None:
    transport = FakeTransport()
    ok = _manager(transport, _stored("gen-ok")).token()
    assert _manager(transport, _stored("gen-ok")).token().value == ok.value
    # Same server, client and scope, another generation (another secret was set): no sharing.
    other = _manager(transport, _stored("gen-bad", "wrong-secret")).token()
    assert other.origin == "minted"
    assert other.value != ok.value
    # Each keeps its own cache file: the first is still served.
    assert _manager(transport, _stored("gen-ok")).token().value == ok.value
    assert len(transport.requests) == 2


def test_env_credentials_and_a_stored_context_do_not_share_a_token() -> None:
    transport = FakeTransport()
    from_env = _manager(transport).token()
    stored = _manager(transport, _stored("gen-1")).token()
    assert stored.origin == "minted"
    assert stored.value != from_env.value


def test_an_unbound_stored_context_never_trusts_a_cached_token() -> None:
    transport = FakeTransport()
    _manager(transport, _stored(None)).token()
    again = _manager(transport, _stored(None)).token()
    assert again.origin == "minted"
    assert len(transport.requests) == 2
    assert _manager(transport, _stored(None)).cached() is None


def test_a_proven_secret_accepts_only_the_token_it_minted() -> None:
    transport = FakeTransport()
    minted = _manager(transport, _stored("gen-1")).token()
    proven = _manager(transport, _stored("gen-1").with_secret_read()).token()
    assert proven.value == minted.value
    assert proven.origin == "cache"
    # The stored secret was swapped behind qlikm2m's back: the fingerprint does not match.
    swapped = _stored("gen-1", "swapped-secret").with_secret_read()
    assert _manager(transport, swapped).token().origin == "minted"


def test_dropping_tokens_in_a_read_only_cache_keeps_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = FakeTransport()
    _manager(transport).token()
    server = _settings().server_url

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    assert drop_cached_tokens(_env(), server=server, client_id="client-1") == 0


def test_one_manager_reads_the_cache_file_once_for_many_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qlikm2m import tokens

    transport = FakeTransport()
    _manager(transport).token()
    reads: list[Path] = []
    real_read = tokens._read_entry

    def counting_read(path: Path) -> Any:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(tokens, "_read_entry", counting_read)
    manager = _manager(transport)
    # A listing asks once a page.
    values = {manager.token().value for _ in range(50)}
    assert len(values) == 1
    assert len(reads) == 1
    assert len(transport.requests) == 1


def test_a_held_minted_token_comes_back_as_cached_so_a_401_still_remints_once() -> None:
    transport = FakeTransport()
    manager = _manager(transport)
    minted = manager.token()
    assert minted.origin == "minted"
    again = manager.token()
    assert again.value == minted.value
    assert again.origin == "cache"  # as a re-read of the file would have said
    replacement = manager.after_unauthorized(again)
    assert replacement is not None
    assert replacement.value != minted.value
    assert manager.token().value == replacement.value
    assert len(transport.requests) == 2


def test_a_held_token_near_its_end_is_not_reused() -> None:
    transport = FakeTransport(expires_in=3600)
    clock = FakeClock(NOW)
    manager = _manager(transport, clock=clock)
    first = manager.token()
    clock.advance(3600 - REFRESH_MARGIN + 1)
    second = manager.token()
    assert second.value != first.value
    assert len(transport.requests) == 2


def test_a_token_without_known_lifetime_is_not_held_either() -> None:
    transport = FakeTransport(expires_in=None)
    manager = _manager(transport)
    manager.token()
    manager.token()
    assert len(transport.requests) == 2


def test_a_token_shows_no_value_however_it_is_printed() -> None:
    from qlikm2m.tokens import Token

    token = Token(value="tok-value-that-must-not-show", origin="minted", expires_at=12.5)
    for shown in (repr(token), str(token), f"{token}", f"{[token]}", f"{ {'t': token} }"):
        assert "tok-value-that-must-not-show" not in shown
        assert "origin='minted'" in shown
    with pytest.raises(AttributeError):
        token.value = "other"  # type: ignore[misc]


def test_the_records_built_on_every_start_generate_no_dataclass_code() -> None:
    # A frozen dataclass compiles its generated methods on every start (~1 ms each); these
    # records are built by every command, so they are NamedTuples (issue 14): immutable, by value.
    import dataclasses

    from qlikm2m.http.base import HttpOptions
    from qlikm2m.settings import Setting, SettingSpec, _Credentials
    from qlikm2m.tokens import CacheKey, Token, _Entry

    for record in (HttpOptions, Setting, SettingSpec, _Credentials, CacheKey, Token, _Entry):
        assert not dataclasses.is_dataclass(record), record
        assert issubclass(record, tuple), record
    assert CacheKey("s", "oauth", "c", "", "") == CacheKey("s", "oauth", "c", "", "")
    assert len({CacheKey("s", "oauth", "c", "", ""), CacheKey("s", "oauth", "c", "", "")}) == 1


def test_resolved_settings_are_immutable_compared_by_value_and_hide_the_secret() -> None:
    from qlikm2m.settings import _LazySecret

    settings = _settings()
    assert SECRET not in repr(settings)
    assert settings.secret() == SECRET
    with pytest.raises(AttributeError):
        settings.scope = settings.server  # type: ignore[misc]
    # The secret holder is not part of the value: the same settings read from elsewhere are equal.
    other = settings._replace(_secret=_LazySecret(lambda: "another-secret-value", at_hand=False))
    assert other == settings
    assert hash(other) == hash(settings)
    assert other.secret() == "another-secret-value"
    assert settings._replace(stored_context="ctx") != settings
    read = _stored("g1").with_secret_read()
    assert read.secret_at_hand
    assert read.stored_context == "ctx"


def test_a_runtime_shows_no_environment_and_copies_with_another_context() -> None:
    runtime = Runtime(
        env={"QLIK_CLIENT_SECRET": "env-secret-that-must-not-show"},
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        context="a",
        verbose=2,
    )
    assert "env-secret-that-must-not-show" not in repr(runtime)
    other = runtime.with_context("b")
    assert (other.context, other.verbose, other.env) == ("b", 2, runtime.env)
    assert runtime.context == "a"
    assert type(other) is type(runtime)
