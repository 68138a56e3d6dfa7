"""Fuzzing with hypothesis: every parser of outside input raises only the project's own errors.

Extends the plain-text fuzzing already in tests/test_settings.py (tenant URLs) and
tests/test_http.py (error bodies, retry-after) with structured inputs: URL-shaped strings, TOML-ish
contexts files, qlik-cli files, whole HTTP answers through ``error_for``, token cache files,
JMESPath queries on arbitrary data, ``-q``/``-H`` arguments, durations and the environment that
``resolve_settings`` reads.
"""

from __future__ import annotations

import ipaddress
import json
import os
import string
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import requests
from harness import make_runtime
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qlikm2m.commands.api import parse_headers, parse_params
from qlikm2m.contexts import contexts_path, load_contexts, update_contexts
from qlikm2m.errors import ApiError, ConfigError, QlikM2MError, UsageError
from qlikm2m.http import Response, error_for, raise_for_status
from qlikm2m.output import Output, compile_query
from qlikm2m.qlikcli_import import read_qlik_cli_contexts
from qlikm2m.reloads import parse_duration
from qlikm2m.settings import explicit_settings, normalize_server_url, resolve_settings
from qlikm2m.tokens import TokenManager, cache_key, fingerprint

T = TypeVar("T")

FUZZ = settings(
    max_examples=250,
    deadline=None,
    # The autouse tmp dirs are per test, not per example: each example rewrites its own files.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def attempt(function: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, Any]:
    """``(result, None)`` or ``(None, error)`` for the project's errors; anything else escapes."""
    try:
        return function(*args, **kwargs), None
    except QlikM2MError as error:
        return None, error


def assert_one_of_ours(error: QlikM2MError, *kinds: type[QlikM2MError]) -> None:
    assert isinstance(error, kinds or (QlikM2MError,)), type(error)
    assert type(error) is not QlikM2MError  # a specific kind, with its documented exit code
    assert error.message
    assert "\n" not in error.message
    assert "\r" not in error.message


def _json_children(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8), children, max_size=4
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    _json_children,
    max_leaves=20,
)


# --- tenant URLs ------------------------------------------------------------------------------

_ODD_HOSTS = [
    "tenant.eu.qlikcloud.com",
    "localhost",
    "LOCALHOST.",
    "127.0.0.1",
    "127.9.9.9",
    "[::1]",
    "::1",
    "[::1",
    "[::ffff:1.2.3.4]",
    "[fe80::1%eth0]",
    "[not:an:ip]",
    "xn--bcher-kva.example",
    "bücher.example",
    "例え.テスト",
    "-bad-.example",
    "a..b",
    "0x7f.1",
    "2130706433",
    "",
]
_SCHEMES = ["", "https://", "http://", "HTTPS://", "ftp://", "https:/", "//", "https:///"]
_USERINFO = ["", "user@", "user:s3cr3t-pw@", "@", ":@"]
_PORTS = ["", ":", ":x", ":+1", ": 80", ":0", ":443", ":65536"]
_PATHS = ["", "/", "/api", "/api/v1/items", "/API/", "/apix", "/explore", "//api", "/%2e%2e/"]
_TAILS = ["", "?", "?a=1", "#", "#frag", " ", "\n", "\x00", "\u200b"]

_URLS = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(_SCHEMES),
        st.sampled_from(_USERINFO),
        st.sampled_from(_ODD_HOSTS)
        | st.text(alphabet=string.ascii_letters + string.digits + ".-_[]:%@", max_size=30),
        st.sampled_from(_PORTS) | st.integers(-5, 70000).map(lambda port: f":{port}"),
        st.sampled_from(_PATHS),
        st.sampled_from(_TAILS),
    ),
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@FUZZ
@given(_URLS)
def test_url_shaped_input_normalises_to_scheme_and_host_or_is_a_config_error(raw: str) -> None:
    result, error = attempt(normalize_server_url, raw)
    if error is not None:
        assert_one_of_ours(error, ConfigError)
        assert "s3cr3t-pw" not in error.message + (error.hint or "")
        return
    assert result is not None
    parts = urlsplit(result)
    assert parts.scheme in ("https", "http")
    assert (parts.path, parts.query, parts.fragment, parts.username) == ("", "", "", None)
    assert parts.hostname
    if parts.scheme == "http":
        assert _is_loopback(parts.hostname)
    assert normalize_server_url(result) == result


