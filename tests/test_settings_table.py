"""The settings table (qlikm2m.settings.SETTINGS) against what reads it and what documents it.

Each setting is declared once; these check that docs/environment.md, the shared flags and the HTTP
options say the same as the table, so a setting added or changed in one place cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from qlikm2m.commands.tenant_options import TenantFlags, valued_option_names
from qlikm2m.http import HttpOptions
from qlikm2m.settings import OTHER_VARIABLES, SETTINGS, SPEC, explicit_settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "environment.md"
_ROW = re.compile(r"^\| `(?P<variable>[A-Z0-9_]+)` \|(?P<rest>.*)\|\s*$")


@dataclass(frozen=True)
class DocRow:
    variable: str
    cells: tuple[str, ...]  # the cells after the variable's
    header: tuple[str, ...]  # the table's column names

    def cell(self, column: str) -> str | None:
        if column not in self.header:
            return None
        return self.cells[self.header.index(column) - 1]


def _documented() -> dict[str, DocRow]:
    """The rows of the two tables of qlikm2m's own variables (the standard ones follow them)."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Tenant and credentials") : text.index("### Standard variables")]
    rows: dict[str, DocRow] = {}
    header: tuple[str, ...] = ()
    for line in section.splitlines():
        if line.startswith("| variable |"):
            header = tuple(cell.strip() for cell in line.strip("|").split("|"))
            continue
        match = _ROW.match(line)
        if match:
            cells = tuple(cell.strip() for cell in match["rest"].split("|"))
            rows[match["variable"]] = DocRow(match["variable"], cells, header)
    return rows


def test_the_reader_finds_the_rows_and_their_columns() -> None:
    rows = _documented()
    assert rows["QLIKM2M_CONNECT_TIMEOUT"].cell("default") == "`10`"
    assert rows["QLIK_SERVER"].cell("default") is None
    assert rows["QLIK_SERVER"].cell("same as") == "`--server`"


def test_every_variable_of_the_table_is_documented_and_nothing_else() -> None:
    declared = {spec.env for spec in SETTINGS if spec.env} | set(OTHER_VARIABLES)
    assert set(_documented()) == declared


def test_the_documented_defaults_are_the_table_s() -> None:
    rows = _documented()
    for spec in SETTINGS:
        if spec.env is None:
            continue
        assert rows[spec.env].cell("default") == spec.documented_default, spec.name
    for variable, default in OTHER_VARIABLES.items():
        assert rows[variable].cell("default") == default, variable


def test_the_documented_flag_is_the_table_s() -> None:
    rows = _documented()
    for spec in SETTINGS:
        if spec.env is None:
            continue
        same_as = rows[spec.env].cell("same as") or ""
        if spec.flag is None:
            assert "--" not in same_as, spec.name
        else:
            assert f"`{spec.flag}`" in same_as, spec.name


def test_every_flag_of_the_table_is_a_shared_option_with_its_help() -> None:
    # TenantFlags carries each connection flag to resolve_settings under the table's name.
    flagged = {spec.param for spec in SETTINGS if spec.flag and spec.name != "context"}
    assert flagged == set(TenantFlags._fields)
    valued = valued_option_names()
    assert "--context" in valued
    assert "-c" in valued
    assert "--server" in valued
    assert "--no-token-cache" not in valued  # a switch takes no value


def test_the_http_options_come_from_the_table() -> None:
    settings = explicit_settings(
        server="https://tenant.example.com", auth_type="apikey", client_id=None, secret="k-1"
    )
    options = settings.http_options()
    mapped = {spec.http_option for spec in SETTINGS if spec.http_option}
    assert mapped == set(HttpOptions._fields)
    assert options.connect_timeout == float(SPEC["connect_timeout"].default or "")
    assert options.max_retries == int(SPEC["max_retries"].default or "")
    assert settings.http_options(max_retries=0).max_retries == 0


def test_sensitive_settings_are_never_described_in_clear() -> None:
    settings = explicit_settings(
        server="https://tenant.example.com",
        auth_type="oauth",
        client_id="id-1",
        secret="a-secret-value-1234",
    )
    rows = {row["name"]: row["value"] for row in settings.describe()}
    sensitive = {spec.name for spec in SETTINGS if spec.sensitive}
    shown = sensitive & set(rows)
    assert shown == {"client_secret"}
    assert "a-secret-value-1234" not in str(settings.describe())


def test_a_blank_impersonation_is_refused_not_ignored() -> None:
    from harness import make_runtime

    from qlikm2m.errors import UsageError
    from qlikm2m.settings import resolve_settings

    runtime = make_runtime(
        QLIK_SERVER="https://tenant.example.com", QLIK_CLIENT_ID="id-1", QLIK_CLIENT_SECRET="s-1"
    )
    with pytest.raises(UsageError, match="is not subject:<subject> or userId:<id>"):
        resolve_settings(runtime, impersonate="  ")
