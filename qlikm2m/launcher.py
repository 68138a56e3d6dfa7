"""The console-script entry point: answers ``--version`` before importing the CLI framework.

``qlikm2m --version`` is what install checks and CI logs run most; building the Typer app costs
more than the whole answer, so that one exact invocation is served here.
"""

from __future__ import annotations

import sys


def main() -> int:
    from qlikm2m.streams import guard_standard_streams

    # Before anything is written: a closed, full or legacy-encoded stream must give a sentence
    # and an exit code, not a traceback from the first print.
    guard_standard_streams()
    if sys.argv[1:] == ["--version"]:
        from qlikm2m import __version__
        from qlikm2m.errors import QlikM2MError

        try:
            sys.stdout.write(f"qlikm2m {__version__}\n")
            sys.stdout.flush()
        except QlikM2MError as error:
            sys.stderr.write(f"error: {error.message}\n")
            return int(error.exit_code)
        return 0
    from qlikm2m.cli import main as cli_main

    return cli_main()