# --- the contexts file ----------------------------------------------------------------------

_TOML_KEYS = [
    "server",
    "auth_type",
    "client_id",
    "scope",
    "ca_bundle",
    "comment",
    "secret_storage",
    "client_secret",
    "token",
    "schema_version",
    "current",
    "contexts",
    "x",
    '"quoted key"',
    "a.b",
]
_TOML_ODD_VALUES = [
    "1",
    "true",
    "[]",
    "{}",
    "1979-05-27",
    "'lit'",
    '"""x"""',
    "inf",
    "",
    "[1,",
    '"\\u00e9"',
    '"\\x"',
    '"oauth"',
    '"apikey"',
    '"file"',
    '"https://t.example.com"',
]
_TOML_HEADERS = [
    "[contexts]",
    "[[contexts]]",
    "[contexts.prod]",
    '[contexts."bad name"]',
    "[contexts.prod.nested]",
    "[other]",
]
_TOML_LINES = st.one_of(
    st.builds(
        "{} = {}".format,
        st.sampled_from(_TOML_KEYS),
        st.sampled_from(_TOML_ODD_VALUES) | st.text(max_size=12).map(json.dumps),
    ),
    st.sampled_from(_TOML_HEADERS),
    st.text(alphabet=string.ascii_letters + "._-:@[]", min_size=1, max_size=10).map(
        "[contexts.{}]".format
    ),
    st.sampled_from(["schema_version = 1", "schema_version = 99", 'current = "prod"', "# c", ""]),
    st.text(max_size=20),
)


def _load_from(raw: bytes) -> bool:
    """Load ``raw`` as the contexts file; True when it held contexts and they made the round trip."""
    env = dict(os.environ)
    path = contexts_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    loaded, error = attempt(load_contexts, env)
    if error is not None:
        assert_one_of_ours(error, ConfigError)
        # A broken file is reported, and never written over by a change.
        _, refused = attempt(update_contexts, env, lambda current: current.with_current(None))
        assert isinstance(refused, ConfigError)
        assert path.read_bytes() == raw
        return False
    assert loaded is not None
    if not loaded.contexts:
        return False
    # Whatever loads survives being written back and read again: two writes, there and back.
    first = next(iter(loaded.contexts.values()))
    touched = replace(first, comment=(first.comment or "") + "~")
    update_contexts(env, lambda current: current.with_context(touched))
    update_contexts(env, lambda current: current.with_context(first))
    again = load_contexts(env)
    assert (again.contexts, again.current) == (loaded.contexts, loaded.current)
    return True


@FUZZ
@given(st.binary(max_size=600))
def test_contexts_file_of_arbitrary_bytes(raw: bytes) -> None:
    _load_from(raw)


@FUZZ
@given(st.lists(_TOML_LINES, max_size=12).map("\n".join))
def test_contexts_file_of_toml_ish_text(text: str) -> None:
    _load_from(text.encode("utf-8", errors="surrogatepass"))


_NAMES = st.text(
    alphabet=string.ascii_letters + string.digits + "._-:@+[] ", min_size=1, max_size=12
)


@FUZZ
@given(
    st.dictionaries(
        _NAMES,
        st.dictionaries(
            st.sampled_from(_TOML_KEYS),
            st.sampled_from(["oauth", "apikey", "file", "keyring", "https://t.example.com"])
            | st.text(max_size=20),
            max_size=7,
        ),
        max_size=4,
    ),
    st.none() | _NAMES,
)
def test_contexts_file_of_well_formed_toml_with_any_values(
    tables: dict[str, dict[str, str]], current: str | None
) -> None:
    import tomli_w

    document: dict[str, Any] = {"schema_version": 1, "contexts": tables}
    if current is not None:
        document["current"] = current
    _load_from(tomli_w.dumps(document).encode())


