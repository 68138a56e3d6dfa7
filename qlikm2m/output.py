"""Rendering results: data on stdout (JSON, YAML, table, text, NDJSON), after an optional query.

The one module that imports jmespath, only when ``--query`` is used (YAML goes through
``yaml_codec``). Every ``-o table`` of every command is drawn by ``write_table`` here, in one style
(upper-case headers, aligned columns, nested values inline, fitted to the terminal's width), and
every ``-o text`` by ``to_text``; docs/output.md is the contract.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, TextIO

from qlikm2m.errors import UsageError

if TYPE_CHECKING:
    from qlikm2m.errors import QlikM2MError
    from qlikm2m.runtime import Runtime


def compile_query(expression: str | None) -> Any:
    """The compiled JMESPath expression, or None; a bad one is a usage error (exit 2)."""
    if expression is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as error:
        first_line = str(error).splitlines()[0] if str(error) else "syntax error"
        raise UsageError(
            f"--query {expression!r} is not a valid JMESPath expression: {first_line}",
            hint="See https://jmespath.org/tutorial.html; e.g. --query 'data[].name'",
        ) from None
    except Exception:
        raise UsageError(f"--query {expression!r} is not a valid JMESPath expression.") from None


def _has_expref(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    return node.get("type") == "expref" or any(_has_expref(c) for c in node.get("children", ()))


def _holds_expression(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_expression(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_expression(item) for item in value)
    return not isinstance(value, str | int | float | bool | type(None))


# NDJSON lines: the same text as json.dumps(item, ensure_ascii=False, separators=(",", ":")),
# from one encoder instead of a new one per item.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
NDJSON_FLUSH_LINES = 100


def to_json(data: Any, *, pretty: bool) -> str:
    """JSON as printed: indented for people; one stable line (server's key order) for pipes."""
    if pretty:
        return json.dumps(data, indent=2, ensure_ascii=False)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def to_yaml(data: Any, stream: object = None) -> str:
    """YAML as printed; with \\u escapes in double quotes when ``stream`` cannot carry the text."""
    from qlikm2m import yaml_codec
    from qlikm2m.streams import can_encode

    text = yaml_codec.dump(data)
    if stream is None or can_encode(text, stream):
        return text
    return yaml_codec.dump(data, allow_unicode=False)


# --- tables --------------------------------------------------------------------------------------

TABLE_SAMPLE = 100  # rows that set the column widths: about the first page of a listing
TABLE_MAX_CELL = 48
TABLE_MAX_COLUMNS = 8
_MIN_FITTED_CELL = 6
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def column_title(key: str) -> str:
    """``authType`` and ``auth_type`` as ``AUTH TYPE``: one header style for every table."""
    return _CAMEL.sub(" ", str(key)).replace("_", " ").replace("-", " ").upper()


def inline(value: Any) -> str:
    """One cell's text: scalars as they read, lists comma-joined, objects as ``key=value`` pairs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={_nested(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_nested(item) for item in value)
    return str(value)


def _nested(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + inline(value) + "}"
    if isinstance(value, list | tuple):
        return "[" + inline(value) + "]"
    return inline(value)


def terminal_width(runtime: Runtime) -> int | None:
    """Columns to fit a table into: $COLUMNS or the terminal's, None when stdout is not one."""
    if not runtime.stdout_is_tty:
        return None
    raw = runtime.env.get("COLUMNS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return os.get_terminal_size(runtime.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None


def _fit_widths(widths: list[int], width: int | None) -> list[int]:
    """Shrink the widest columns until the row (two spaces between cells) fits ``width``."""
    if width is None:
        return widths
    fitted = list(widths)
    while sum(fitted) + 2 * (len(fitted) - 1) > width:
        widest = max(range(len(fitted)), key=fitted.__getitem__)
        if fitted[widest] <= _MIN_FITTED_CELL:
            break
        fitted[widest] -= 1
    return fitted


def _fit(cell: str, width: int) -> str:
    cell = " ".join(cell.split())
    return cell if len(cell) <= width else cell[: width - 1] + "…"


def write_table(
    stream: TextIO,
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    bold: bool = False,
    width: int | None = None,
    sample: int = TABLE_SAMPLE,
    max_cell: int = TABLE_MAX_CELL,
) -> int:
    """Aligned columns written as rows arrive; the first ``sample`` rows set the widths.

    A table of 50,000 items must start printing at the first page, so later cells wider than the
    sample are shortened with an ellipsis rather than re-aligning everything. ``width`` (the
    terminal's columns) shrinks the widest columns so that no line wraps. Returns the row count.
    """
    iterator = iter(rows)
    first = list(itertools.islice(iterator, sample))
    widths = [
        min(max_cell, max([len(header), *(len(" ".join(row[i].split())) for row in first)]))
        for i, header in enumerate(headers)
    ]
    widths = _fit_widths(widths, width)

    def line(cells: Sequence[str]) -> str:
        shown = [_fit(cell, size) for cell, size in zip(cells, widths, strict=True)]
        return "  ".join(cell.ljust(size) for cell, size in zip(shown, widths, strict=True))

    head = line(headers).rstrip()
    stream.write((f"\x1b[1m{head}\x1b[0m" if bold else head) + "\n")
    count = 0
    for row in itertools.chain(first, iterator):
        stream.write(line(row).rstrip() + "\n")
        count += 1
        if count % TABLE_SAMPLE == 0:
            stream.flush()
    stream.flush()
    return count


def _flatten(prefix: str, value: Any, rows: list[tuple[str, str]], blocks: list[Any]) -> None:
    """Key/value rows of one object; nested objects as dotted keys, lists of objects as blocks."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, rows, blocks)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        blocks.append((prefix, value))
    else:
        rows.append((prefix, inline(value)))


def _records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    columns: list[str] = []
    for record in records[:TABLE_SAMPLE]:
        for key in record:
            if key not in columns and len(columns) < TABLE_MAX_COLUMNS:
                columns.append(key)
    return columns, [[inline(record.get(column)) for column in columns] for record in records]


def render_table(runtime: Runtime, data: Any) -> None:
    """``-o table`` of any result: rows of a list of objects, or the fields of one object.

    An object's nested objects become dotted keys (``check.user.name``) and its lists of objects
    follow as tables of their own under their key, so no value is cut to a JSON fragment.
    """
    stream, width = runtime.stdout, terminal_width(runtime)
    bold = runtime.color_for(runtime.stdout)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if data == []:
        # An empty frame says less than a sentence, and stdout stays empty for the pipe case.
        runtime.stderr.write("(no results)\n")
        return
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        columns, rows = _records_table(data)
        write_table(stream, [column_title(c) for c in columns], rows, bold=bold, width=width)
    elif isinstance(data, dict):
        fields: list[tuple[str, str]] = []
        blocks: list[tuple[str, list[dict[str, Any]]]] = []
        _flatten("", data, fields, blocks)
        if fields:
            write_table(stream, ["KEY", "VALUE"], fields, bold=bold, width=width)
        for title, records in blocks:
            stream.write(f"\n{column_title(title)}\n" if fields else f"{column_title(title)}\n")
            columns, rows = _records_table(records)
            write_table(stream, [column_title(c) for c in columns], rows, bold=bold, width=width)
    elif isinstance(data, list):
        write_table(stream, ["VALUE"], [[inline(value)] for value in data], bold=bold, width=width)
    else:
        stream.write(inline(data) + "\n")


# --- text -----------------------------------------------------------------------------------------


def _text_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\t", " ").replace("\n", " ")
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def text_line(value: Any) -> str:
    """One value as one line of ``-o text``: objects and arrays as tab-separated values."""
    if isinstance(value, dict):
        return "\t".join(_text_field(item) for item in value.values())
    if isinstance(value, list | tuple):
        return "\t".join(_text_field(item) for item in value)
    return _text_field(value)


def to_text(data: Any) -> str:
    """``-o text``, for shell variables and loops (like the AWS CLI's text output).

    Strings raw (no quotes), null as an empty line, a top-level array one element per line, an
    object its values tab-separated in key order; nested values inside a line as compact JSON.
    """
    if isinstance(data, list | tuple):
        return "".join(text_line(item) + "\n" for item in data)
    return text_line(data) + "\n"


# --- the one writer ---------------------------------------------------------------------------------


def report_error(runtime: Runtime, error: QlikM2MError) -> None:
    """Write ``error`` to stderr the one way every error is shown (docs/output.md): one JSON
    object when JSON was asked for, else ``error: ...`` and ``hint: ...`` lines (red and dim at a
    colour terminal). Redacted. An interruption is ``interrupted`` on a line of its own, after
    a newline that ends whatever progress line was being drawn."""
    from qlikm2m.errors import Interrupted
    from qlikm2m.redaction import redact

    stream = runtime.stderr
    interrupted = isinstance(error, Interrupted)
    if runtime.json_errors:
        # A script that asked for JSON parses the last stderr line, whatever ended the run.
        stream.write(("\n" if interrupted else "") + redact(json.dumps(error.to_dict())) + "\n")
        return
    if interrupted:
        stream.write("\ninterrupted\n")
        return
    red, dim, reset = (
        ("\x1b[31;1m", "\x1b[2m", "\x1b[0m") if runtime.color_for(stream) else ("",) * 3
    )
    stream.write(f"{red}error:{reset} {redact(error.message)}\n")
    if error.hint:
        stream.write(f"{dim}hint:{reset} {redact(error.hint)}\n")


def chosen_format(runtime: Runtime, *, listing: bool = False) -> str:
    """The format of this result: the one asked for, or a table at a terminal for a listing.

    An explicit ``-o``/``$QLIKM2M_OUTPUT`` or a ``--query`` means a script or a shaped result:
    then the format asked for (JSON by default). Listings (every ``ls``) are tables for a person.
    """
    if not listing or runtime.output_explicit or runtime.query is not None:
        return runtime.output
    return "table" if runtime.stdout_is_tty else "json"


class Output:
    """Writes command results for one invocation, per ``-o`` and ``--query``.

    ``listing=True`` (every ``ls``) makes a table the default at a terminal.
    """

    def __init__(
        self, runtime: Runtime, *, query: str | None = None, listing: bool = False
    ) -> None:
        self.runtime = runtime
        self.format = chosen_format(runtime, listing=listing)
        # Compiled before any request is made: a typo must not cost a token or an API call.
        self._query = compile_query(query if query is not None else runtime.query)
        # `&name` evaluates to a function argument, not JSON; only such queries pay for a check.
        self._may_return_expressions = self._query is not None and _has_expref(self._query.parsed)

    @property
    def stdout(self) -> IO[str]:
        return self.runtime.stdout

    def apply_query(self, data: Any) -> Any:
        if self._query is None:
            return data
        try:
            result = self._query.search(data)
        except Exception as error:  # JMESPath type errors on unexpected data
            # JMESPath quotes the offending value, which may hold newlines: keep it one line.
            said = " ".join(str(error).split())
            said = said if len(said) <= 300 else said[:299] + "…"
            raise UsageError(f"--query failed on the result: {said}") from None
        if self._may_return_expressions and _holds_expression(result):
            raise UsageError(
                "--query returned an expression reference (&...), which is not a value.",
                hint="Use & only inside a function, e.g. --query 'sort_by(data, &name)'.",
            )
        return result

    def emit(self, data: Any, *, queried: bool = False) -> None:
        """Print one result (an object, a list or a scalar) in the chosen format.

        ``queried`` says ``--query`` was already applied to ``data`` (by ``apply_query``).
        """
        if not queried:
            data = self.apply_query(data)
        if self.format == "yaml":
            self.stdout.write(to_yaml(data, self.stdout))
        elif self.format == "table":
            render_table(self.runtime, data)
        elif self.format == "text":
            self.stdout.write(to_text(data))
        else:
            self.stdout.write(self._json(to_json(data, pretty=self.runtime.stdout_is_tty)) + "\n")
        self.stdout.flush()

    def _json(self, text: str) -> str:
        # A stream in a legacy code page (cp1252 on Windows) gets \\u escapes for what it
        # cannot carry: the same document, still complete and valid.
        from qlikm2m.streams import json_for_stream

        return json_for_stream(text, self.stdout)

    def emit_text(self, text: str) -> None:
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def ndjson(self, items: Iterable[Any]) -> int:
        """One compact JSON document per line, written as items arrive; returns how many."""
        return self.ndjson_pages([item] for item in items)

    def ndjson_pages(self, pages: Iterable[Sequence[Any]]) -> int:
        """NDJSON of every item of ``pages`` (lists of items, such as the ``data`` of each page of
        a listing); returns how many items.

        Each page is written in one piece as it arrives, not item by item: a listing of 10,000
        items makes 1,000 writes at 10 a page instead of 10,000, and its text is checked against
        the stream's encoding once. Flushed every ``NDJSON_FLUSH_LINES`` lines and at the end,
        so a reader downstream sees items no later than before. The lines are those of
        ``json.dumps(item, ensure_ascii=False, separators=(",", ":"))``.
        """
        encode = _COMPACT_JSON.encode
        query = self._query is not None
        write = self.stdout.write
        count = unflushed = 0
        for page in pages:
            if not page:
                continue
            if query:
                lines = []
                try:
                    for item in page:
                        lines.append(encode(self.apply_query(item)))
                finally:
                    # A query that fails on an item still leaves the items before it written.
                    if lines:
                        lines.append("")
                        write(self._json("\n".join(lines)))
            else:
                lines = [encode(item) for item in page]
                lines.append("")
                write(self._json("\n".join(lines)))
            count += len(page)
            unflushed += len(page)
            if unflushed >= NDJSON_FLUSH_LINES:
                self.stdout.flush()
                unflushed = 0
        self.stdout.flush()
        return count

    def text_lines(self, items: Iterable[Any]) -> int:
        """``-o text`` of a listing, a line per item as items arrive; returns how many."""
        count = 0
        write = self.stdout.write
        for item in items:
            write(text_line(item) + "\n")
            count += 1
        self.stdout.flush()
        return count

    def json_array(self, items: Iterable[Any]) -> int:
        """A JSON array streamed element by element (``--paginate`` without a query or format)."""
        pretty = self.runtime.stdout_is_tty
        write = self.stdout.write
        count = 0
        for item in items:
            text = to_json(item, pretty=pretty)
            if pretty:
                text = "\n".join("  " + line for line in text.splitlines())
            write(("[\n" if pretty else "[") if count == 0 else (",\n" if pretty else ","))
            write(self._json(text))
            count += 1
        write(("\n]" if count else "[]") if pretty else ("]" if count else "[]"))
        write("\n")
        self.stdout.flush()
        return count

    @property
    def streams_array(self) -> bool:
        """True when a list can be written as it arrives (plain JSON, no query to apply)."""
        return self.format == "json" and self._query is None
