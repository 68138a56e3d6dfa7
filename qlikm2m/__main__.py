"""Allow ``python -m qlikm2m``."""

from qlikm2m.launcher import main

raise SystemExit(main())
