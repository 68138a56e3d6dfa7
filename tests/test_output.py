"""Output: formats, stable JSON, --query, NDJSON and streamed arrays, colour only on terminals."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
import yaml
from harness import make_runtime

from qlikm2m.errors import UsageError
from qlikm2m.output import Output, compile_query, render_table, to_json, to_text, write_table
from qlikm2m.runtime import Runtime

# The suite's one runtime builder, under the name this module's tests have always used.
_runtime = make_runtime


DATA: dict[str, Any] = {"name": "Zoë", "id": "a1", "nested": {"b": 2, "a": 1}, "tags": ["x"]}


def _out(runtime: Runtime) -> str:
    value = runtime.stdout.getvalue()  # type: ignore[attr-defined]
    assert isinstance(value, str)
    return value


def test_json_is_compact_and_keeps_key_order_when_piped() -> None:
    runtime = _runtime()
    Output(runtime).emit(DATA)
    text = _out(runtime)
    assert text == '{"name":"Zoë","id":"a1","nested":{"b":2,"a":1},"tags":["x"]}\n'
    assert json.loads(text) == DATA


def test_json_is_indented_on_a_terminal() -> None:
    runtime = _runtime(tty=True)
    Output(runtime).emit(DATA)
    assert _out(runtime) == json.dumps(DATA, indent=2, ensure_ascii=False) + "\n"


def test_yaml() -> None:
    runtime = _runtime(output="yaml")
    Output(runtime).emit(DATA)
    assert yaml.safe_load(_out(runtime)) == DATA
    assert _out(runtime).startswith("name: Zoë\n")


def test_environment_selects_the_format() -> None:
    runtime = _runtime(QLIKM2M_OUTPUT="yaml")
    Output(runtime).emit({"a": 1})
    assert _out(runtime) == "a: 1\n"


def test_table_without_colour_when_piped() -> None:
    runtime = _runtime(output="table")
    Output(runtime).emit({"data": [{"id": "1", "name": "one"}, {"id": "2", "name": "two"}]})
    text = _out(runtime)
    assert "\x1b[" not in text
    assert text.splitlines() == ["ID  NAME", "1   one", "2   two"]


def test_table_respects_no_color_on_a_terminal() -> None:
    runtime = _runtime(tty=True, output="table", NO_COLOR="1")
    Output(runtime).emit([{"id": "1"}])
    assert "\x1b[" not in _out(runtime)


def test_query_is_applied() -> None:
    runtime = _runtime(query="tags[0]")
    Output(runtime).emit(DATA)
    assert _out(runtime) == '"x"\n'


@pytest.mark.parametrize("expression", ["data[", "[?", "foo..bar", ""])
def test_invalid_query_is_a_usage_error(expression: str) -> None:
    with pytest.raises(UsageError) as caught:
        compile_query(expression)
    assert caught.value.exit_code == 2


def test_invalid_query_fails_before_any_work() -> None:
    with pytest.raises(UsageError):
        Output(_runtime(query="data[?"))


def test_ndjson_writes_one_line_per_item_as_they_come() -> None:
    runtime = _runtime()
    output = Output(runtime)
    written: list[int] = []

    def items() -> Any:
        for number in range(3):
            written.append(len(_out(runtime)))
            yield {"id": number}

    assert output.ndjson(items()) == 3
    assert _out(runtime) == '{"id":0}\n{"id":1}\n{"id":2}\n'
    # Each item was on stdout before the next one was produced.
    assert written == [0, 9, 18]


class _CountingStream(io.StringIO):
    """stdout that counts its writes and flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


PAGES: list[list[Any]] = [
    [{"id": f"{page}-{n}", "name": "Zoë \u2603", "n": n, "x": None} for n in range(10)]
    for page in range(3)
]


def test_ndjson_pages_writes_each_page_in_one_piece() -> None:
    runtime = _runtime()
    stream = _CountingStream()
    runtime.stdout = stream
    written: list[str] = []

    def pages() -> Any:
        for page in PAGES:
            written.append(stream.getvalue())
            yield page

    assert Output(runtime).ndjson_pages(pages()) == 30
    # The same lines as json.dumps of each item, one write per page (not one per item), and
    # each page on stdout before the next one was asked for.
    expected = [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for page in PAGES
                for item in page]  # fmt: skip
    assert stream.getvalue() == "".join(line + "\n" for line in expected)
    assert stream.writes == 3
    assert [text.count("\n") for text in written] == [0, 10, 20]