_ANY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30
)  # quotes, newlines, controls, emoji: all must survive the write and the read
_VALID_CONTEXT = st.one_of(
    st.fixed_dictionaries(
        {"server": _ANY_TEXT.filter(str.strip), "client_id": _ANY_TEXT.filter(str.strip)},
        optional={
            "auth_type": st.just("oauth"),
            "scope": _ANY_TEXT,
            "ca_bundle": _ANY_TEXT,
            "comment": _ANY_TEXT,
            "secret_storage": st.sampled_from(["keyring", "file"]),
        },
    ),
    st.fixed_dictionaries(
        {"server": _ANY_TEXT.filter(str.strip), "auth_type": st.just("apikey")},
        optional={"comment": _ANY_TEXT, "secret_storage": st.sampled_from(["keyring", "file"])},
    ),
)
_CONTEXT_NAMES = st.from_regex(r"[A-Za-z0-9\[][A-Za-z0-9._:@+\[\]-]{0,20}", fullmatch=True)


@FUZZ
@given(st.dictionaries(_CONTEXT_NAMES, _VALID_CONTEXT, min_size=1, max_size=4), st.data())
def test_valid_contexts_with_any_values_survive_a_write_and_a_read(
    tables: dict[str, dict[str, str]], data: st.DataObject
) -> None:
    import tomli_w

    current = data.draw(st.none() | st.sampled_from(sorted(tables)))
    document: dict[str, Any] = {"schema_version": 1, "contexts": tables}
    if current is not None:
        document["current"] = current
    assert _load_from(tomli_w.dumps(document).encode())


# --- the qlik-cli contexts file ------------------------------------------------------------------

_QLIK_CLI_KEYS = ["server", "headers", "oauth-client-id", "oauth-client-secret", "server-type"]
_QLIK_CLI_VALID_ENTRY = st.one_of(
    st.fixed_dictionaries(
        {
            "server": st.sampled_from(
                ["https://t.example.com", "t.example.com", "t.eu.qlikcloud.com/"]
            ),
            "oauth-client-id": _ANY_TEXT.filter(str.strip),
            "oauth-client-secret": _ANY_TEXT.filter(str.strip),
        },
        optional={"comment": _ANY_TEXT, "server-type": st.just("cloud")},
    ),
    st.fixed_dictionaries(
        {
            "server": st.just("https://t.example.com"),
            "headers": _ANY_TEXT.filter(lambda t: t.strip() and " " not in t.strip()).map(
                lambda key: {"Authorization": f"Bearer {key}"}
            ),
        }
    ),
)
_QLIK_CLI_FILES = st.one_of(
    st.dictionaries(_CONTEXT_NAMES, _QLIK_CLI_VALID_ENTRY, min_size=1, max_size=3).map(
        lambda contexts: json.dumps({"contexts": contexts})
    ),
    st.text(max_size=200),
    JSON.map(lambda value: json.dumps({"contexts": value, "current-context": "x"})),
    st.dictionaries(
        st.text(max_size=8),
        st.dictionaries(st.sampled_from(_QLIK_CLI_KEYS), JSON, max_size=4),
        max_size=3,
    ).map(lambda contexts: json.dumps({"contexts": contexts})),
)


@FUZZ
@given(text=_QLIK_CLI_FILES)
def test_qlik_cli_contexts_file_of_anything(text: str, tmp_path: Path) -> None:
    path = tmp_path / "contexts.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    found, error = attempt(read_qlik_cli_contexts, path, secret_storage="file")
    if error is not None:
        assert_one_of_ours(error, ConfigError)
        return
    assert found is not None
    for candidate in found.candidates:
        assert candidate.context.name
        assert candidate.secret
        assert candidate.context.server.startswith("https://")


