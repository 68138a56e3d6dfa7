"""Allow ``python -m qlikm2m``."""

from qlikm2m.launcher import run

raise SystemExit(run())
