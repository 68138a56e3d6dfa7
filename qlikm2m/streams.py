"""The process's standard streams when they are closed, full, or cannot encode what we print.

Set up once per process by the entry point (``launcher.main``) before anything is written:

- stdout: a write or flush that fails (closed descriptor, full disk, I/O error) raises
  ``OutputError`` (exit 10) with a sentence instead of a traceback; a reader that went away
  (``| head``) stays a ``BrokenPipeError``, which ``cli.main`` treats as success.
- stderr: failures are swallowed. It is where errors are reported, so it cannot report its own,
  and a command's exit code must not change because nobody listens (``2>&-``).
- Encoding: a stream in a legacy code page (``PYTHONIOENCODING=cp1252``, Windows redirections)
  prints ``->`` for ``→`` and ``?`` for what has no stand-in, instead of raising
  ``UnicodeEncodeError`` halfway through. JSON is escaped before it gets there
  (``json_for_stream``), so it stays complete and lossless.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import os
import sys
from typing import Any, TextIO, cast

from qlikm2m.errors import OutputError

TEXT_FALLBACK = "qlikm2m-text"
ESCAPED_FALLBACK = "qlikm2m-text-escaped"
JSON_ESCAPE = "qlikm2m-json"

# Characters qlikm2m itself prints (doctor, reload lines, ellipses) and their ASCII stand-ins.
_STAND_INS = {
    "→": "->",
    "←": "<-",
    "✓": "v",
    "✗": "x",
    "…": "...",
    "—": "--",
    "–": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "·": ".",
    "\u00a0": " ",
}


def _text_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    unencodable = error.object[error.start : error.end]
    return "".join(_STAND_INS.get(char, "?") for char in unencodable), error.end


def _escaped_fallback(error: UnicodeError) -> tuple[str, int]:
    # stderr: Python's own backslashreplace for what has no stand-in (nothing is lost there).
    if not isinstance(error, UnicodeEncodeError):
        raise error
    unencodable = error.object[error.start : error.end]
    return "".join(
        _STAND_INS.get(char) or char.encode("ascii", "backslashreplace").decode("ascii")
        for char in unencodable
    ), error.end


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    # Only valid inside JSON strings: JSON dumped with ensure_ascii=False has non-ASCII text
    # nowhere else. Astral characters become a surrogate pair, as ensure_ascii would write them.
    if not isinstance(error, UnicodeEncodeError):
        raise error
    escaped = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            escaped.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            escaped.append(f"\\u{code:04x}")
    return "".join(escaped), error.end


codecs.register_error(TEXT_FALLBACK, _text_fallback)
codecs.register_error(ESCAPED_FALLBACK, _escaped_fallback)
codecs.register_error(JSON_ESCAPE, _json_escape)


def _carries_all_of_unicode(encoding: str | None) -> bool:
    if not encoding:
        return True  # an in-memory stream (StringIO) holds str, not bytes
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name.startswith(("utf-8", "utf-16", "utf-32")) or name == "utf_8"


def encoding_of(stream: object) -> str | None:
    """The encoding a text stream writes in, or None for an in-memory one."""
    encoding = getattr(stream, "encoding", None)
    return encoding if isinstance(encoding, str) else None


def json_for_stream(text: str, stream: object) -> str:
    """``text`` (JSON dumped with ensure_ascii=False) with what ``stream`` cannot encode escaped
    as ``\\u`` escapes: the same document, complete and valid, in any code page."""
    encoding = encoding_of(stream)
    if _carries_all_of_unicode(encoding) or text.isascii():
        return text
    assert encoding is not None
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, JSON_ESCAPE).decode(encoding)
    return text


def can_encode(text: str, stream: object) -> bool:
    """Whether ``stream`` can write ``text`` as it is."""
    encoding = encoding_of(stream)
    if _carries_all_of_unicode(encoding) or text.isascii():
        return True
    assert encoding is not None
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _with_text_fallback(stream: TextIO) -> None:
    # Only Python's defaults are changed (strict for stdout, backslashreplace for stderr): an
    # explicit PYTHONIOENCODING=cp1252:replace is a choice.
    if _carries_all_of_unicode(encoding_of(stream)):
        return
    handler = {"strict": TEXT_FALLBACK, "backslashreplace": ESCAPED_FALLBACK}.get(
        str(getattr(stream, "errors", ""))
    )
    reconfigure = getattr(stream, "reconfigure", None)
    if handler and callable(reconfigure):
        with contextlib.suppress(Exception):
            reconfigure(errors=handler)


def describe_write_error(error: OSError) -> str:
    """A few words for a failed write: "it is closed", "the disk is full", the OS's own words."""
    if error.errno == errno.EBADF:
        return "it is closed"
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "the disk is full"
    if error.errno == errno.EFBIG:
        return "the file is too large for its file system"
    return (error.strerror or str(error)).rstrip(".").lower() or type(error).__name__


class GuardedStream(io.TextIOBase):
    """A text stream over ``stream`` (None when the descriptor was closed at start-up).

    For ``stdout`` (``fatal=True``) a failed write raises ``OutputError``; for ``stderr`` it is
    dropped. Either way, once a write failed the descriptor is pointed at the null device, so
    the interpreter's own flush at exit cannot fail a second time with a traceback.
    """

    def __init__(self, stream: TextIO | None, name: str, *, fatal: bool) -> None:
        super().__init__()
        self._stream = stream
        self._name = name
        self._fatal = fatal
        self._failed = False
        if stream is not None:
            _with_text_fallback(stream)

    @property
    def wrapped(self) -> TextIO | None:
        return self._stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return encoding_of(self._stream) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    @property
    def buffer(self) -> Any:
        """The binary stream below (for ``api`` downloads to stdout), guarded the same way."""
        raw = getattr(self._stream, "buffer", None)
        return None if raw is None else _GuardedBinary(raw, self)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation(f"{self._name} is closed")
        return self._stream.fileno()

    def write(self, text: str) -> int:
        if self._stream is None:
            return self._fail(OSError(errno.EBADF, os.strerror(errno.EBADF)), len(text))
        if self._failed:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise
            return self._fail(error, len(text))

    def flush(self) -> None:
        if self._stream is None or self._failed:
            return
        try:
            self._stream.flush()
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise
            self._fail(error, 0)

    def _fail(self, error: OSError, size: int) -> int:
        first = not self._failed
        self._failed = True
        if first:
            _point_at_null_device(self._stream)
        if not self._fatal:
            return size
        raise OutputError(
            f"Could not write the output to {self._name}: {describe_write_error(error)}.",
            hint=f"What was written before may be incomplete; check where {self._name} goes.",
        ) from None


class _GuardedBinary:
    def __init__(self, raw: Any, owner: GuardedStream) -> None:
        self._raw = raw
        self._owner = owner

    def write(self, data: bytes) -> int:
        try:
            return int(self._raw.write(data))
        except BrokenPipeError:
            raise
        except OSError as error:
            return self._owner._fail(error, len(data))

    def flush(self) -> None:
        try:
            self._raw.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            self._owner._fail(error, 0)


def _point_at_null_device(stream: TextIO | None) -> None:
    """Send whatever is still buffered for ``stream`` to the null device."""
    if stream is None:
        return
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def guard_standard_streams() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` with guarded streams (once per process)."""
    if not isinstance(sys.stdout, GuardedStream):
        sys.stdout = cast(TextIO, GuardedStream(sys.stdout, "stdout", fatal=True))
    if not isinstance(sys.stderr, GuardedStream):
        sys.stderr = cast(TextIO, GuardedStream(sys.stderr, "stderr", fatal=False))