@FUZZ
@given(contexts=st.dictionaries(_CONTEXT_NAMES, _QLIK_CLI_VALID_ENTRY, min_size=1, max_size=3))
def test_valid_qlik_cli_entries_all_become_candidates(
    contexts: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "contexts.yml"
    path.write_text(json.dumps({"contexts": contexts}), encoding="utf-8")
    found = read_qlik_cli_contexts(path, secret_storage="file")
    assert found.skipped == ()
    assert sorted(c.context.name for c in found.candidates) == sorted(contexts)


# --- whole HTTP answers: status, headers and body ------------------------------------------------


def _response(status: int, headers: dict[str, str], body: bytes, method: str) -> Response:
    raw = requests.Response()
    raw.status_code = status
    raw.reason = "Whatever"
    raw.headers.update(headers)
    raw._content = body
    raw._content_consumed = True
    raw.url = "https://tenant.example.com/api/v1/items?x=1"
    return Response(raw, method=method)


_HEADER_VALUES = [
    "application/json",
    "text/html; charset=utf-8",
    "application/problem+json",
    "",
    "-1",
    "0",
    "99999999999",
    "Wed, 21 Oct 2015 07:28:00 GMT",
]
_HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "content-length", "retry-after", "location", "x-other"]),
    st.sampled_from(_HEADER_VALUES)
    | st.text(alphabet=string.ascii_letters + string.digits + " ;=/-+.,:", max_size=30),
    max_size=4,
)
_ERROR_FIELDS = ["code", "title", "detail", "status", "meta"]
_BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda errors, trace: json.dumps({"errors": errors, "traceId": trace}).encode(),
        st.lists(st.dictionaries(st.sampled_from(_ERROR_FIELDS), JSON, max_size=5), max_size=3),
        JSON,
    ),
    st.text(max_size=200).map(lambda text: f"<html><title>{text}</title>".encode()),
)


@FUZZ
@given(st.integers(100, 599), _HEADERS, _BODIES, st.sampled_from(["GET", "POST", "DELETE"]))
def test_any_error_answer_becomes_one_line_of_ours(
    status: int, headers: dict[str, str], body: bytes, method: str
) -> None:
    response = _response(status, headers, body, method)
    if 200 <= status < 400:
        assert raise_for_status(response) is response
        return
    error = error_for(response)
    assert_one_of_ours(error)
    assert error.message.startswith(f"{method} /api/v1/items failed with HTTP {status}")


@FUZZ
@given(st.integers(200, 299), _HEADERS, _BODIES)
def test_any_success_body_parses_or_is_an_api_error(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    _, error = attempt(_response(status, headers, body, "GET").json)
    if error is not None:
        assert_one_of_ours(error, ApiError)


# --- the token cache file ---------------------------------------------------------------------

_CACHE_FIELDS = ["version", "key", "access_token", "expires_at", "salt", "fingerprint", "scope"]
_CACHE_SECRET = "fuzzed-cache-secret-0123456789"


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400).map(lambda raw: ("raw", raw, [])),
        st.tuples(
            st.just("corrupt"),
            st.dictionaries(st.sampled_from(_CACHE_FIELDS), JSON, max_size=3),
            st.lists(st.sampled_from(_CACHE_FIELDS), max_size=2),
        ),
    )
)
def test_any_token_cache_file_is_a_token_or_a_miss(case: tuple[str, Any, list[str]]) -> None:
    """A valid entry with some fields replaced or removed, or plain bytes: never a crash."""
    resolved = explicit_settings(
        server="https://tenant.example.com",
        auth_type="oauth",
        client_id="client-1",
        secret=_CACHE_SECRET,
    )
    manager = TokenManager(resolved, dict(os.environ), transport=None)  # type: ignore[arg-type]
    path = manager.cache_path
    assert path is not None
    kind, payload, removed = case
    if kind == "raw":
        raw = payload
    else:
        salt = bytes(16)
        document: dict[str, Any] = {
            "version": 1,
            "key": cache_key(resolved).as_dict(),
            "access_token": "cached-access-token-0123456789",
            "token_type": "bearer",
            "scope": None,
            "expires_at": 4102444800.0,
            "salt": salt.hex(),
            "fingerprint": fingerprint(salt, "client-1", _CACHE_SECRET),
            **payload,
        }
        for name in removed:
            document.pop(name, None)
        raw = json.dumps(document).encode()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(raw)
    path.chmod(0o600)
    token = manager.cached()
    if token is not None:
        assert isinstance(token.value, str)
        assert token.value
        # A time that freshness checks and `auth status` can work with (not NaN, not year 10000).
        assert token.expires_at is not None
        datetime.fromtimestamp(token.expires_at, UTC)


# --- --query, -q and -H --------------------------------------------------------------------------

