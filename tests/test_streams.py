"""Stream guards and encodings in-process: JSON escapes, text stand-ins, write failures."""

from __future__ import annotations

import errno
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlikm2m.errors import ExitCode, OutputError
from qlikm2m.streams import GuardedStream, json_for_stream


def _stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=8,
)


@given(value=json_values, encoding=st.sampled_from(["cp1252", "ascii", "latin-1", "cp437"]))
def test_json_for_a_legacy_code_page_encodes_and_parses_back(value: object, encoding: str) -> None:
    for text in (
        json.dumps(value, ensure_ascii=False),
        json.dumps(value, ensure_ascii=False, indent=2),
    ):
        written = json_for_stream(text, _stream(encoding))
        assert json.loads(written.encode(encoding).decode(encoding)) == value


def test_json_keeps_what_the_code_page_carries() -> None:
    text = json.dumps({"name": "café 日本 😀"}, ensure_ascii=False)
    assert json_for_stream(text, _stream("cp1252")) == (
        '{"name": "café \\u65e5\\u672c \\ud83d\\ude00"}'
    )
    assert json_for_stream(text, _stream("utf-8")) == text
    assert json_for_stream(text, io.StringIO()) == text


def test_text_falls_back_to_stand_ins_on_a_strict_stream() -> None:
    raw = _stream("cp1252")
    guarded = GuardedStream(raw, "stdout", fatal=True)
    guarded.write("é → … ✓ 日\n")  # cp1252 has é and … but no arrow, check mark or kanji
    guarded.flush()
    assert raw.buffer.getvalue() == "é -> … v ?\n".encode("cp1252")  # type: ignore[attr-defined]


class _Failing(io.StringIO):
    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def write(self, text: str) -> int:
        raise OSError(self.code, "failed")


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.ENOSPC, "the disk is full"), (errno.EBADF, "it is closed"), (errno.EIO, "failed")],
)
def test_stdout_write_failure_is_an_output_error(code: int, reason: str) -> None:
    guarded = GuardedStream(_Failing(code), "stdout", fatal=True)
    with pytest.raises(OutputError) as caught:
        guarded.write("x")
    assert caught.value.exit_code == ExitCode.OUTPUT
    assert caught.value.message == f"Could not write the output to stdout: {reason}."


def test_a_closed_stdout_fails_on_first_write_and_a_closed_stderr_never() -> None:
    with pytest.raises(OutputError):
        GuardedStream(None, "stdout", fatal=True).write("x")
    stderr = GuardedStream(None, "stderr", fatal=False)
    assert stderr.write("error: x\n") == len("error: x\n")
    assert not stderr.isatty()
    assert GuardedStream(_Failing(errno.ENOSPC), "stderr", fatal=False).write("y") == 1


def test_a_reader_that_went_away_stays_a_broken_pipe() -> None:
    with pytest.raises(BrokenPipeError):
        GuardedStream(_Failing(errno.EPIPE), "stdout", fatal=True).write("x")
