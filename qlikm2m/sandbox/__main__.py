"""Allow ``python -m qlikm2m.sandbox`` (the sandbox without the client)."""

from qlikm2m.sandbox.cli import main

raise SystemExit(main())