_JMESPATH_BITS = [
    "data", "[]", "[0]", "[-1]", "[?", "]", "name", "==", "`1`", "'x'", "|", ".", "*", "@",
    "&", "length(@)", "sort_by(@, &name)", "to_number(@)", "max(@)", "{a: b}", "[a, b]", "!",
    "&&", "||", "(", ")", '"q"', "`[1,2]`", "join(', ', @)", "abs(@)", "keys(@)", "[::-1]",
]  # fmt: skip
_QUERIES = st.text(max_size=30) | st.lists(st.sampled_from(_JMESPATH_BITS), max_size=8).map("".join)


@FUZZ
@given(_QUERIES)
def test_query_compiles_or_is_a_usage_error(expression: str) -> None:
    _, error = attempt(compile_query, expression)
    if error is not None:
        assert_one_of_ours(error, UsageError)


@FUZZ
@given(st.lists(st.sampled_from(_JMESPATH_BITS), min_size=1, max_size=6).map("".join), JSON)
def test_query_on_any_data_prints_json_or_is_a_usage_error(expression: str, data: Any) -> None:
    runtime = make_runtime()
    output, error = attempt(Output, runtime, query=expression)
    if output is None:
        assert_one_of_ours(error, UsageError)
        return
    _, error = attempt(output.emit, data)
    if error is not None:
        assert_one_of_ours(error, UsageError)
        return
    printed = runtime.out
    assert printed.endswith("\n")
    json.loads(printed)


_ARGUMENT_TEXT = st.text(max_size=12) | st.sampled_from(
    ["", " ", "a", "limit", "X-Trace", "Authorization", "authorization ", "X A", "X-€", "Ü", "é",
     "€", "\r\n", "a\nb", "\x00", "\x7f", "\t", "\udcff", "=", ":", "100"]
)  # fmt: skip
# Mostly shaped like the real thing, so the accepting branch is reached as often as the refusals.
_Q_ARGUMENTS = st.builds("{}={}".format, _ARGUMENT_TEXT, _ARGUMENT_TEXT) | st.text(max_size=20)
_H_ARGUMENTS = (
    st.builds("{}:{}".format, _ARGUMENT_TEXT, _ARGUMENT_TEXT)
    | st.builds("{}: {}".format, st.sampled_from(["X-Trace", "Accept", "If-Match"]), _ARGUMENT_TEXT)
    | st.text(max_size=24)
)


@FUZZ
@given(st.lists(_Q_ARGUMENTS, max_size=5))
@example(["limit=100", "name=a=b", "q=é"])
def test_q_arguments_parse_as_key_value_or_are_a_usage_error(values: list[str]) -> None:
    pairs, error = attempt(parse_params, values)
    if error is not None:
        assert_one_of_ours(error, UsageError)
        assert "-q" in error.message
        return
    assert pairs is not None
    assert len(pairs) == len(values)
    for (key, value), raw in zip(pairs, values, strict=True):
        assert key
        assert key == key.strip()
        assert raw.endswith("=" + value)
    # Whatever is let through is a query string the HTTP library can send.
    requests.Request("GET", "https://tenant.example.com/", params=pairs).prepare()


@FUZZ
@given(st.lists(_H_ARGUMENTS, max_size=5))
@example(["X-Trace: 1", "Accept:text/csv", "X-Latin: café"])
def test_h_arguments_parse_as_headers_or_are_a_usage_error(values: list[str]) -> None:
    headers, error = attempt(parse_headers, values)
    if error is not None:
        assert_one_of_ours(error, UsageError)
        return
    assert headers is not None
    for name, value in headers.items():
        assert name.lower() != "authorization"
        # What http.client requires when it sends them: an ASCII name, a one-line Latin-1 value.
        assert name.isascii()
        assert name.isprintable()
        assert not any(ch.isspace() for ch in name)
        value.encode("latin-1")
        assert "\n" not in value
        assert "\r" not in value
    requests.Request("GET", "https://tenant.example.com/", headers=headers).prepare()


# --- durations and the environment -----------------------------------------------------------

_DURATIONS = st.text(max_size=16) | st.from_regex(
    r"[0-9.]{0,4}(h|m|s|ms)?[0-9.]{0,4}(ms|s|m)?", fullmatch=True
)


