"""settings: the private-key credential from the environment (text or file), its provenance and
what cached tokens are bound to."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from keys_support import key_pair

from qlikm2m.errors import ConfigError
from qlikm2m.runtime import Runtime
from qlikm2m.settings import ResolvedSettings, resolve_settings


def _resolve(**env: str) -> ResolvedSettings:
    base = {
        "QLIKM2M_CONFIG_DIR": os.environ["QLIKM2M_CONFIG_DIR"],
        "QLIKM2M_CACHE_DIR": os.environ["QLIKM2M_CACHE_DIR"],
        "QLIK_SERVER": "tenant.example.com",
        "QLIK_CLIENT_ID": "client-1",
    }
    runtime = Runtime(
        env={**base, **env}, stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO()
    )
    return resolve_settings(runtime)


def test_a_key_from_text_or_file_is_the_same_credential(tmp_path: Path) -> None:
    pem = key_pair("ES384").pem()
    path = tmp_path / "key.pem"
    path.write_text(pem.replace("\n", "\r\n"))

    from_text = _resolve(QLIK_PRIVATE_KEY=pem)
    from_file = _resolve(QLIK_PRIVATE_KEY_FILE=str(path))

    assert from_text.uses_private_key
    assert from_file.secret_source == "env QLIK_PRIVATE_KEY_FILE"
    assert from_text.credential_binding() == from_file.credential_binding()
    assert from_text.credential_binding().startswith("private_key_jwt:")
    assert pem not in from_text.credential_binding()
    assert from_text.signing_key().kid == from_file.signing_key().kid


def test_a_secret_is_still_bound_as_itself() -> None:
    settings = _resolve(QLIK_CLIENT_SECRET="a-client-secret-value")

    assert not settings.uses_private_key
    assert settings.credential_binding() == "a-client-secret-value"
    assert {r["name"] for r in settings.describe()} >= {"client_secret"}
    assert "key_id" not in {r["name"] for r in settings.describe()}


def test_key_id_and_alg_come_with_their_source() -> None:
    settings = _resolve(QLIK_PRIVATE_KEY=key_pair("RS256").pem(), QLIK_KEY_ALG="RS512")
    rows = {r["name"]: r for r in settings.describe()}

    assert rows["key_alg"] == {"name": "key_alg", "value": "RS512", "source": "env QLIK_KEY_ALG"}
    assert rows["key_id"]["source"] == "default: the key's RFC 7638 thumbprint"
    assert settings.signing_key().alg == "RS512"


def test_an_unreadable_key_file_names_the_path_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="QLIK_PRIVATE_KEY_FILE") as caught:
        _resolve(QLIK_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"))

    assert "missing.pem" in caught.value.message


def test_a_binary_key_file_is_not_pem(tmp_path: Path) -> None:
    path = tmp_path / "key.der"
    path.write_bytes(b"\x30\x82\xff\xfe" * 10)

    with pytest.raises(ConfigError, match="not PEM text"):
        _resolve(QLIK_PRIVATE_KEY_FILE=str(path))
