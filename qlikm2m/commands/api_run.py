"""What `qlikm2m api` does once its command line is parsed: ``ApiOptions`` and ``run_api``.

Knows nothing of Typer (the command in qlikm2m/commands/api.py parses the command line into
``ApiOptions``), so the launcher's fast path (qlikm2m/fast_path.py) runs it without importing
Typer or Click.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from qlikm2m.commands.common import TenantFlags

if TYPE_CHECKING:
    from collections.abc import Iterator

    from qlikm2m.client import QlikClient
    from qlikm2m.http import Response
    from qlikm2m.output import Output
    from qlikm2m.runtime import Runtime

_MAX_BODY_FILE = 1024 * 1024 * 1024


def parse_params(values: list[str]) -> list[tuple[str, str]]:
    """``key=value`` pairs (repeatable keys kept in order); anything else is a usage error."""
    from qlikm2m.errors import UsageError

    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-q {value!r} is not key=value.", hint="e.g. -q limit=100 -q name=x")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Python keeps bytes of argv that are not UTF-8 as lone surrogates; a URL cannot.
            raise UsageError(
                f"-q {value!r} holds bytes that are not UTF-8 text.",
                hint="Pass the value as UTF-8 (check the terminal's or script's locale).",
            ) from None
        pairs.append((key.strip(), rest))
    return pairs


def parse_headers(values: list[str]) -> dict[str, str]:
    """``Name: value`` headers; the Authorization header is ours to set.

    Refused here rather than by the HTTP library mid-request (where it was an "unexpected" exit
    1): a name must be an RFC 9110 token, a value one line of Latin-1 text, as HTTP/1.1 sends it.
    """
    import re

    from qlikm2m.errors import UsageError

    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        name = name.strip()
        if not sep or not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
            raise UsageError(
                f"-H {value!r} is not 'Name: value'.",
                hint="A header name is ASCII letters, digits and !#$%&'*+-.^_`|~, no spaces.",
            )
        if "\n" in rest or "\r" in rest:
            raise UsageError(f"The value of header {name!r} spans lines.")
        if name.lower() == "authorization":
            raise UsageError(
                "qlikm2m sets the Authorization header itself.",
                hint="To use a token minted elsewhere, set QLIK_ACCESS_TOKEN.",
            )
        rest = rest.strip()
        if any(ord(ch) > 0xFF or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f" for ch in rest):
            raise UsageError(
                f"The value of header {name!r} has characters HTTP headers cannot carry.",
                hint="Header values are Latin-1 text without control characters; "
                "percent-encode anything else.",
            )
        headers[name] = rest
    return headers


def _read_body_file(runtime: Runtime, name: str) -> bytes:
    from qlikm2m.errors import UsageError

    if name == "-":
        stream = getattr(runtime.stdin, "buffer", None)
        return stream.read() if stream is not None else runtime.stdin.read().encode()
    path = Path(name).expanduser()
    try:
        if path.stat().st_size > _MAX_BODY_FILE:
            raise UsageError(f"--body-file {name!r} is larger than 1 GiB.")
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"Cannot read --body-file {name!r}: {error.strerror}.") from None


def _print_head(runtime: Runtime, response: Response) -> None:
    from qlikm2m.redaction import redact

    lines = [f"{response.http_version} {response.status} {response.reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    runtime.stderr.write(redact("\n".join(lines)) + "\n\n")
    runtime.stderr.flush()


def _looks_json(data: bytes) -> bool:
    import json

    stripped = data.lstrip()[:1]
    if stripped not in (b"{", b"["):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _emit_body(runtime: Runtime, output: Output, response: Response) -> None:
    from qlikm2m.errors import UsageError

    if response.status == 204 or response.method == "HEAD":
        response.close()
        return
    kind = response.content_type
    if response.is_json or (not kind and response.headers.get("content-length") not in (None, "0")):
        body = response.read()
        if not body.strip():
            return
        if response.is_json or _looks_json(body):
            output.emit(response.json())
            return
        chunks: Iterator[bytes] = iter([body])
    else:
        chunks = response.iter_bytes()
    if kind.startswith("text/") or kind in ("application/xml", "application/yaml"):
        for chunk in chunks:
            runtime.stdout.write(chunk.decode("utf-8", errors="replace"))
        runtime.stdout.flush()
        return
    if runtime.stdout_is_tty:
        response.close()
        raise UsageError(
            f"The response is binary ({kind or 'no content type'}); not printing it to a terminal.",
            hint="Save it with --output-file FILE, or pipe the output.",
        )
    runtime.stdout.flush()
    binary = getattr(runtime.stdout, "buffer", None)
    for chunk in chunks:
        if binary is not None:
            binary.write(chunk)
        else:
            runtime.stdout.write(chunk.decode("latin-1"))
    if binary is not None:
        binary.flush()


def _save(runtime: Runtime, response: Response, target: str) -> None:
    import os
    import stat
    import tempfile

    from qlikm2m.errors import OutputError, UsageError
    from qlikm2m.streams import describe_write_error

    path = Path(target).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        response.close()
        raise UsageError(f"--output-file {target!r} is a folder; give a file name in it.")
    size = 0
    try:
        if mode is not None and not stat.S_ISREG(mode):
            # A device, a FIFO or /dev/stdout: written into, never renamed over (as root, a
            # rename once replaced /dev/full itself with a regular file).
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    size += len(chunk)
        else:
            folder = path.parent if str(path.parent) else Path()
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
            except OSError as error:
                response.close()
                raise UsageError(
                    f"Cannot write --output-file {target!r}: {error.strerror}."
                ) from None
            try:
                with os.fdopen(fd, "wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        size += len(chunk)
                os.chmod(tmp, 0o644 & ~_umask())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError as error:
        response.close()
        raise OutputError(
            f"Could not write --output-file {target}: {describe_write_error(error)}.",
            hint="Free some space or pick another place; a regular file is only replaced once "
            "it is complete.",
        ) from None
    runtime.stderr.write(f"wrote {size} bytes to {path}\n")


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current


def _paginated(
    runtime: Runtime,
    client: QlikClient,
    output: Output,
    path: str,
    params: list[tuple[str, str]],
    *,
    ndjson: bool,
    include: bool,
) -> None:
    from qlikm2m.page_sizes import with_largest_page

    params = with_largest_page(client.url_for(path), params)
    pages = client.iter_pages(
        path, params, on_response=(lambda r: _print_head(runtime, r)) if include else None
    )
    first = next(pages, None)
    if not (isinstance(first, dict) and isinstance(first.get("data"), list)):
        # Not a list endpoint: there is nothing to follow, print what came back.
        if ndjson:
            output.ndjson([first])
        else:
            output.emit(first)
        return

    def page_data() -> Iterator[list[Any]]:
        assert isinstance(first, dict)
        yield first["data"]
        for page in pages:
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                from qlikm2m.errors import ApiError

                raise ApiError(f"A later page of {path} has no data array.")
            yield data

    def items() -> Iterator[Any]:
        for data in page_data():
            yield from data

    if ndjson:
        output.ndjson_pages(page_data())
    elif output.streams_array:
        output.json_array(items())
    else:
        output.emit(list(items()))


class ApiOptions(NamedTuple):
    """``api``'s options: the fields of every ``TenantRun`` (qlikm2m/commands/run_options.py)
    and its own, as a NamedTuple for the fast path (no dataclasses)."""

    runtime: Runtime
    tenant: TenantFlags
    path: str
    method: str | None = None
    param: list[str] | None = None
    data: str | None = None
    body_file: str | None = None
    header: list[str] | None = None
    paginate: bool = False
    ndjson: bool = False
    include: bool = False
    output_file: str | None = None


def run_api(options: ApiOptions) -> None:
    """Call any endpoint of the tenant with the right token.

    ``options`` is the command line of ``api``, parsed; nothing here knows Typer.
    """
    import json

    from qlikm2m.errors import UsageError
    from qlikm2m.output import Output

    tenant = options.tenant
    path = options.path
    method = options.method
    param = options.param
    data = options.data
    body_file = options.body_file
    header = options.header
    paginate = options.paginate
    ndjson = options.ndjson
    include = options.include
    output_file = options.output_file
    runtime = options.runtime
    if ndjson and runtime.output_flag not in (None, "json"):
        raise UsageError("--ndjson prints JSON lines; it cannot be combined with -o yaml/table.")
    output = Output(runtime)
    params = parse_params(param or [])
    headers = parse_headers(header or [])
    if data is not None and body_file is not None:
        raise UsageError("Give the body with -d or --body-file, not both.")
    json_body: Any = None
    raw_body: bytes | None = None
    if data is not None:
        try:
            json_body = json.loads(data)
        except ValueError as error:
            raise UsageError(f"-d is not valid JSON: {error}.") from None
    elif body_file is not None:
        raw_body = _read_body_file(runtime, body_file)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = (
                "application/json" if _looks_json(raw_body) else "application/octet-stream"
            )
    has_body = data is not None or body_file is not None
    verb = (method or ("POST" if has_body else "GET")).strip().upper()
    if not verb.isalpha():
        raise UsageError(f"-X {method!r} is not an HTTP method.")
    if (paginate or ndjson) and verb != "GET":
        raise UsageError("--paginate and --ndjson follow list pages with GET only.")
    if (paginate or ndjson) and output_file:
        raise UsageError("--output-file saves one response; it cannot be used with --paginate.")

    with tenant.client(runtime) as client:
        if paginate or ndjson:
            _paginated(runtime, client, output, path, params, ndjson=ndjson, include=include)
            return
        response = client.request(
            verb, path, params=params or None, json=json_body, data=raw_body, headers=headers
        )
        if include:
            _print_head(runtime, response)
        if output_file:
            if output_file == "-":
                _emit_binary_stdout(runtime, response)
            else:
                _save(runtime, response, output_file)
            return
        _emit_body(runtime, output, response)


def _emit_binary_stdout(runtime: Runtime, response: Response) -> None:
    runtime.stdout.flush()
    binary = getattr(runtime.stdout, "buffer", None)
    for chunk in response.iter_bytes():
        if binary is not None:
            binary.write(chunk)
        else:
            runtime.stdout.write(chunk.decode("latin-1"))
    if binary is not None:
        binary.flush()