@FUZZ
@given(_DURATIONS)
def test_durations_parse_or_are_a_usage_error(text: str) -> None:
    seconds, error = attempt(parse_duration, text, option="--timeout")
    if error is not None:
        assert_one_of_ours(error, UsageError)
        assert "--timeout" in error.message
        return
    assert seconds is not None
    assert 0 <= seconds < float("inf")


_ENV_NAMES = [
    "QLIK_SERVER",
    "QLIK_CLIENT_ID",
    "QLIK_CLIENT_SECRET",
    "QLIK_API_KEY",
    "QLIK_ACCESS_TOKEN",
    "QLIK_SCOPE",
    "QLIK_CA_BUNDLE",
    "QLIK_CONTEXT",
    "QLIKM2M_NO_TOKEN_CACHE",
    "QLIKM2M_CONNECT_TIMEOUT",
    "QLIKM2M_READ_TIMEOUT",
    "QLIKM2M_MAX_RETRY_WAIT",
    "QLIKM2M_MAX_RETRIES",
]
_ENV_EXAMPLES = [
    "https://tenant.example.com",
    "localhost:1",
    "0",
    "-1",
    "nan",
    "inf",
    "1e999",
    "10",
    "on",
    "prod",
    " ",
]
_ENV_VALUES = st.sampled_from(_ENV_EXAMPLES) | st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
)
_SECRET_NAMES = ("QLIK_CLIENT_SECRET", "QLIK_API_KEY", "QLIK_ACCESS_TOKEN")


_ENV_CREDENTIALS = st.sampled_from(
    [
        {"QLIK_SERVER": "https://tenant.example.com", "QLIK_API_KEY": "k" * 24},
        {"QLIK_SERVER": "tenant.example.com", "QLIK_ACCESS_TOKEN": "t" * 24},
        {
            "QLIK_SERVER": "https://tenant.example.com/",
            "QLIK_CLIENT_ID": "client",
            "QLIK_CLIENT_SECRET": "s" * 24,
        },
    ]
)
# Half the examples start from a usable credential set, so the resolving branch runs often too.
_ENVIRONMENTS = st.dictionaries(st.sampled_from(_ENV_NAMES), _ENV_VALUES, max_size=8) | st.builds(
    lambda base, extra: {**base, **extra},
    _ENV_CREDENTIALS,
    st.dictionaries(
        st.sampled_from([n for n in _ENV_NAMES if n.startswith("QLIKM2M_")]),
        _ENV_VALUES,
        max_size=4,
    ),
)


@FUZZ
@given(_ENVIRONMENTS)
@example(
    {
        "QLIK_SERVER": "https://tenant.example.com",
        "QLIK_API_KEY": "k" * 24,
        "QLIKM2M_MAX_RETRY_WAIT": "0",
        "QLIKM2M_READ_TIMEOUT": "2.5",
    }
)
def test_any_environment_resolves_or_is_an_error_of_ours(values: dict[str, str]) -> None:
    env = {
        "QLIKM2M_CONFIG_DIR": os.environ["QLIKM2M_CONFIG_DIR"],
        "QLIKM2M_CACHE_DIR": os.environ["QLIKM2M_CACHE_DIR"],
        **values,
    }
    resolved, error = attempt(resolve_settings, make_runtime(env))
    if error is not None:
        assert_one_of_ours(error)
        shown = error.message + (error.hint or "")
        plain = [value for name, value in values.items() if name not in _SECRET_NAMES]
        for name in _SECRET_NAMES:
            secret = values.get(name, "").strip()
            # Unless the same text was also given as a setting that may be shown (a path...).
            if len(secret) >= 8 and not any(secret in value for value in plain):
                assert secret not in shown
        return
    assert resolved is not None
    for timeout in ("connect_timeout", "read_timeout"):
        assert 0 < resolved.seconds(timeout) < float("inf")
    assert 0 <= resolved.seconds("max_retry_wait") < float("inf")  # 0: never wait, fail at once


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may open a connection: these are pure parsing checks."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a fuzz test tried to use the network")

    monkeypatch.setattr(requests.Session, "request", refuse)
