"""What every command shares that knows nothing of Typer: the connection flags, the options a
command's run function starts from, and printing one resource or a whole listing.

Each command has one shape (after gh's ``NewCmdX`` + ``xRun`` and twine's ``upload.main`` ->
``upload()``): a module-level Typer function parses the command line into a frozen options
dataclass and calls a ``run_*`` function that takes only that value, so a test can call the run
function without a CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.listing import Listing
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import ResolvedSettings


@dataclass(frozen=True)
class TenantFlags:
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
        return dict(self.__dict__)

    def settings(self, runtime: Runtime) -> ResolvedSettings:
        from qlikm2m.settings import resolve_settings

        return resolve_settings(runtime, **self.as_kwargs())

    def client(self, runtime: Runtime) -> QlikClient:
        from qlikm2m.client import QlikClient

        return QlikClient(self.settings(runtime), runtime)


@dataclass(frozen=True)
class TenantRun:
    """What every command that talks to a tenant runs with: where it runs (the streams, the
    environment and the global options, in ``runtime``) and its connection flags. A command's
    options dataclass extends this with its own."""

    runtime: Runtime
    tenant: TenantFlags


@dataclass(frozen=True)
class ContextRun:
    """What a command on the stored contexts (``context ...``) runs with: where it runs (the
    streams, the environment and the global options). It talks to no tenant unless asked to
    verify credentials, so it carries no connection flags. Its options dataclass extends this."""

    runtime: Runtime


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
