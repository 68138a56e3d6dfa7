"""One module per command group. Each exposes ``register(app)`` and imports only Typer at module
level: the core modules it uses are imported inside the command functions, so that building the
command tree (for ``--help`` or another command) costs nothing beyond Typer itself.

The hottest commands keep what they do in Typer-free companions (``tenant_run``, ``user_run``,
``api_run``, and ``common``), which the launcher's fast path (qlikm2m/fast_path.py) runs without
importing Typer or Click."""
