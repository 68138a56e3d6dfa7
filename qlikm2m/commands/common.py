"""What every command shares that knows nothing of Typer: the connection flags and printing one
resource or a whole listing.

Each command has one shape (after gh's ``NewCmdX`` + ``xRun`` and twine's ``upload.main`` ->
``upload()``): a module-level Typer function parses the command line into a frozen options value
and calls a ``run_*`` function that takes only that value, so a test can call the run function
without a CLI. Options values extend ``TenantRun`` or ``ContextRun``
(qlikm2m/commands/run_options.py); the hottest commands' (``tenant me``, ``user me``, ``api``)
are NamedTuples with the same fields, so that what the launcher's fast path imports holds no
dataclass (issue 14).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.listing import Listing
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import ResolvedSettings


class TenantFlags(NamedTuple):
    """The connection flags of one invocation, passed as-is to ``resolve_settings``."""

    server: str | None = None
    client_id: str | None = None
    client_secret_stdin: bool = False
    scope: str | None = None
    ca_bundle: str | None = None
    impersonate: str | None = None
    no_token_cache: bool = False
    connect_timeout: float | None = None
    read_timeout: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return self._asdict()

    def settings(self, runtime: Runtime) -> ResolvedSettings:
        from qlikm2m.settings import resolve_settings

        return resolve_settings(runtime, **self.as_kwargs())

    def client(self, runtime: Runtime) -> QlikClient:
        from qlikm2m.client import QlikClient

        return QlikClient(self.settings(runtime), runtime)


def apply_global_options(runtime: Runtime, given: Mapping[str, Any], *, root: bool) -> None:
    """Store the global options given in one place in ``runtime``.

    ``given`` maps ``context_name``, ``output_format`` (a format name), ``jmespath_query``,
    ``verbose`` (a count) and ``no_input`` to what the command line said (None or absent: not
    given). Before the command name (``root``) they set every field; after it, a value wins over
    the same option before it, ``-v`` counts add up and ``--no-input`` is on when given in either
    place. The Typer command line (qlikm2m/commands/tenant_options.py) and the launcher's fast
    path (qlikm2m/fast_path.py) both apply them here.
    """
    output_format = given.get("output_format")
    if root:
        runtime.context = given.get("context_name")
        runtime.output_flag = output_format
        runtime.query = given.get("jmespath_query")
        runtime.verbose = given.get("verbose", 0)
        runtime.no_input = given.get("no_input", False)
        return
    if given.get("context_name") is not None:
        runtime.context = given["context_name"]
    if output_format is not None:
        runtime.output_flag = output_format
    if given.get("jmespath_query") is not None:
        runtime.query = given["jmespath_query"]
    runtime.verbose += given.get("verbose", 0)
    runtime.no_input = runtime.no_input or given.get("no_input", False)


def check_output_env(runtime: Runtime) -> None:
    """Refuse a ``$QLIKM2M_OUTPUT`` that names no output format (the root command's check, made
    before the command runs). Raises UsageError (exit 2)."""
    from qlikm2m.runtime import OUTPUT_ENV, OUTPUT_FORMATS

    env_output = runtime.env.get(OUTPUT_ENV, "").strip().lower()
    if env_output and env_output not in OUTPUT_FORMATS:
        from qlikm2m.errors import UsageError

        raise UsageError(
            f"${OUTPUT_ENV} is {env_output!r}; expected one of {', '.join(OUTPUT_FORMATS)}."
        )


def show_resource(runtime: Runtime, tenant: TenantFlags, path: str) -> None:
    """GET one resource and print it; the output is set up first, so a bad --query costs no
    request."""
    from qlikm2m.output import Output

    output = Output(runtime)
    with tenant.client(runtime) as client:
        output.emit(client.get_json(path))


def show_listing(
    runtime: Runtime,
    tenant: TenantFlags,
    listing: Listing | Callable[[QlikClient], Listing],
    *,
    limit: int | None,
    ndjson: bool,
) -> None:
    """Every page of ``listing`` (or the first ``limit`` items), streamed to the output.

    ``listing`` may be built with the client (a space given by name is looked up first).
    """
    from qlikm2m.listing import check_limit, emit_listing, fetch
    from qlikm2m.output import Output

    check_limit(limit)
    Output(runtime)  # a bad --query costs no request
    with tenant.client(runtime) as client:
        chosen = listing(client) if callable(listing) else listing
        records = fetch(client, chosen, limit)
        if chosen.noun == "apps":
            from qlikm2m.completion_cache import remember_apps

            # What completion offers after `reload <TAB>` (docs/completion.md).
            records.source = remember_apps(runtime.env, records.source)
        emit_listing(runtime, chosen, records, ndjson=ndjson)
