"""Allow ``python -m qlikm2m``."""

from qlikm2m.cli import main

raise SystemExit(main())