def test_ndjson_pages_flush_every_hundred_lines_and_at_the_end() -> None:
    runtime = _runtime()
    stream = _CountingStream()
    runtime.stdout = stream
    pages = [[{"n": n}] * 30 for n in range(7)]  # flushed after 120 lines, then at the end
    assert Output(runtime).ndjson_pages(iter(pages)) == 210
    assert stream.flushes == 2


def test_ndjson_pages_apply_the_query_and_keep_lines_before_a_failing_item() -> None:
    runtime = _runtime(query="name")
    Output(runtime).ndjson_pages([[{"name": "a"}, {"name": "b"}], [{"name": "c"}]])
    assert _out(runtime) == '"a"\n"b"\n"c"\n'
    runtime = _runtime(query="length(name)")
    with pytest.raises(UsageError, match="--query failed"):
        Output(runtime).ndjson_pages([[{"name": "ab"}, {"name": 3}, {"name": "c"}]])
    assert _out(runtime) == "2\n"


def test_ndjson_pages_escape_what_the_stream_cannot_encode() -> None:
    runtime = _runtime()
    runtime.stdout = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    Output(runtime).ndjson_pages([[{"name": "Zoë \u2603"}], [{"name": "plain"}]])
    runtime.stdout.flush()
    raw = runtime.stdout.buffer.getvalue()  # type: ignore[attr-defined]
    assert raw.decode("cp1252") == '{"name":"Zoë \\u2603"}\n{"name":"plain"}\n'


@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("count", [0, 1, 5])
def test_streamed_array_equals_the_whole_array(tty: bool, count: int) -> None:
    items = [{"id": n, "name": f"item {n}"} for n in range(count)]
    runtime = _runtime(tty=tty)
    Output(runtime).json_array(iter(items))
    text = _out(runtime)
    assert json.loads(text) == items
    assert text == to_json(items, pretty=tty) + "\n"


def test_table_widths_come_from_the_first_rows_and_later_long_cells_are_shortened() -> None:
    out = io.StringIO()
    rows = [["a", "1"], ["bb", "2"], ["c" * 30, "3"]]
    write_table(out, ["NAME", "ID"], rows, sample=2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "NAME  ID"
    assert lines[1] == "a     1"
    assert lines[3] == "ccc…  3"


def _table(data: Any, **env: str) -> list[str]:
    runtime = _runtime(tty=True, output="table", NO_COLOR="1", **env)
    Output(runtime).emit(data)
    return _out(runtime).splitlines()


def test_one_table_style_for_lists_and_objects() -> None:
    rows = _table([{"name": "prod", "authType": "oauth", "current": True}])
    assert rows[0].split() == ["NAME", "AUTH", "TYPE", "CURRENT"]
    assert rows[1].split() == ["prod", "oauth", "yes"]
    fields = _table({"name": "prod", "current": False, "comment": None})
    assert fields[0].split() == ["KEY", "VALUE"]
    assert fields[1].split() == ["name", "prod"]
    assert fields[2].split() == ["current", "no"]
    assert fields[3].split() == ["comment"]
    # No box drawing, as in every listing.
    assert not any(ch in "".join(rows + fields) for ch in "┏━│┃╭─")


def test_nested_values_are_readable_not_cut_json() -> None:
    lines = _table(
        {
            "name": "Sales",
            "attributes": {"owner": "bot", "usage": "ANALYTICS"},
            "tags": ["a", "b"],
            "settings": [
                {"name": "server", "value": "https://t", "source": "context"},
                {"name": "scope", "value": "", "source": "default"},
            ],
        }
    )
    text = "\n".join(lines)
    assert "attributes.owner" in text
    assert "ANALYTICS" in text
    assert any(line.split() == ["tags", "a,", "b"] for line in lines)
    # A list of objects is a table of its own under its key.
    title = lines.index("SETTINGS")
    assert lines[title + 1].split() == ["NAME", "VALUE", "SOURCE"]
    assert lines[title + 2].split() == ["server", "https://t", "context"]
    assert "{" not in text


def test_tables_fit_the_terminal_width() -> None:
    records = [{"name": "x" * 40, "id": "y" * 40, "type": "shared"} for _ in range(3)]
    lines = _table(records, COLUMNS="60")
    assert max(len(line) for line in lines) <= 60
    assert lines[1].split()[-1] == "shared"
    wide = _table(records, COLUMNS="200")
    assert wide[1].split()[0] == "x" * 40


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("sandbox", "sandbox\n"),
        (None, "\n"),
        (3, "3\n"),
        (True, "true\n"),
        (["a", "b"], "a\nb\n"),
        ({"id": "1", "name": "one", "n": None}, "1\tone\t\n"),
        ([{"id": "1", "tags": ["x"]}, {"id": "2", "tags": []}], '1\t["x"]\n2\t[]\n'),
    ],
)
def test_text_prints_raw_values(data: Any, text: str) -> None:
    assert to_text(data) == text
    runtime = _runtime(output="text")
    Output(runtime).emit(data)
    assert _out(runtime) == text


