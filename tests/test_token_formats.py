"""The token written for shells and CI: each form read back by that shell's quoting rules."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlikm2m import token_formats
from qlikm2m.errors import ConfigError, UsageError
from qlikm2m.tokens import Token

# Printable text without line breaks: what an opaque token could be, at its most hostile.
ONE_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029"),
    min_size=1,
)
NASTY = "a'b\"c$d`e\\f g&h|i%j!k;l(m)n*o?p~q#r{s}t<u>v^w"


def read_powershell(line: str) -> str:
    match = re.fullmatch(r"\$env:QLIK_ACCESS_TOKEN = '(.*)'", line)
    assert match, line
    body = match.group(1)
    # Inside '...', a quote character only ever appears doubled.
    return re.sub(r"(['\u2018\u2019\u201a\u201b])\1", r"\1", body)


def read_fish(line: str) -> str:
    match = re.fullmatch(r"set -gx QLIK_ACCESS_TOKEN '(.*)'", line)
    assert match, line
    out, chars = [], iter(match.group(1))
    for char in chars:
        if char == "\\":
            nxt = next(chars)
            assert nxt in "\\'", "fish keeps other backslashes literally; we never emit them"
            out.append(nxt)
        else:
            assert char != "'", "an unescaped quote would end the string"
            out.append(char)
    return "".join(out)


@given(ONE_LINE)
def test_powershell_reads_back_any_one_line_value(value: str) -> None:
    assert read_powershell(token_formats.powershell(value)) == value


@given(ONE_LINE)
def test_fish_reads_back_any_one_line_value(value: str) -> None:
    assert read_fish(token_formats.fish(value)) == value


def test_the_forms_of_a_usual_token() -> None:
    value = "eyJhbGciOi.J9-_x~y+z/0="
    assert token_formats.powershell(value) == f"$env:QLIK_ACCESS_TOKEN = '{value}'"
    assert token_formats.fish(value) == f"set -gx QLIK_ACCESS_TOKEN '{value}'"
    assert token_formats.cmd(value) == f'set "QLIK_ACCESS_TOKEN={value}"'
    assert token_formats.dotenv(value, "https://t.example.com") == (
        f"QLIK_SERVER=https://t.example.com\nQLIK_ACCESS_TOKEN={value}"
    )


def test_hostile_characters_are_quoted_or_refused() -> None:
    assert read_powershell(token_formats.powershell(NASTY)) == NASTY
    assert read_fish(token_formats.fish(NASTY)) == NASTY
    # cmd cannot quote " % or !: refused rather than written wrong.
    for char in ('"', "%", "!"):
        with pytest.raises(UsageError):
            token_formats.cmd(f"abc{char}def")
    assert token_formats.cmd("a&b|c<d>e^f") == 'set "QLIK_ACCESS_TOKEN=a&b|c<d>e^f"'
    assert (
        token_formats.dotenv("a b$c", "https://x")
        == "QLIK_SERVER=https://x\nQLIK_ACCESS_TOKEN='a b$c'"
    )
    with pytest.raises(UsageError):
        token_formats.dotenv("a b'c", "https://x")


@pytest.mark.parametrize("form", ["powershell", "fish", "cmd"])
def test_a_line_break_is_refused_everywhere(form: str) -> None:
    with pytest.raises(UsageError):
        getattr(token_formats, form)("abc\ndef")
    with pytest.raises(UsageError):
        token_formats.dotenv("abc\rdef", "https://x")
    with pytest.raises(UsageError):
        token_formats.github("abc\ndef", {"GITHUB_ENV": "/nonexistent"}, io.StringIO())


def test_process_document_shape() -> None:
    token = Token(value="tok", origin="minted", expires_at=1_800_000_000.0)
    assert token_formats.process(token, "https://t.example.com") == {
        "version": 1,
        "accessToken": "tok",
        "tokenType": "Bearer",
        "expiresAt": "2027-01-15T08:00:00Z",
        "server": "https://t.example.com",
    }
    unknown = Token(value="key", origin="apikey")
    assert token_formats.process(unknown, "https://x")["expiresAt"] is None


def test_github_masks_before_appending(tmp_path: Path) -> None:
    env_file = tmp_path / "github_env"
    env_file.write_text("EARLIER=1\n")
    out = io.StringIO()
    assert token_formats.github("tok-123", {"GITHUB_ENV": str(env_file)}, out) == str(env_file)
    assert out.getvalue() == "::add-mask::tok-123\n"
    assert env_file.read_text() == "EARLIER=1\nQLIK_ACCESS_TOKEN=tok-123\n"


def test_github_without_github_env_is_a_config_error() -> None:
    out = io.StringIO()
    with pytest.raises(ConfigError):
        token_formats.github("tok", {}, out)
    assert out.getvalue() == ""
    with pytest.raises(ConfigError):
        token_formats.github("tok", {"GITHUB_ENV": " "}, out)


def test_github_with_an_unwritable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        token_formats.github("tok", {"GITHUB_ENV": str(tmp_path / "no" / "such")}, io.StringIO())
    assert "tok" not in caught.value.message
