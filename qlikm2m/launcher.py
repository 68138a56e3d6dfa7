"""The console-script entry point: answers ``--version`` before importing the CLI framework.

``qlikm2m --version`` is what install checks and CI logs run most; building the Typer app costs
more than the whole answer, so that one exact invocation is served here.
"""

from __future__ import annotations

import sys


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        from qlikm2m import __version__

        sys.stdout.write(f"qlikm2m {__version__}\n")
        return 0
    from qlikm2m.cli import main as cli_main

    return cli_main()
