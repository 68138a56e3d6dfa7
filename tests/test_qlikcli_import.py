"""Reading qlik-cli's contexts.yml: API-key and OAuth entries become candidates, the rest is skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qlikm2m.errors import ConfigError
from qlikm2m.qlikcli_import import default_path, read_qlik_cli_contexts
from qlikm2m.redaction import redact

DATA = Path(__file__).parent / "data" / "qlik-cli"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    copy = tmp_path / "contexts.yml"
    shutil.copyfile(DATA / "contexts.yml", copy)
    return copy


def test_api_key_and_oauth_entries_become_candidates(sample: Path) -> None:
    result = read_qlik_cli_contexts(sample, secret_storage="keyring")
    by_name = {candidate.context.name: candidate for candidate in result.candidates}
    assert sorted(by_name) == ["acme-m2m", "acme.eu.qlikcloud.com", "both-kinds"]

    api_key = by_name["acme.eu.qlikcloud.com"]
    assert api_key.context.auth_type == "apikey"
    assert api_key.context.client_id is None
    assert api_key.context.server == "https://acme.eu.qlikcloud.com"
    assert api_key.context.comment == "API key of the EU tenant"
    assert api_key.secret == "eyJhbGciOiJFUzM4NCJ9.fake-api-key-for-tests-0001"

    oauth = by_name["acme-m2m"]
    assert oauth.context.auth_type == "oauth"
    assert oauth.context.client_id == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    # qlik-cli accepted a bare host with a slash; it is normalised on the way in.
    assert oauth.context.server == "https://acme.us.qlikcloud.com"
    assert oauth.secret == "fake-oauth-client-secret-for-tests-0002"
    assert oauth.context.comment is None

    both = by_name["both-kinds"]
    assert both.context.auth_type == "oauth"
    assert both.secret == "fake-oauth-client-secret-for-tests-0004"
    assert any("API key" in note for note in both.notes)
    assert any("TLS verification" in note for note in both.notes)
    assert result.current == "acme-m2m"


def test_every_other_entry_is_skipped_with_its_reason(sample: Path) -> None:
    result = read_qlik_cli_contexts(sample, secret_storage="keyring")
    reasons = {entry.name: entry.reason for entry in result.skipped}
    assert set(reasons) == {"user-oauth", "on-prem", "empty", "bad url", "ftp", "basic-auth"}
    assert "no client secret" in reasons["user-oauth"]
    assert "not Qlik Cloud" in reasons["on-prem"]
    assert "neither" in reasons["empty"]
    assert "name" in reasons["bad url"]
    assert "https only" in reasons["ftp"]
    assert "Bearer" in reasons["basic-auth"]


def test_reading_never_changes_the_source(sample: Path) -> None:
    before = sample.read_bytes()
    mtime = sample.stat().st_mtime_ns
    read_qlik_cli_contexts(sample, secret_storage="file")
    assert sample.read_bytes() == before
    assert sample.stat().st_mtime_ns == mtime


def test_secrets_are_registered_and_kept_out_of_repr(sample: Path) -> None:
    result = read_qlik_cli_contexts(sample, secret_storage="keyring")
    for candidate in result.candidates:
        assert candidate.secret not in repr(candidate)
        assert candidate.secret not in redact(f"leak {candidate.secret}")


def test_storage_choice_is_carried_into_every_candidate(sample: Path) -> None:
    result = read_qlik_cli_contexts(sample, secret_storage="file")
    assert {candidate.context.secret_storage for candidate in result.candidates} == {"file"}


def test_broken_yaml_names_the_line_and_not_the_content() -> None:
    with pytest.raises(ConfigError) as caught:
        read_qlik_cli_contexts(DATA / "broken.yml", secret_storage="keyring")
    assert "line 6" in caught.value.message
    assert "fake-secret-on-a-broken-line" not in caught.value.message


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No qlik-cli contexts file") as caught:
        read_qlik_cli_contexts(tmp_path / "nope.yml", secret_storage="keyring")
    assert "import-qlik-cli PATH" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("text", "match"), [("- a\n- b\n", "top level"), ("contexts: [1]\n", "map")]
)
def test_wrong_shapes_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "contexts.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_qlik_cli_contexts(path, secret_storage="keyring")


def test_empty_file_has_nothing_to_import(tmp_path: Path) -> None:
    path = tmp_path / "contexts.yml"
    path.write_text("")
    result = read_qlik_cli_contexts(path, secret_storage="keyring")
    assert result.candidates == ()
    assert result.skipped == ()


def test_default_path_is_under_home(tmp_path: Path) -> None:
    assert default_path({"HOME": str(tmp_path)}) == tmp_path / ".qlik" / "contexts.yml"