def test_text_after_a_query_is_the_raw_value() -> None:
    runtime = _runtime(output="text", query="name")
    Output(runtime).emit(DATA)
    assert _out(runtime) == "Zoë\n"


# --- render_table: what every `-o table` of a single result looks like -------------------------


def _render(data: object, **options: object) -> tuple[str, str]:
    runtime = make_runtime(NO_COLOR="1", **options)  # type: ignore[arg-type]
    render_table(runtime, data)
    return runtime.out, runtime.err


def _cells(text: str) -> list[list[str]]:
    """The cells of each line: columns are separated by two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def test_a_list_of_objects_is_one_row_each_with_columns_in_first_seen_order() -> None:
    out, err = _render([{"id": "a", "name": "first"}, {"name": "second", "id": "b", "extra": 1}])
    assert _cells(out) == [["ID", "NAME", "EXTRA"], ["a", "first"], ["b", "second", "1"]]
    assert err == ""


def test_a_list_page_is_shown_by_its_data_array() -> None:
    out, _ = _render({"data": [{"id": "a"}], "links": {"next": None}})
    assert _cells(out) == [["ID"], ["a"]]


def test_no_results_is_a_sentence_on_stderr_and_nothing_on_stdout() -> None:
    assert _render({"data": []}) == ("", "(no results)\n")


def test_one_object_is_key_value_pairs_with_nested_values_readable() -> None:
    out, _ = _render({"id": "t1", "enabled": True, "tags": ["x", "y"], "owner": None})
    assert _cells(out) == [
        ["KEY", "VALUE"],
        ["id", "t1"],
        ["enabled", "yes"],
        ["tags", "x, y"],
        ["owner"],
    ]


def test_a_list_of_plain_values_is_one_column() -> None:
    out, _ = _render(["a", 2, None])
    assert _cells(out) == [["VALUE"], ["a"], ["2"]]


@pytest.mark.parametrize(("data", "line"), [("plain", "plain\n"), (None, "\n"), (3.5, "3.5\n")])
def test_a_single_value_is_one_line_without_a_frame(data: object, line: str) -> None:
    assert _render(data) == (line, "")


def test_long_and_multi_line_cells_are_cut_to_one_line() -> None:
    out, _ = _render([{"text": "word\nnext   line " + "x" * 100}])
    cell = _cells(out)[1][0]
    assert cell.startswith("word next line x")
    assert cell.endswith("…")
    assert len(cell) == 48


def test_at_most_eight_columns() -> None:
    out, _ = _render([{f"c{n}": n for n in range(12)}])
    assert _cells(out)[0] == [f"C{n}" for n in range(8)]


def test_bold_headers_only_on_a_terminal_without_no_color() -> None:
    coloured = make_runtime(tty=True)
    render_table(coloured, [{"id": "a"}])
    assert "\x1b[1m" in coloured.out
    plain = make_runtime(tty=True, NO_COLOR="1")
    render_table(plain, [{"id": "a"}])
    assert "\x1b[" not in plain.out
