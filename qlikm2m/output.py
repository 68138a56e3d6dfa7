"""Rendering results: data on stdout (JSON, YAML, table, NDJSON), after an optional JMESPath query.

The one module that imports jmespath, only when ``--query`` is used (YAML goes through
``yaml_codec``); tables for people are drawn by ``terminal`` (rich).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from qlikm2m.errors import UsageError

if TYPE_CHECKING:
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


class Output:
    """Writes command results for one invocation, per ``-o`` and ``--query``."""

    def __init__(self, runtime: Runtime, *, query: str | None = None) -> None:
        self.runtime = runtime
        self.format = runtime.output
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

    def emit(self, data: Any) -> None:
        """Print one result (an object, a list or a scalar) in the chosen format."""
        data = self.apply_query(data)
        if self.format == "yaml":
            self.stdout.write(to_yaml(data, self.stdout))
        elif self.format == "table":
            from qlikm2m.terminal import render_table

            render_table(self.runtime, data)
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
        count = 0
        write = self.stdout.write
        for item in items:
            value = self.apply_query(item)
            write(self._json(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) + "\n")
            count += 1
            if count % 100 == 0:
                self.stdout.flush()
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
