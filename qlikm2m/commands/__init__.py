"""One module per command group. Each exposes ``register(app)`` and imports only Typer at module
level: the core modules it uses are imported inside the command functions, so that building the
command tree (for ``--help`` or another command) costs nothing beyond Typer itself."""
