"""The project's error hierarchy and its documented exit codes.

Every failure a user can cause or meet is one of these exceptions; ``cli.main`` is the one place that
turns them into a message, an optional hint and an exit code. This module imports nothing else from
the package so that every layer can raise these errors.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class ExitCode(enum.IntEnum):
    """Exit statuses, documented in docs/exit-codes.md. Scripts rely on them: never renumber."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3
    AUTH = 4
    API = 5
    NETWORK = 6
    KEYRING = 7
    RELOAD_FAILED = 8
    WAIT_TIMEOUT = 9
    OUTPUT = 10
    # `exec`: as env(1) and POSIX shells report a command that cannot be run.
    COMMAND_NOT_EXECUTABLE = 126
    COMMAND_NOT_FOUND = 127
    INTERRUPTED = 130


class QlikM2MError(Exception):
    """Base of every error the tool reports as a one-line message instead of a traceback."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED
    kind: ClassVar[str] = "error"

    def __init__(
        self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable form printed on stderr when JSON output was asked for."""
        body: dict[str, Any] = {
            "kind": self.kind,
            "message": self.message,
            "exitCode": int(self.exit_code),
        }
        if self.hint:
            body["hint"] = self.hint
        body.update(self.details)
        return {"error": body}


class UsageError(QlikM2MError):
    """The command line itself is wrong: a bad flag value, a missing answer under --no-input."""

    exit_code = ExitCode.USAGE
    kind = "usage"


class ConfigError(QlikM2MError):
    """Settings, the contexts file or a context are missing, invalid or unreadable."""

    exit_code = ExitCode.CONFIG
    kind = "config"


class AuthError(QlikM2MError):
    """The tenant refused the credentials or the token."""

    exit_code = ExitCode.AUTH
    kind = "auth"


class ApiError(QlikM2MError):
    """The API answered with an error status that retrying will not fix (403, 404, other 4xx)."""

    exit_code = ExitCode.API
    kind = "api"


class NetworkError(QlikM2MError):
    """The tenant could not be reached or kept failing: DNS, TCP, TLS, timeouts, 5xx, 429."""

    exit_code = ExitCode.NETWORK
    kind = "network"


class KeyringError(QlikM2MError):
    """The OS keyring is missing, locked, refused access or did not answer in time."""

    exit_code = ExitCode.KEYRING
    kind = "keyring"


class OutputError(QlikM2MError):
    """The result could not be written: stdout closed, a full disk, an I/O error."""

    exit_code = ExitCode.OUTPUT
    kind = "output"


class Interrupted(QlikM2MError):
    """Ctrl-C or SIGTERM: the user or the CI runner stopped the command."""

    exit_code = ExitCode.INTERRUPTED
    kind = "interrupted"


class ReloadFailedError(QlikM2MError):
    """An app reload ended FAILED, CANCELED or EXCEEDED_LIMIT: the data did not land."""

    exit_code = ExitCode.RELOAD_FAILED
    kind = "reload-failed"


class WaitTimeoutError(QlikM2MError):
    """Waiting for a reload took longer than --timeout; the reload itself goes on server-side."""

    exit_code = ExitCode.WAIT_TIMEOUT
    kind = "wait-timeout"


class CommandNotExecutableError(QlikM2MError):
    """``exec``: the command exists but cannot be run (not executable, a folder)."""

    exit_code = ExitCode.COMMAND_NOT_EXECUTABLE
    kind = "command-not-executable"


class CommandNotFoundError(QlikM2MError):
    """``exec``: no such command on $PATH."""

    exit_code = ExitCode.COMMAND_NOT_FOUND
    kind = "command-not-found"
